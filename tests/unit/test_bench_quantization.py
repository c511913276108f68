"""The pieces of bench/quantization.py and bench/inference.py that its agreement figures rest on."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from bench.inference import agreement
from bench.quantization import fp32_graph
from models.variants import FP16


def _fp16_graph(weight: np.ndarray) -> onnx.ModelProto:
    """x (fp32) -> Cast to fp16 -> MatMul with fp16 weight -> Cast to fp32, as export's fp16 file does."""
    nodes = [helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
             helper.make_node("MatMul", ["x16", "w"], ["y16"]),
             helper.make_node("Cast", ["y16"], ["y"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
                              [numpy_helper.from_array(weight.astype(np.float16), "w")],
                              value_info=[helper.make_tensor_value_info("x16", TensorProto.FLOAT16, [None, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_fp32_graph_widens_the_fp16_weights_and_keeps_them_exact(tmp_path):
    weight = np.array([[0.1, -2.0], [3.3, 0.25], [1e-3, 7.0]], dtype=np.float32)
    model_dir, work = tmp_path / "model", tmp_path / "work"
    model_dir.mkdir()
    work.mkdir()
    onnx.save(_fp16_graph(weight), str(model_dir / FP16.file))
    path = fp32_graph(model_dir, work)
    model = onnx.load(str(path))
    assert {t.data_type for t in model.graph.initializer} == {TensorProto.FLOAT}
    assert all(a.i == TensorProto.FLOAT for n in model.graph.node for a in n.attribute if a.name == "to")
    x = np.array([[1.0, 2.0, 3.0], [-0.5, 0.0, 4.0]], dtype=np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    # the fp16-rounded weights, multiplied in fp32: no second rounding of inputs or outputs
    np.testing.assert_allclose(got, x @ weight.astype(np.float16).astype(np.float32), rtol=1e-6)


def test_fp32_graph_prefers_the_exported_fp32_file(tmp_path):
    (tmp_path / "model.fp32.onnx").write_bytes(b"")
    assert fp32_graph(tmp_path, tmp_path / "unused") == tmp_path / "model.fp32.onnx"


def test_agreement_counts_equal_argmax_per_head():
    ref = (np.array([[3.0, 1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]] * 4))
    got = (np.array([[2.0, 1.9], [2.1, 2.0], [1.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 1.0, 0.0]] + [[1.0, 0.0, 0.0]] * 3))
    assert agreement(ref, got) == {"topic_agreement": 0.75, "sentiment_agreement": 0.75}
