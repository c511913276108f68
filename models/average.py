"""Checkpoint averaging: a weighted mean of the weights of checkpoints fine-tuned from one start.

Continuing the tweet-trained default on formal news moves it towards newswire and away from
tweets. Averaging the two checkpoints' weights (weight-space ensembling, Wortsman et al., "Robust
fine-tuning of zero-shot models", CVPR 2022) often keeps most of each one's gains at one model's
inference cost; the weights are chosen on dev files only (docs/MODEL.md).

    python -m models.average runs/default-recovered runs/formal7 runs/formal8 --weights 0.12 0.44 0.44 --out runs/avg
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path


def _merged_record(checkpoints: Sequence[Path], weights: Sequence[float]) -> dict:
    """The averaged checkpoint's `train.json`: every ingredient's data files (the card's sources and
    attribution come from them), each ingredient's own settings, and what export reads (max_tokens)."""
    metas = [json.loads((Path(c) / "train.json").read_text()) for c in checkpoints]
    # One entry per file content (sha256), under a path that exists here if any ingredient recorded
    # one: export samples the training files to choose the int8 re-check margin, and skips the
    # re-check when they are missing.
    data: dict[str, dict[str, dict]] = {"train": {}, "dev": {}}
    for meta in metas:
        for part, entries in data.items():
            for entry in (meta.get("data") or {}).get(part, []):
                known = entries.get(entry["sha256"])
                if known is None or (not Path(known["path"]).is_file() and Path(entry["path"]).is_file()):
                    entries[entry["sha256"]] = entry
    max_tokens = {int((m.get("config") or {}).get("max_tokens", 64)) for m in metas}
    if len(max_tokens) != 1:
        raise ValueError(f"the checkpoints were trained with different max_tokens {sorted(max_tokens)}")
    # Style markers (models/text.py): an average reads texts as its ingredients did, so they must agree.
    marked = {(m.get("config") or {}).get("social_files") is not None for m in metas}
    if len(marked) != 1:
        raise ValueError("some checkpoints were trained with style markers (--style-markers) and some without: "
                         "they read different texts and cannot be averaged")
    social = sorted({f for m in metas for f in (m.get("config") or {}).get("social_files") or []})
    return {
        "base": metas[-1].get("base"),
        "config": {"max_tokens": max_tokens.pop(), **({"social_files": social} if marked.pop() else {})},
        "data": {part: list(entries.values()) for part, entries in data.items()},
        # An ingredient that is itself an average keeps its own ingredients, so the card of an
        # average of averages still names every run behind it.
        "averaged": [{"checkpoint": str(c), "weight": w, "steps": m.get("steps"), "config": m.get("config"),
                      **({"averaged": m["averaged"]} if m.get("averaged") else {})}
                     for c, w, m in zip(checkpoints, weights, metas)],
        "steps": max(int(m.get("steps") or 0) for m in metas),
        "dev_metrics": None,  # no ingredient's figures are the average's: `finsentry evaluate` measures it
    }


def average(checkpoints: Sequence[Path], weights: Sequence[float], out: Path) -> list[float]:
    """Write the weighted mean of `checkpoints` to `out` and return the weights normalised to sum 1.

    Each checkpoint is a `finsentry train` directory (encoder/, heads.pt, labels.json, train.json,
    tokenizer.json). Float parameters are averaged; integer buffers and the tokenizer must be equal.
    Raises ValueError when there are fewer than two checkpoints or not one finite, non-negative
    weight each (not all 0), or when labels, parameter names or shapes, integer buffers, tokenizers
    or max_tokens differ (they cannot have come from one start); FileNotFoundError for a missing file.
    """
    import torch

    from models.network import load_checkpoint, save_checkpoint

    if len(checkpoints) != len(weights) or len(checkpoints) < 2:
        raise ValueError(f"need one weight per checkpoint and at least two: {len(checkpoints)} checkpoints, {len(weights)} weights")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0: {list(weights)}")
    norm = [w / float(sum(weights)) for w in weights]
    first = Path(checkpoints[0])
    tokenizer = (first / "tokenizer.json").read_bytes()
    for path in checkpoints[1:]:
        if (Path(path) / "tokenizer.json").read_bytes() != tokenizer:
            raise ValueError(f"{path}: its tokenizer differs from {first}'s")
    record = _merged_record(checkpoints, norm)
    models = [load_checkpoint(Path(c)) for c in checkpoints]
    labels = models[0][1]
    states = [m.state_dict() for m, _ in models]
    for path, (_, other), state in zip(checkpoints[1:], models[1:], states[1:]):
        if other != labels:
            raise ValueError(f"{path}: its labels differ from {first}'s; only checkpoints of one label set average")
        if {k: tuple(v.shape) for k, v in state.items()} != {k: tuple(v.shape) for k, v in states[0].items()}:
            raise ValueError(f"{path}: its parameters differ from {first}'s (another architecture)")
    merged = {}
    for name, value in states[0].items():
        if value.is_floating_point():
            merged[name] = sum(w * s[name].to(torch.float32) for w, s in zip(norm, states)).to(value.dtype)
        elif all(torch.equal(value, s[name]) for s in states[1:]):  # position ids and the like
            merged[name] = value
        else:
            raise ValueError(f"integer buffer {name} differs between the checkpoints")
    model = models[0][0]
    model.load_state_dict(merged)
    save_checkpoint(model, Path(out), labels, record)
    (Path(out) / "tokenizer.json").write_bytes(tokenizer)
    return norm


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.average", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="finsentry train checkpoint directories")
    parser.add_argument("--weights", nargs="+", type=float, help="one per checkpoint, normalised to sum 1 (default: equal)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    args = parser.parse_args(argv)
    try:
        norm = average(args.checkpoints, args.weights or [1.0] * len(args.checkpoints), args.out)
    except (ValueError, FileNotFoundError) as exc:
        parser.exit(2, f"models.average: {exc}\n")
    print(json.dumps({"out": str(args.out), "weights": [round(w, 6) for w in norm]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
