"""`finsentry train | evaluate | export | classify`: the model's life cycle from the command line."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, nullcontext
from dataclasses import asdict
from pathlib import Path

from models.data import Columns, DataError
from models.jsonl import json_lines
from models.variants import DEVICES, FP32, VARIANTS, variants_help
from streams.usage import positive

# What `classify` reads when --text-col is not given: a labelled file's text, else a story's headline,
# else its body (the project's own generated and produced files have headline and body).
TEXT_FALLBACK = ("text", "headline", "title", "body")
MISSING_CELLS = frozenset({"", "nan", "null", "none", "n/a", "#n/a", "na"})


def _columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-col", default="text", help="text column (default: text)")
    p.add_argument("--topic-col", default="topic", help="topic label column (default: topic)")
    p.add_argument("--sentiment-col", default="sentiment", help="sentiment label column (default: sentiment)")


def _cols(args: argparse.Namespace) -> Columns:
    return Columns(args.text_col, args.topic_col, args.sentiment_col)


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="fine-tune the topic + sentiment model (needs the [train] extra)")
    t.add_argument("--train", nargs="+", required=True, metavar="FILE", help="labelled CSV/JSONL/Parquet files; "
                   "topic-only and sentiment-only files combine (add a feedback export here too)")
    t.add_argument("--dev", nargs="+", required=True, metavar="FILE", help="dev files for early stopping")
    t.add_argument("--out", required=True, help="checkpoint directory to write")
    t.add_argument("--base", default="all-MiniLM-L6-v2", help="base encoder: the shipped default, a path or a Hugging Face id")
    t.add_argument("--epochs", type=positive(float), default=5.0)
    t.add_argument("--batch-size", type=positive(int), default=32)
    t.add_argument("--lr", type=positive(float), default=8e-5)
    t.add_argument("--max-tokens", type=positive(int), default=64)
    t.add_argument("--patience", type=int, default=3, help="evaluations without a dev score gain before stopping; "
                   "the score is the mean over --dev files of each file's macro-F1, so a formal dev file weighs "
                   "as much as a tweet dev file")
    t.add_argument("--seed", type=int, default=13)
    t.add_argument("--device", choices=DEVICES, default="auto")
    t.add_argument("--limit", type=int, default=None, help="train on at most N examples (smoke tests)")
    t.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (the schedule decays to 0 there)")
    t.add_argument("--source-temperature", type=float, default=1.0, metavar="T",
                   help="source-balanced sampling: each --train file is drawn with probability proportional to "
                        "rows**T; 1 keeps the files' proportions (default), 0 draws every file equally, 0.5 between")
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--init", default=None, metavar="CHECKPOINT", help="continue from this checkpoint's weights "
                   "(same labels) instead of the base encoder; python -m models.recover makes one from a model directory")
    t.add_argument("--freeze-embeddings", action="store_true", help="keep the word embeddings fixed (faster on a CPU)")
    t.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget: then evaluate once more and stop")
    t.add_argument("--distill-from", default=None, metavar="CHECKPOINT",
                   help="teacher checkpoint for self-distillation on the --distill-files rows (against forgetting)")
    t.add_argument("--distill-files", nargs="+", default=[], metavar="FILE",
                   help="--train files whose rows also learn the teacher's outputs (e.g. the tweet sets)")
    t.add_argument("--distill-weight", type=positive(float), default=1.0, help="weight of the distillation loss")
    t.add_argument("--distill-temperature", type=positive(float), default=2.0,
                   help="softmax temperature of the distillation loss")
    t.add_argument("--evals-per-epoch", type=int, default=2, help="dev evaluations per epoch (early stopping checks)")
    t.add_argument("--dev-weights", nargs="+", type=float, default=None, metavar="W",
                   help="one weight per --dev file in the early-stopping score (default: every file weighs the same)")
    _columns(t)
    t.set_defaults(handler=run_train)

    e = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class metrics, confusion, calibration; each file on its own and all together")
    e.add_argument("model", help="a checkpoint (from train) or an ONNX model directory (from export)")
    e.add_argument("--data", nargs="+", required=True, metavar="FILE")
    e.add_argument("--variant", default=None, choices=list(VARIANTS), metavar="VARIANT", help=variants_help())
    e.add_argument("--device", choices=DEVICES, default="cpu")
    e.add_argument("--json", dest="json_out", default=None, help="also write the JSON report here")
    e.add_argument("--by-source", action="store_true", help="print one compact row per --data file (and all together) "
                   "instead of the per-class tables: tweets and newswire side by side")
    _columns(e)
    e.set_defaults(handler=run_evaluate)

    x = sub.add_parser("export", help="export a checkpoint to ONNX: fused fp32, int8, fp16, parity report")
    x.add_argument("checkpoint")
    x.add_argument("--out", required=True, help="model directory to write")
    x.add_argument("--dev", nargs="*", default=[], metavar="FILE", help="dev files for the parity report")
    x.add_argument("--no-fp32", action="store_true", help=f"do not keep {FP32.file}")
    _columns(x)
    x.set_defaults(handler=run_export)

    c = sub.add_parser("classify", help="classify a CSV or JSONL file; JSONL predictions out, input order")
    c.add_argument("input", help="CSV or JSONL file, or - for JSONL on stdin")
    c.add_argument("output", nargs="?", default=None, help="JSONL output (default stdout)")
    c.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    c.add_argument("--text-col", default=None, help=f"column to classify (default: the first of {', '.join(TEXT_FALLBACK)} "
                   "that a row has)")
    c.add_argument("--device", choices=DEVICES, default="auto")
    c.add_argument("--batch-size", type=positive(int), default=256)
    c.set_defaults(handler=run_classify)


def run_train(args: argparse.Namespace) -> int:
    from models.train import TrainConfig, train

    try:
        import torch  # noqa: F401
    except ImportError:
        raise DataError("training needs torch and transformers: pip install 'finsentry[train]'") from None
    result = train(TrainConfig(train=args.train, dev=args.dev, out=args.out, base=args.base, columns=_cols(args),
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, max_tokens=args.max_tokens,
                               patience=args.patience, seed=args.seed, device=args.device, limit=args.limit,
                               max_steps=args.max_steps, source_temperature=args.source_temperature,
                               label_smoothing=args.label_smoothing, evals_per_epoch=args.evals_per_epoch,
                               dev_weights=args.dev_weights, init=args.init,
                               freeze_embeddings=args.freeze_embeddings, max_minutes=args.max_minutes,
                               distill_from=args.distill_from, distill_files=args.distill_files,
                               distill_weight=args.distill_weight, distill_temperature=args.distill_temperature))
    print(json.dumps({"checkpoint": str(result.checkpoint), "dev": result.dev_metrics, "steps": result.steps}))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from models.evaluate import by_source, evaluate, table

    result = evaluate(args.model, args.data, _cols(args), args.variant, args.device)
    print(by_source(result) if args.by_source else table(result), file=sys.stderr)
    text = json.dumps(result, indent=2)
    if args.json_out:
        Path(args.json_out).write_text(text)
    print(text)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from models.export import export

    if not (Path(args.checkpoint) / "heads.pt").is_file():
        raise DataError(f"{args.checkpoint}: not a checkpoint (no heads.pt); make one with `finsentry train`")
    export(Path(args.checkpoint), Path(args.out), args.dev, _cols(args), keep_fp32=not args.no_fp32)
    return 0


def _pick(row: dict, columns: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(text, the column it came from) for the first column with a usable text."""
    for column in columns:
        value = row.get(column)
        if isinstance(value, str) and value.strip() and value.strip().lower() not in MISSING_CELLS:
            return value, column
    return None, None


