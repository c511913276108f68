"""Batch-independent int8 candidates against the shipped dynamic int8+recheck, in one run.

    python bench/quantization.py --model models/default --seconds 3 --rounds 3 --json runs/bench-quantization.json

The shipped CPU model quantises activations per run (dynamic int8), so a text's label would depend
on its batch-mates and the CPU runs one text at a time. This builds the candidates that fix scales
per text or per calibration instead, from the model directory's fp32 graph (`model.fp32.onnx`, or
rebuilt from `model.fp16.onnx`, whose weights it has), and reports for each, in one run:

- agreement with fp32 labels (topic, sentiment) on the dev sets;
- batch-mate independence: the largest logit change of a text run alone vs in a length-varied batch;
- throughput side by side with the shipped int8+recheck, rounds alternating, at several chunk sizes;
- for each model without a re-check, agreement and share re-run with models/recheck.py's re-check
  at each margin of its grid (judged on the dev texts, so optimistic for the candidates).

Candidates: static QDQ int8 calibrated on training texts (`quantize_static`, MinMax, per-channel
weights, u8 activations), with the feed-forward output MatMuls kept fp32 as exports did before smoothing
and with every MatMul and Gemm quantised; and 8-bit weight-only `MatMulNBits` (accuracy level 4:
activations quantised per token row at run time, so per text), blocks of 32 and 128.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.inference import DEV_FILES, agreement, finish, fp32_reference, measure
from models.data import load_file, model_texts
from models.export import DOWN_PROJECTIONS, fp32_graph
from models.recheck import GRID, agreement_after_recheck
from models.runtime import Classifier
from models.tokenize import encode, load_tokenizer
from models.variants import INT8, INT8_RECHECK

TRAIN_FILES = [str(ROOT.parent / "shared/data/twitter-financial-news-topic/train.csv"),
               str(ROOT.parent / "shared/data/twitter-financial-news-sentiment/train.csv")]


def static_int8(fp32: Path, target: Path, tokenizer, calibration: list[str], every_matmul: bool) -> None:
    """Static QDQ int8, activation ranges from `calibration` texts each run alone (MinMax)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Texts(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            text = next(self.left, None)
            if text is None:
                return None
            ids, mask = encode(tokenizer, [text])
            return {"input_ids": ids, "attention_mask": mask}

    typed = target.with_suffix(".typed.onnx")  # the fused contrib ops need ORT's symbolic shape inference
    quant_pre_process(str(fp32), str(typed), skip_optimization=True, auto_merge=True)
    nodes = onnx.load(str(typed), load_external_data=False).graph.node
    keep = [] if every_matmul else [n.name for n in nodes if n.op_type == "MatMul" and DOWN_PROJECTIONS.search(n.name)]
    quantize_static(str(typed), str(target), Texts(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul", "Gemm"] if every_matmul else ["MatMul"], per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep)
    typed.unlink()


def rowwise_int8(fp32: Path, target: Path, block: int) -> None:
    """8-bit weights in blocks of `block` input channels (MatMulNBits); at accuracy level 4 the
    activations are quantised per row and block at run time, so each token by its own scale."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, accuracy_level=4, bits=8,
                                          op_types_to_quantize=("MatMul",))
    quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=8, block_size=block, is_symmetric=True,
                                     accuracy_level=4, algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)


def candidate_dir(model_dir: Path, work: Path, name: str, build: Callable[[Path], None]) -> Path:
    """A model directory whose `model.onnx` is the candidate, so the runtime's int8 variant runs it."""
    out = work / name
    out.mkdir()
    for shared in ("tokenizer.json", "labels.json"):
        shutil.copy(model_dir / shared, out / shared)
    card = json.loads((model_dir / "card.json").read_text())
    (out / "card.json").write_text(json.dumps({"max_tokens": card.get("max_tokens", 64), "version": name}))
    build(out / INT8.file)
    return out


def batchmate_drift(clf: Classifier, texts: list[str], size: int = 32) -> float:
    """Largest |logit| change of a text run alone vs in one unsorted batch of `size` texts."""
    batch = texts[:size]
    together = clf.logits(batch)
    alone = [clf.logits([t]) for t in batch]
    return max(float(np.abs(together[h] - np.concatenate([a[h] for a in alone])).max()) for h in (0, 1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "default"), help="the shipped model directory")
    p.add_argument("--data", nargs="*", default=DEV_FILES, help="labelled texts for agreement (the dev sets)")
    p.add_argument("--train", nargs="*", default=TRAIN_FILES, help="calibration texts are drawn from these")
    p.add_argument("--calibration", type=int, default=300, help="training texts to calibrate static scales on")
    p.add_argument("--chunks", default="1,32", help="texts per run (length-sorted chunks) for the candidates")
    p.add_argument("--speed-texts", type=int, default=1000, help="dev texts per timed micro-batch cycle")
    p.add_argument("--seconds", type=float, default=3.0, help="time budget per row and round")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds over every row")
    p.add_argument("--json", dest="json_out", default=None)
    args = p.parse_args(argv)

    model_dir = Path(args.model)
    texts = model_texts([ex for path in args.data for ex in load_file(path)])
    train = model_texts([ex for path in args.train for ex in load_file(path)])
    calibration = random.Random(0).sample(train, args.calibration)
    # Length-varied texts for the batch-mate check: one in twenty of the dev texts, in file order.
    mixed = texts[::20]
    tokenizer = load_tokenizer(model_dir / "tokenizer.json")
    print(f"{len(texts)} dev texts; {len(calibration)} calibration texts from {len(train)} training texts",
          file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fp32 = fp32_graph(model_dir, work)
        builders: dict[str, Callable[[Path], None]] = {
            "static QDQ int8, FFN outputs fp32": lambda t: static_int8(fp32, t, tokenizer, calibration, False),
            "static QDQ int8, every MatMul": lambda t: static_int8(fp32, t, tokenizer, calibration, True),
            "row-wise 8-bit, blocks of 32": lambda t: rowwise_int8(fp32, t, 32),
            "row-wise 8-bit, blocks of 128": lambda t: rowwise_int8(fp32, t, 128),
        }
        candidates = {name: Classifier.load(candidate_dir(model_dir, work, re.sub(r"\W+", "-", name), build),
                                            device="cpu", variant=INT8.name)
                      for name, build in builders.items()}
        shipped = {v.name: Classifier.load(model_dir, device="cpu", variant=v.name) for v in (INT8_RECHECK, INT8)}
        print("agreement with fp32 on the dev texts", file=sys.stderr)
        ref = fp32_reference(model_dir).all_logits(texts, batch_size=32)  # padding does not move fp32 logits
        quality: dict[str, dict[str, float]] = {}
        # With the re-check added: at each margin of models/recheck.py's grid, agreement and the
        # share re-run. Margins judged on these dev texts flatter a candidate; the shipped one was
        # chosen on training texts.
        margins: list[dict[str, object]] = []
        for name, clf in [*shipped.items(), *candidates.items()]:
            got = clf.all_logits(texts)
            quality[name] = {**agreement(ref, got), "batchmate_drift": batchmate_drift(clf, mixed)}
            print(f"  {name}: {quality[name]}", file=sys.stderr)
            if clf.recheck is None:
                margins += [{"model": name, "margin": m, **dict(zip(
                    ("topic_agreement", "sentiment_agreement", "rerun_share"),
                    agreement_after_recheck(got, ref, m), strict=True))} for m in GRID]

        speed_texts = texts[:: max(1, len(texts) // args.speed_texts)]
        rows: list[dict[str, object]] = []
        runs = [(name, clf, 1) for name, clf in shipped.items()]
        runs += [(name, clf, chunk) for name, clf in candidates.items() for chunk in map(int, args.chunks.split(","))]
        for _ in range(args.rounds):  # rounds alternate every row, so drift in the machine hits all alike
            for name, clf, chunk in runs:
                r = measure(lambda b, c=clf, n=chunk: c.predict(b, batch_size=n), speed_texts, 64, args.seconds)
                rows.append({"model": name, "chunk": chunk, **r})
                print(f"  {name} chunk {chunk}: {r['per_s']:.0f}/s", file=sys.stderr)

    def per_s(name: str, chunk: int) -> float:
        return float(np.mean([r["per_s"] for r in rows if r["model"] == name and r["chunk"] == chunk]))

    base = per_s(INT8_RECHECK.name, 1)
    print("\n| model | texts per run | headlines/s | vs int8+recheck | topic agreement | sentiment agreement "
          "| batch-mate drift (max abs logit) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, _, chunk in runs:
        q = quality[name]
        print(f"| {name} | {chunk} | {per_s(name, chunk):.0f} | {per_s(name, chunk) / base:.2f} | "
              f"{q['topic_agreement']:.4f} | {q['sentiment_agreement']:.4f} | {q['batchmate_drift']:.3g} |")
    print("\n| model | re-check margin | topic agreement | sentiment agreement | re-run share |")
    print("|---|---:|---:|---:|---:|")
    for m in margins:
        print(f"| {m['model']} | {m['margin']} | {m['topic_agreement']:.4f} | {m['sentiment_agreement']:.4f} | "
              f"{m['rerun_share']:.1%} |")
    finish([*rows, *({"model": k, **v} for k, v in quality.items()), *margins], args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
