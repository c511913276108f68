"""Classification speed: the finsentry runtime against the Hugging Face pipeline, same weights, same texts.

    python bench/inference.py --model models/default --checkpoint runs/default [--json out.json]
    python bench/inference.py --model NEW_DIR --compare OLD_DIR   # two models side by side, one run

Reports headlines/s and p50/p99 latency per batch for the ONNX runtime (int8 with its fp16 re-check,
int8 alone and fp32, several batch sizes) and for `transformers.pipeline("text-classification")`
running the same fine-tuned checkpoint (one text at a time, and batched). Texts are the dev files when given, else generated headlines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.data import load_file
from models.runtime import Classifier, ModelError
from models.variants import FP16, FP32, VARIANTS

Logits = tuple[np.ndarray, np.ndarray]


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "torch": torch.__version__}


DEV_FILES = [str(ROOT.parent / "shared/data/twitter-financial-news-topic/dev.csv"),
             str(ROOT.parent / "shared/data/twitter-financial-news-sentiment/dev.csv")]


def load_texts(paths: list[str]) -> list[str]:
    """The dev headlines where they are here, else generated ones, so the bench runs on a fresh clone."""
    texts = [ex.text for path in paths if Path(path).is_file() for ex in load_file(path)]
    if not texts:
        from streams.sources.generate import generate

        texts = [item.record["headline"] for item in generate(3000, rate=5, seed=1)]
    print(f"{len(texts)} texts; mean {np.mean([len(t) for t in texts]):.0f} characters", file=sys.stderr)
    return texts


def finish(rows: list[dict[str, object]], json_out: str | None) -> None:
    """Name the machine under the table, and keep the rows with it where asked."""
    if json_out:
        Path(json_out).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    print(f"\nmachine: {json.dumps(machine())}")


def measure(run_batch, texts: list[str], batch: int, budget_s: float) -> dict[str, float]:
    """Run batches over the texts (cycling) until the time budget is spent; latency per batch."""
    run_batch(texts[:batch])  # warm-up
    latencies, done, start, i = [], 0, time.perf_counter(), 0
    while time.perf_counter() - start < budget_s or done < batch * 5:
        chunk = texts[i : i + batch] if i + batch <= len(texts) else texts[:batch]
        i = i + batch if i + batch <= len(texts) else batch
        t0 = time.perf_counter()
        run_batch(chunk)
        latencies.append(time.perf_counter() - t0)
        done += len(chunk)
    total = time.perf_counter() - start
    return {"texts": done, "per_s": done / total, "p50_ms": float(np.percentile(latencies, 50) * 1e3),
            "p99_ms": float(np.percentile(latencies, 99) * 1e3)}


def fp32_reference(directory: str | Path) -> Classifier:
    """fp32 arithmetic on the CPU: the fp32 variant where export kept its file, else the fp16
    weights, which ONNX Runtime computes in fp32 on a CPU (models/recheck.py)."""
    try:
        return Classifier.load(directory, device="cpu", variant=FP32.name)
    except ModelError:
        return Classifier.load(directory, device="cpu", variant=FP16.name)


def agreement(ref: Logits, got: Logits) -> dict[str, float]:
    """Share of texts whose topic and sentiment labels equal the reference's; logits [texts, labels]."""
    return {"topic_agreement": float((ref[0].argmax(1) == got[0].argmax(1)).mean()),
            "sentiment_agreement": float((ref[1].argmax(1) == got[1].argmax(1)).mean())}


