"""Re-quantise an exported model directory's int8 file with export's current recipe, without its checkpoint.

`finsentry export` quantises the checkpoint it exports. A directory exported with an older recipe
(models/default was, before int8 inputs were smoothed and every MatMul quantised) is brought up to
it here from its own fp32 graph (`model.fp32.onnx`, or else `model.fp16.onnx` widened, which is what
the CPU re-check computes): the same calibration texts as export (`split_dev`: every other --dev
text in the same seeded order, labels unused), the same re-check margin rule, and parity judged on
the other half, against that fp32 graph (there is no torch checkpoint here; each parity row says
its reference), and the int8 it replaces is scored the same way (`export.requantized.before`). Each
style model the card names is re-quantised too, from the same --dev files, each text marked as that
model reads it. card.json keeps everything else, records what was done under `export.requantized`,
and its version gains `+int8.<UTC date and time>`, so that reports tell the int8 files apart. A
directory without `model.fp16.onnx` gets no re-check, as export gives it none.

Every directory is built first, in a hidden `.requantize-*` directory inside it (one a killed run
left is removed by the next); only when all are built are the new files put in place (style models
first, the top directory's card.json last), with termination signals held off meanwhile. Stop the workers that load the directory first: a worker
starting during the renames can meet a new model.onnx with its old card.json, which it refuses.

    python scripts/requantize.py models/default --dev FILE...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.data import Columns, DataError, load_file, model_texts, styled
from models.export import (
    DEV_HALF,
    MIN_CHOOSE_TEXTS,
    export_lock,
    fp32_graph,
    int8_stage,
    op_types,
    ort_logits,
    split_dev,
    terminations_deferred,
    terminations_raise,
    variant_parities,
)
from models.runtime import ModelError, read_card
from models.tokenize import load_tokenizer
from models.variants import FP16, FP32, INT8, INT8_RECHECK

REFERENCE = "the fp32 graph"
BUILD_PREFIX = ".requantize-"


def build(directory: Path, dev: list[str], stack: ExitStack, now: datetime, progress=print) -> tuple[Path, dict]:
    """Build `directory`'s new `model.onnx` and card.json in a hidden directory inside it (removed when
    `stack` closes), stamped `now`; returns that directory and the new card."""
    card = read_card(directory)
    if card is None:
        raise DataError(f"{directory}: no card.json; give a directory written by `finsentry export`")
    fp16 = (directory / FP16.file).is_file()
    if not fp16 and not (directory / FP32.file).is_file():
        raise DataError(f"{directory}: neither {FP16.file} nor {FP32.file}, so no fp32 graph to quantise; "
                        "re-export it with `finsentry export`")
    social = (card.get("train_config") or {}).get("social_files")  # as export marks them: models.data.styled
    texts = model_texts([ex for path in dev for ex in styled(path, load_file(path, Columns(), warn=None), social)])
    choose_on, judge_on = split_dev(texts)
    if not choose_on:
        raise DataError(f"--dev: {len(texts)} texts; give at least {2 * MIN_CHOOSE_TEXTS}, half to calibrate on "
                        "and half to judge parity on")
    tokenizer = load_tokenizer(directory / "tokenizer.json", int(card.get("max_tokens", 64)))
    out = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=directory, prefix=BUILD_PREFIX)))
    for name in ("tokenizer.json", "labels.json"):
        shutil.copy(directory / name, out / name)
    if fp16:
        try:
            os.link(directory / FP16.file, out / FP16.file)
        except OSError:  # a file system without hard links
            shutil.copy(directory / FP16.file, out / FP16.file)
    fp32 = fp32_graph(directory, out)
    progress(f"{directory}:")
    files = dict(card.get("files") or {})
    files.pop(INT8.file, None)
    quantized, recheck = int8_stage(out, fp32, tokenizer, choose_on, DEV_HALF,
                                    {"max_tokens": card.get("max_tokens", 64), "sha256": card.get("sha256"),
                                     "files": files}, fp16, progress)
    files[INT8.file] = (out / INT8.file).stat().st_size
    (out / "card.json").write_text(json.dumps({"max_tokens": card.get("max_tokens", 64), "recheck": recheck,
                                               "sha256": card.get("sha256"), "files": files}))
    progress(f"parity on {len(judge_on)} dev texts (the half int8 was not calibrated on), against {REFERENCE}")
    ref = ort_logits(fp32, tokenizer, judge_on)
    variants = [INT8.name, INT8_RECHECK.name] if recheck else [INT8.name]
    parities = variant_parities(out, ref, judge_on, variants, progress)
    progress("the int8 it replaces, the same way:")
    before = variant_parities(directory, ref, judge_on, [INT8.name] + ([INT8_RECHECK.name] if card.get("recheck") else []),
                              progress)
    export = card.get("export") or {}
    kept = [{"reference": "torch checkpoint", **p} for p in export.get("parity") or []
            if p.get("variant") not in (INT8.name, INT8_RECHECK.name)]
    version = str(card.get("version") or "unknown").split("+int8.")[0]
    card.update({
        "version": f"{version}+int8.{now:%Y%m%d%H%M}",
        "default_variant": INT8_RECHECK.name if recheck else INT8.name,
        "recheck": recheck,
        "files": files,
        "op_types_int8": dict(Counter(op_types(out / INT8.file)).most_common(12)),
        "export": {**export,
                   "quantization": quantized.summary(DEV_HALF),
                   "parity": kept + [{**asdict(p), "reference": REFERENCE} for p in parities],
                   "requantized": {"at": now.isoformat(timespec="seconds"), "by": "scripts/requantize.py",
                                   "from": FP32.file if fp32.parent == directory else f"{FP16.file}, widened to fp32",
                                   "dev": dev,
                                   "before": [{**asdict(p), "reference": REFERENCE} for p in before]}},
    })
    (out / "card.json").write_text(json.dumps(card, indent=2))
    return out, card


def requantize(directory: Path, dev: list[str], progress=print) -> dict:
    """Re-quantise `directory` and each style model its card names; returns the new top card."""
    card = read_card(directory) or {}
    targets = [directory / name for name in (card.get("style_models") or {}).values()] + [directory]
    for target in targets:  # what a killed run left (the caller holds the export lock: none is running)
        for left in target.glob(f"{BUILD_PREFIX}*"):
            shutil.rmtree(left, ignore_errors=True)
    with ExitStack() as stack:
        now = datetime.now(UTC)  # one stamp for every directory of the run
        built = [(target, *build(target, dev, stack, now, progress)) for target in targets]
        replaced: list[str] = []
        try:
            with terminations_deferred():
                for target, out, _ in built:  # the top directory last, its card.json the last rename
                    for name in (INT8.file, "card.json"):
                        os.replace(out / name, target / name)
                        replaced.append(str(target / name))
        except OSError as exc:
            raise DataError(f"cannot put the new files in place ({exc.strerror or exc}: {exc.filename}); "
                            + (f"already replaced: {', '.join(replaced)}, so run it again" if replaced
                               else "nothing was changed")) from None
    return built[-1][2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("directory", type=Path, help="an exported model directory")
    p.add_argument("--dev", nargs="+", required=True, help="labelled files whose texts calibrate and judge int8")
    args = p.parse_args(argv)
    try:
        # A kill while building removes the hidden directories; one export or re-quantisation at a time.
        with terminations_raise(), export_lock(args.directory.resolve()):
            requantize(args.directory, args.dev)
    except (DataError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