def read_texts(path: str, text_col: str | None) -> Iterator[tuple[int, str | None, dict, str | None]]:
    """(line number, text or None when the row has none, row, column used) for CSV or JSONL input.

    With `text_col` only that column is read; without it, the first of TEXT_FALLBACK a row has.
    """
    columns = (text_col,) if text_col else TEXT_FALLBACK
    if path == "-" or path.lower().endswith((".jsonl", ".ndjson", ".json")):
        with nullcontext(sys.stdin) if path == "-" else open(path, encoding="utf-8-sig") as fh:
            for line_no, row, why in json_lines(fh):
                if why is not None:
                    yield line_no, None, {"error": why}, None
                    continue
                if not isinstance(row, dict):
                    yield line_no, None, {}, None
                    continue
                text, column = _pick(row, columns)
                yield line_no, text, row, column
    elif path.lower().endswith((".csv", ".tsv")):
        from streams.sources.produce import KNOWN_COLUMNS, column_key, sniff_dialect

        with open(path, newline="", encoding="utf-8-sig") as fh:
            dialect = sniff_dialect(fh.read(64 * 1024), frozenset(columns) | KNOWN_COLUMNS)
            fh.seek(0)
            reader = csv.DictReader(fh, dialect=dialect)
            found = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = found
            # A spreadsheet's header is matched whatever its case and punctuation (`Headline`, `Title:`),
            # as `produce` reads it.
            by_key = {column_key(name): name for name in reversed(found)}  # the first of equal names wins
            present = tuple(by_key[column_key(c)] for c in columns if column_key(c) in by_key)
            if not present:
                raise DataError(f"{path}: no {' or '.join(repr(c) for c in columns)} column (found "
                                f"{', '.join(repr(c) for c in found) or 'none'}); name it with --text-col")
            try:
                for line_no, row in enumerate(reader, start=2):
                    if None in row:  # DictReader's key for cells past the header's: a comma outside quotes
                        yield line_no, None, {"error": f"the row has {len(found) + len(row[None])} cells, the header "
                                                       f"{len(found)}: a headline with a comma must be in double "
                                                       "quotes"}, None
                        continue
                    text, column = _pick(row, present)
                    yield line_no, text, row, column
            except csv.Error as exc:
                raise DataError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    else:
        raise DataError(f"{path}: unsupported input; use .csv, .jsonl or - (JSONL on stdin)")