def hf_pipeline(checkpoint: Path):
    """The Hugging Face text-classification pipeline over the fine-tuned checkpoint (sentiment head)."""
    import torch
    from transformers import PreTrainedTokenizerFast, pipeline
    from transformers.modeling_outputs import SequenceClassifierOutput
    from transformers.modeling_utils import PreTrainedModel

    from models.network import load_checkpoint

    inner, labels = load_checkpoint(checkpoint)
    config = inner.encoder.config
    config.id2label = dict(enumerate(labels["sentiment"]))
    config.label2id = {v: k for k, v in config.id2label.items()}

    class Sentiment(PreTrainedModel):
        config_class = type(config)
        base_model_prefix = "inner"

        def __init__(self, cfg, model) -> None:
            super().__init__(cfg)
            self.inner = model

        def forward(self, input_ids=None, attention_mask=None, **_: object) -> SequenceClassifierOutput:
            return SequenceClassifierOutput(logits=self.inner(input_ids, attention_mask)[1])

    model = Sentiment(config, inner).eval()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(checkpoint / "tokenizer.json"), pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", unk_token="[UNK]", model_max_length=64)
    torch.set_num_threads(os.cpu_count() or 1)
    return pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1, truncation=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "default"), help="ONNX model directory")
    p.add_argument("--checkpoint", default=None, help="torch checkpoint of the same model, for the HF baseline")
    p.add_argument("--data", nargs="*", default=DEV_FILES)
    p.add_argument("--batches", default="1,8,32,64,128,256", help="texts per predict() call (a micro-batch)")
    p.add_argument("--seconds", type=float, default=6.0, help="time budget per row")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--json", dest="json_out", default=None)
    p.add_argument("--compare", default=None, metavar="DIR", help="a second model directory: both run in the default "
                   "variant, alternating batch size by batch size, and the table gives new/old")
    p.add_argument("--agreement", action="store_true", help="with --compare: also the share of the texts on which each model's "
                   "labels equal its directory's fp32 labels (one untimed pass over every text per model)")
    args = p.parse_args(argv)

    texts = load_texts(args.data)
    if args.compare:
        return compare(args.model, args.compare, texts, [int(b) for b in args.batches.split(",")], args.seconds,
                       args.device, args.json_out, args.agreement)
    rows: list[dict[str, object]] = []
    batches = [int(b) for b in args.batches.split(",")]
    # Every variant compared on this device (models/variants.py); fp32 runs where the export kept it.
    variants = [v.name for v in VARIANTS.values() if args.device in v.compared_on]
    for variant in variants:
        try:
            clf = Classifier.load(args.model, device=args.device, variant=variant)
        except ModelError as exc:
            print(f"  skipping {variant}: {exc}", file=sys.stderr)
            continue
        for batch in batches:
            before = clf.rechecked
            r = measure(lambda chunk, c=clf: c.predict(chunk), texts, batch, args.seconds)
            rechecked = (clf.rechecked - before) / (r["texts"] + batch)  # measure() warms up on one batch
            rows.append({"engine": f"finsentry runtime ({variant}, {clf.provider.removesuffix('ExecutionProvider')})",
                         "batch": batch, **r, "rechecked_share": round(rechecked, 4)})
            print(f"  {rows[-1]['engine']} batch {batch}: {r['per_s']:.0f}/s"
                  + (f", {rechecked:.1%} re-checked" if clf.recheck else ""), file=sys.stderr)
    if args.checkpoint:
        pipe = hf_pipeline(Path(args.checkpoint))
        for batch in (1, 32):
            r = measure(lambda chunk, b=batch: pipe(chunk, batch_size=b), texts, batch, args.seconds)
            rows.append({"engine": "HF pipeline (torch fp32)", "batch": batch, **r})
            print(f"  HF pipeline batch {batch}: {r['per_s']:.0f}/s", file=sys.stderr)
    baseline = next((r["per_s"] for r in rows if r["engine"].startswith("HF") and r["batch"] == 1), None)
    print("\n| engine | batch | headlines/s | p50 ms/batch | p99 ms/batch | vs HF pipeline (batch 1) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['per_s'] / baseline:.1f}x" if baseline else "n/a"
        print(f"| {r['engine']} | {r['batch']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {ratio} |")
    finish(rows, args.json_out)
    return 0


def compare(new: str, old: str, texts: list[str], batches: list[int], seconds: float, device: str,
            json_out: str | None, with_agreement: bool = False) -> int:
    """Old and new model in their default variant, alternating per batch size so drift hits both;
    with `with_agreement`, each also against its own directory's fp32 labels on every text."""
    models = {"new": Classifier.load(new, device=device), "old": Classifier.load(old, device=device)}
    agreed: dict[str, dict[str, float]] = {}
    if with_agreement:
        for name, directory in (("old", old), ("new", new)):
            ref = fp32_reference(directory).all_logits(texts, batch_size=32)  # padding does not move fp32 logits
            agreed[name] = agreement(ref, models[name].all_logits(texts))
            print(f"  {name} ({models[name].variant}) agreement with fp32: {agreed[name]}", file=sys.stderr)
    rows: list[dict[str, object]] = []
    for batch in batches:
        for name in ("old", "new", "old", "new"):  # two alternating rounds each
            clf = models[name]
            before = clf.rechecked
            r = measure(lambda chunk, c=clf: c.predict(chunk), texts, batch, seconds / 2)
            rows.append({"model": name, "dir": new if name == "new" else old, "version": clf.version,
                         "variant": clf.variant, "batch": batch, **r,
                         "rechecked_share": round((clf.rechecked - before) / (r["texts"] + batch), 4)})
            print(f"  {name} ({clf.variant}) batch {batch}: {r['per_s']:.0f}/s", file=sys.stderr)
    print("\n| batch | old headlines/s | new headlines/s | new/old | old re-checked | new re-checked |")
    print("|---:|---:|---:|---:|---:|---:|")
    for batch in batches:
        def mean(name: str, key: str, batch: int = batch) -> float:
            vals = [float(r[key]) for r in rows if r["batch"] == batch and r["model"] == name]  # type: ignore[arg-type]
            return sum(vals) / len(vals)
        o, n = mean("old", "per_s"), mean("new", "per_s")
        print(f"| {batch} | {o:.0f} | {n:.0f} | {n / o:.2f} | {mean('old', 'rechecked_share'):.1%} | "
              f"{mean('new', 'rechecked_share'):.1%} |")
    for name, a in agreed.items():
        print(f"{name} ({models[name].variant}) labels equal to fp32: topic {a['topic_agreement']:.2%}, "
              f"sentiment {a['sentiment_agreement']:.2%} of {len(texts)} texts")
    finish(rows + [{"model": name, **a} for name, a in agreed.items()], json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
