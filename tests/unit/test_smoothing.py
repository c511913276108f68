"""models/smoothing.py: smoothing leaves the fp32 function as it was and brings dynamic int8 closer to it."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from models.runtime import default_model_dir
from models.smoothing import choose, int8_activations, int8_weights, smooth, targets
from models.tokenize import encode, load_tokenizer

CALIBRATION = [
    "Northwind Traders cuts its full-year forecast as orders slow",
    "Contoso Bank shares rise after quarterly profit beats estimates",
    "Fabrikam recalls 40,000 heaters over fire risk",
    "Central bank holds rates, signals patience on inflation",
    "Tailspin Airlines pilots vote to strike over pay",
    "Woodgrove Capital agrees to buy Litware for $2.1 billion",
]
HELD_OUT = [  # judged only: never calibrated on
    "Adventure Works misses revenue estimates; shares slide 9% after hours",
    "Proseware names a new chief financial officer",
    "Regulator fines Lamna Insurance $12 million over claims handling",
    "Wide World Importers raises dividend for a tenth straight year",
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(default_model_dir() / "tokenizer.json")


def encoder_like(path, vocab: int, outlier: float = 60.0) -> None:
    """input_ids -> embedding (16 channels, channel 3 `outlier` times the rest) masked by attention_mask
    -> MatMul [16, 8]: the shape of an encoder MatMul whose input has one outlier channel."""
    rng = np.random.default_rng(0)
    table = rng.normal(size=(vocab, 16)).astype(np.float32)
    table[:, 3] *= outlier
    weight = rng.normal(size=(16, 8)).astype(np.float32) * 0.1
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["embedded"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last"], ["mask_3d"]),
        helper.make_node("Mul", ["embedded", "mask_3d"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "weight"], ["logits"], name="layer.0/output/dense/MatMul"),
    ]
    graph = helper.make_graph(
        nodes, "encoder_like",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(weight, "weight"),
         numpy_helper.from_array(np.array([-1], dtype=np.int64), "last")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def run(path, tokenizer, texts) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = []
    for text in texts:
        ids, mask = encode(tokenizer, [text])
        out.append(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
    return out


def test_smoothing_keeps_the_fp32_outputs_and_halves_the_int8_error(tmp_path, tokenizer):
    source, smoothed = tmp_path / "source.onnx", tmp_path / "smoothed.onnx"
    encoder_like(source, tokenizer.get_vocab_size())
    chosen = smooth(source, smoothed, tokenizer, CALIBRATION)
    assert [c.node for c in chosen] == ["layer.0/output/dense/MatMul"]
    assert chosen[0].alpha is not None and chosen[0].error_ratio < 1
    exact = run(source, tokenizer, HELD_OUT)
    for got, want in zip(run(smoothed, tokenizer, HELD_OUT), exact, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))

    def int8_error(path) -> float:
        target = tmp_path / f"{path.stem}.int8.onnx"
        # MatMul only: the toy's embedding table is not what is tested (export quantises the real one).
        quantize_dynamic(str(path), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"])
        return sum(float(np.abs(got - want).mean()) for got, want in zip(run(target, tokenizer, HELD_OUT), exact,
                                                                        strict=True))

    smoothed_error, plain_error = int8_error(smoothed), int8_error(source)
    assert smoothed_error < plain_error / 2


def test_choose_smooths_an_outlier_channel_and_returns_the_scales_it_chose():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(16, 8)).astype(np.float32)
    xs = [rng.normal(size=(12, 16)).astype(np.float32) for _ in range(5)]
    for x in xs:
        x[:, 5] *= 80
    alpha, ratio, s = choose(xs, w)
    assert alpha is not None and ratio < 0.5
    assert s.shape == (16,) and s[5] == s.max()  # the outlier channel is divided the most


def test_the_simulated_rounding_is_what_onnx_runtime_computes(tmp_path):
    """int8_activations(x) @ int8_weights(w) against ONNX Runtime running quantize_dynamic's output of one MatMul."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 7, 16)).astype(np.float32)
    x[..., 2] *= 30
    w = rng.normal(size=(16, 8)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "one",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 7, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "one.onnx"))
    quantize_dynamic(str(tmp_path / "one.onnx"), str(tmp_path / "one.int8.onnx"), per_channel=True,
                     weight_type=QuantType.QInt8)
    got = ort.InferenceSession(str(tmp_path / "one.int8.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    simulated = int8_activations(x[0]) @ int8_weights(w)
    unquantised = x[0] @ w
    assert np.abs(got[0] - simulated).max() < 1e-3 * np.abs(unquantised).max()
    assert np.abs(unquantised - simulated).max() > 1e-2 * np.abs(unquantised).max()  # the rounding is there to see


def test_targets_are_the_weight_matmuls_and_fused_attention_of_the_shipped_graph():
    model = onnx.load(str(default_model_dir() / "model.fp16.onnx"), load_external_data=False)
    found = targets(model)
    assert sum(n.op_type == "Attention" for n in found) == 6
    assert sum(n.op_type == "MatMul" for n in found) == 18  # per layer: attention output, FFN in, FFN out


def test_without_calibration_texts_export_keeps_the_down_projections_fp32_and_says_so(tmp_path, tokenizer):
    from models.export import quantize_int8

    source = tmp_path / "source.onnx"
    encoder_like(source, tokenizer.get_vocab_size())
    unsmoothed = quantize_int8(source, tmp_path / "none.onnx", tokenizer, [])
    assert unsmoothed.smoothing == [] and unsmoothed.kept_fp32 == ["layer.0/output/dense/MatMul"]
    assert "MatMulInteger" not in {n.op_type for n in onnx.load(str(tmp_path / "none.onnx")).graph.node}
    assert "not smoothed" in unsmoothed.summary("no texts")["recipe"]
    smoothed = quantize_int8(source, tmp_path / "some.onnx", tokenizer, CALIBRATION)
    assert smoothed.texts == len(CALIBRATION) and smoothed.kept_fp32 == [] and len(smoothed.smoothing) == 1
    assert "MatMulInteger" in {n.op_type for n in onnx.load(str(tmp_path / "some.onnx")).graph.node}
    assert "smoothed per channel" in smoothed.summary("dev")["recipe"]