def run_classify(args: argparse.Namespace) -> int:
    from models.runtime import Classifier

    if args.input != "-" and not Path(args.input).is_file():
        raise DataError(f"{args.input}: no such file")
    clf = Classifier.load(args.model, device=args.device)
    print(f"model {clf.version} ({clf.variant}) on {clf.provider}", file=sys.stderr)
    stack = ExitStack()
    out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout  # noqa: SIM115
    done = skipped = 0
    used: dict[str, int] = {}
    started = time.monotonic()
    # (line, text or None, error): rows without text keep their place so output stays in input order.
    progress = sys.stderr.isatty()
    pending: list[tuple[int, str | None, str]] = []

    def flush() -> None:
        nonlocal done
        texts = [t for _, t, _ in pending if t is not None]
        preds = iter(clf.predict(texts, batch_size=args.batch_size))
        for line_no, text, error in pending:
            row = {"line": line_no, "text": text, **asdict(next(preds))} if text is not None else {"line": line_no, "error": error}
            out.write(json.dumps(row) + "\n")
        done += len(texts)
        pending.clear()
        if progress:  # a terminal: one line redrawn; a pipe or a log gets the summary alone
            rate = done / max(1e-9, time.monotonic() - started)
            print(f"\rclassified {done} ({rate:.0f}/s), skipped {skipped}", end="", file=sys.stderr, flush=True)

    try:
        wanted = args.text_col or " or ".join(TEXT_FALLBACK)
        for line_no, text, row, column in read_texts(args.input, args.text_col):
            if text is None:
                skipped += 1
            else:
                used[column or ""] = used.get(column or "", 0) + 1
            pending.append((line_no, text, row.get("error") or f"no text in {wanted}"))
            if len(pending) >= args.batch_size * 4:
                flush()
        if pending:
            flush()
    except UnicodeDecodeError as exc:
        raise DataError(f"{args.input}: not UTF-8 ({exc.reason} at byte {exc.start}); re-save it as UTF-8 "
                        "(\"CSV UTF-8\" in Excel)") from None
    finally:
        stack.close()
    source = ", ".join(f"{column!r} ({n})" for column, n in used.items()) or "none"
    below_progress = "\n" if progress and done else ""
    print(f"{below_progress}classified {done}, skipped {skipped} in {time.monotonic() - started:.1f}s; "
          f"text from {source}", file=sys.stderr)
    if not done:
        print(f"finsentry classify: nothing classified: no row had text in {wanted}", file=sys.stderr)
        return 1
    return 0
