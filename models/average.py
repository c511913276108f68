"""Checkpoint averaging: a weighted mean of the weights of checkpoints fine-tuned from one start.

Continuing the tweet-trained default on formal news moves it towards newswire and away from
tweets. Averaging the two checkpoints' weights (weight-space ensembling, Wortsman et al., "Robust
fine-tuning of zero-shot models", CVPR 2022) often keeps most of each one's gains at one model's
inference cost; the weights are chosen on dev files only (docs/MODEL.md).

    python -m models.average runs/default-recovered runs/formal4 --weights 0.4 0.6 --out runs/avg
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


def average(checkpoints: Sequence[Path], weights: Sequence[float], out: Path) -> None:
    """Write the weighted mean of `checkpoints` (same architecture and labels) to `out`.

    Raises ValueError when the counts differ, a weight is negative or all are zero, or the
    checkpoints' labels or parameter names differ (they cannot have come from one start).
    """
    import torch

    from models.network import load_checkpoint, save_checkpoint

    if len(checkpoints) != len(weights) or len(checkpoints) < 2:
        raise ValueError(f"need one weight per checkpoint and at least two: {len(checkpoints)} checkpoints, {len(weights)} weights")
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0: {list(weights)}")
    total = float(sum(weights))
    models = [load_checkpoint(Path(c)) for c in checkpoints]
    labels = models[0][1]
    for path, (_, other) in zip(checkpoints[1:], models[1:]):
        if other != labels:
            raise ValueError(f"{path}: its labels differ from {checkpoints[0]}'s; only checkpoints of one label set average")
    states = [m.state_dict() for m, _ in models]
    names = set(states[0])
    for path, state in zip(checkpoints[1:], states[1:]):
        if set(state) != names:
            raise ValueError(f"{path}: its parameters differ from {checkpoints[0]}'s (another architecture)")
    merged = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            merged[name] = sum(w / total * s[name].to(torch.float32) for w, s in zip(weights, states)).to(first.dtype)
        else:  # integer buffers (position ids) are equal in every checkpoint
            merged[name] = first
    model = models[0][0]
    model.load_state_dict(merged)
    # The last checkpoint's training record (its data, max_tokens: export reads both) plus the recipe.
    last = Path(checkpoints[-1])
    meta = json.loads((last / "train.json").read_text())
    meta["averaged"] = [{"checkpoint": str(c), "weight": w / total} for c, w in zip(checkpoints, weights)]
    meta["dev_metrics"] = None  # the last checkpoint's, not the average's: `finsentry evaluate` measures it
    save_checkpoint(model, Path(out), labels, meta)
    (Path(out) / "tokenizer.json").write_bytes((last / "tokenizer.json").read_bytes())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--weights", nargs="+", type=float, help="one per checkpoint (default: equal)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    weights = args.weights or [1.0] * len(args.checkpoints)
    try:
        average(args.checkpoints, weights, args.out)
    except (ValueError, FileNotFoundError) as exc:
        parser.exit(2, f"models.average: {exc}\n")
    print(json.dumps({"out": str(args.out), "weights": weights}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
