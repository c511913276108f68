"""How fast would a student with fewer encoder layers be? Speed only, before anyone trains one.

    python bench/depth.py --checkpoint runs/default --layers 6,3,2 [--json out.json]

Distilling into a shallower student is the usual way to buy CPU speed, and it costs accuracy, so
it is worth knowing first what depth the speed target needs. Each row keeps the first N encoder
layers of the checkpoint (the heads stay; the predictions are meaningless), exports it as the
shipped int8 model is exported, and runs the int8 runtime on the same texts as bench/inference.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.inference import DEV_FILES, finish, load_texts, measure
from models.export import export
from models.network import load_checkpoint, save_checkpoint
from models.runtime import Classifier


def truncated(checkpoint: Path, layers: int, out: Path) -> Path:
    """A copy of the checkpoint with only its first `layers` encoder layers."""
    import torch

    model, labels = load_checkpoint(checkpoint)
    kept = model.encoder.encoder.layer[:layers]
    if len(kept) != layers:
        raise SystemExit(f"--layers: the checkpoint has {len(model.encoder.encoder.layer)} layers, not {layers}")
    model.encoder.encoder.layer = torch.nn.ModuleList(kept)
    model.encoder.config.num_hidden_layers = layers
    meta = json.loads((checkpoint / "train.json").read_text())
    save_checkpoint(model, out, labels, meta)
    (out / "tokenizer.json").write_bytes((checkpoint / "tokenizer.json").read_bytes())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="runs/default", help="torch checkpoint to cut down (from finsentry train)")
    p.add_argument("--layers", default="6,3,2", help="encoder depths to measure, comma-separated")
    p.add_argument("--data", nargs="*", default=DEV_FILES)
    p.add_argument("--batches", default="1,32,256", help="texts per predict() call")
    p.add_argument("--seconds", type=float, default=4.0, help="time budget per row")
    p.add_argument("--json", dest="json_out", default=None)
    args = p.parse_args(argv)
    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "heads.pt").is_file():
        raise SystemExit(f"--checkpoint {checkpoint}: not a finsentry checkpoint; train one with `finsentry train`")
    try:
        depths = [int(n) for n in args.layers.split(",")]
        batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        raise SystemExit("--layers and --batches take comma-separated integers, e.g. --layers 6,3,2") from None
    if min(depths + batches) < 1:
        raise SystemExit("--layers and --batches take integers of 1 or more, e.g. --layers 6,3,2")

    texts = load_texts(args.data)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            model_dir = Path(tmp) / f"onnx-{depth}"
            export(truncated(checkpoint, depth, Path(tmp) / f"layers-{depth}"), model_dir, keep_fp32=False,
                   fp16=False, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
            clf = Classifier.load(model_dir, device="cpu", variant="int8")
            for batch in batches:
                r = measure(clf.predict, texts, batch, args.seconds)
                rows.append({"layers": depth, "batch": batch, **r})
                print(f"  {depth} layers, batch {batch}: {r['per_s']:.0f}/s", file=sys.stderr)
    full = max(depths)
    best_full = max(r["per_s"] for r in rows if r["layers"] == full)
    print(f"\n| encoder layers | batch | headlines/s (int8) | p50 ms/batch | p99 ms/batch | vs best at {full} layers |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['layers']} | {r['batch']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['per_s'] / best_full:.2f}x |")
    finish(rows, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
