"""Re-quantise an exported model directory's int8 file with export's current recipe, without its checkpoint.

`finsentry export` quantises the checkpoint it exports. A directory exported with an older recipe
(models/default was, before int8 inputs were smoothed and every MatMul quantised) is brought up to
it here from its own fp32 graph (`model.fp32.onnx`, or `model.fp16.onnx` widened, which is what the
CPU re-check computes): the same calibration texts as export (every other --dev text in the same
seeded order, labels unused), the same re-check margin rule, and parity judged on the other half,
against that fp32 graph (there is no torch checkpoint here; export's own fp32 parity, kept in the
card, compared that graph with torch). Each style model the card names is re-quantised too, in its
own directory and on the same texts. card.json keeps everything else and records what was done
under `export.requantized`.

Stop the workers that load the directory first: each directory's new `model.onnx` and `card.json`
are put in place by two renames, and a worker starting between them refuses the mismatched pair.

    python scripts/requantize.py models/default --dev FILE...
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.data import Columns, DataError, load_file, model_texts, styled
from models.export import (
    CALIBRATION_TEXTS,
    MIN_CHOOSE_TEXTS,
    _choose_recheck,
    _export_lock,
    _op_types,
    _ort_logits,
    fp32_graph,
    parity,
    quantization_summary,
    quantize_int8,
)
from models.runtime import Classifier, read_card
from models.tokenize import load_tokenizer
from models.variants import FP16, INT8, INT8_RECHECK


def requantize(directory: Path, dev: list[str], progress=print) -> dict:
    """Rebuild `directory`'s `model.onnx` and the card fields that describe it; returns the new card."""
    card = read_card(directory)
    if card is None:
        raise DataError(f"{directory}: no card.json; give a directory written by `finsentry export`")
    config = card.get("train_config") or {}
    examples = [ex for path in dev
                for ex in styled(path, load_file(path, Columns(**config.get("columns") or {}), warn=None),
                                 config.get("social_files"))]
    texts = random.Random(0).sample(model_texts(examples), len(examples))
    if len(texts) < 2 * MIN_CHOOSE_TEXTS:
        raise DataError(f"--dev: {len(texts)} texts; give at least {2 * MIN_CHOOSE_TEXTS}, half to calibrate on "
                        "and half to judge parity on")
    choose_on, judge_on = texts[::2], texts[1::2]
    source = "every other --dev text (seeded order), labels unused; parity is on the others"
    tokenizer = load_tokenizer(directory / "tokenizer.json", int(card.get("max_tokens", 64)))
    with tempfile.TemporaryDirectory(dir=directory, prefix=".requantize-") as tmp:
        build = Path(tmp)
        for name in ("tokenizer.json", "labels.json"):
            shutil.copy(directory / name, build / name)
        os.link(directory / FP16.file, build / FP16.file)
        fp32 = fp32_graph(directory, build)
        progress(f"{directory}: quantising every MatMul to per-channel int8, inputs smoothed on "
                 f"{min(len(choose_on), CALIBRATION_TEXTS)} texts")
        smoothing = quantize_int8(fp32, build / INT8.file, tokenizer, choose_on)
        files = {**card.get("files", {}), INT8.file: (build / INT8.file).stat().st_size}
        (build / "card.json").write_text(json.dumps({"max_tokens": card.get("max_tokens", 64),
                                                     "sha256": card.get("sha256"), "files": files}))
        recheck = _choose_recheck(build, fp32, tokenizer, choose_on, source, progress)
        (build / "card.json").write_text(json.dumps({"max_tokens": card.get("max_tokens", 64), "recheck": recheck,
                                                     "sha256": card.get("sha256"), "files": files}))
        progress(f"parity on {len(judge_on)} dev texts (the half not calibrated on), against the fp32 graph")
        ref = _ort_logits(fp32, tokenizer, judge_on)
        parities = [parity(v, ref, Classifier.load(build, device="cpu", variant=v).all_logits(judge_on))
                    for v in (INT8.name, INT8_RECHECK.name)]
        for p in parities:
            progress(f"  {p.variant}: max |logit diff| {p.max_abs_logit_diff:.4g}, agreement topic "
                     f"{p.topic_agreement:.4f} sentiment {p.sentiment_agreement:.4f}")
        export = card.get("export") or {}
        kept = [p for p in export.get("parity") or [] if p.get("variant") not in (INT8.name, INT8_RECHECK.name)]
        card.update({
            "default_variant": INT8_RECHECK.name,
            "recheck": recheck,
            "files": files,
            "op_types_int8": dict(Counter(_op_types(build / INT8.file)).most_common(12)),
            "export": {**export,
                       "quantization": quantization_summary(smoothing, min(len(choose_on), CALIBRATION_TEXTS), source),
                       "parity": kept + [asdict(p) for p in parities],
                       "requantized": {"at": datetime.now(UTC).isoformat(timespec="seconds"),
                                       "by": "scripts/requantize.py",
                                       "from": fp32.name if fp32.parent == directory else f"{FP16.file}, widened to fp32",
                                       "parity_reference": "the fp32 graph (int8 and int8+recheck rows)",
                                       "dev": dev}},
        })
        (build / "card.json").write_text(json.dumps(card, indent=2))
        os.replace(build / INT8.file, directory / INT8.file)
        os.replace(build / "card.json", directory / "card.json")
    return card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("directory", type=Path, help="an exported model directory")
    p.add_argument("--dev", nargs="+", required=True, help="labelled files whose texts calibrate and judge int8")
    args = p.parse_args(argv)
    try:
        with _export_lock(args.directory.resolve()):  # not while an export writes the same directory
            card = read_card(args.directory) or {}
            for name in (card.get("style_models") or {}).values():
                requantize(args.directory / name, args.dev)
            requantize(args.directory, args.dev)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
