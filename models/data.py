"""Labelled data for the two-head classifier.

Files may carry a topic label, a sentiment label or both. A topic-only set and a sentiment-only set
train one model: each example keeps `None` for the label it lacks and the training loss masks that
head. Every error names the file and, where there is one, the row, so a user can fix the input.
"""

from __future__ import annotations

import csv
import hashlib
import json
import reprlib
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from models.jsonl import json_objects
from models.labels import SENTIMENTS
from models.text import DEFAULT_STYLE, STYLES, for_model, style_name

MAX_TEXT_CHARS = 10_000


class DataError(ValueError):
    """Input data cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    topic: str | None = None
    sentiment: str | None = None
    # The row an error about this example names in its file: the physical line for JSON Lines (blank
    # lines counted, as its JSON errors count them), the data row for CSV and Parquet; 0 when not read
    # from a file. Not part of equality: the same text and labels are the same example.
    row: int = field(default=0, compare=False)
    # The style the model reads it in (models.text.STYLES), None for a model without style markers.
    style: str | None = field(default=None, compare=False)
    # What its row's STYLE_COLUMN says, stripped (None: absent or blank), unchecked: only a run that
    # reads styles checks it and puts it over the file's style (`own_style`, `styled`).
    row_style: str | None = field(default=None, compare=False)


# A row's own style, optional, in any case (`Style`): newswire or social, as `finsentry feedback
# export` writes for analysts' corrections of social posts. Not configurable: it is no label.
STYLE_COLUMN = "style"


@dataclass(frozen=True, slots=True)
class Columns:
    text: str = "text"
    topic: str = "topic"
    sentiment: str = "sentiment"


@dataclass(slots=True)
class LabelMaps:
    """Label name <-> index for each head; stored with the model as `labels.json`."""

    topics: list[str] = field(default_factory=list)
    sentiments: list[str] = field(default_factory=lambda: list(SENTIMENTS))

    @classmethod
    def from_examples(cls, examples: Iterable[Example]) -> LabelMaps:
        topics: set[str] = set()
        sentiments: set[str] = set()
        for ex in examples:
            if ex.topic is not None:
                topics.add(ex.topic)
            if ex.sentiment is not None:
                sentiments.add(ex.sentiment)
        unknown = sentiments - set(SENTIMENTS)
        if unknown:
            raise DataError(
                f"unknown sentiment labels {sorted(unknown)}: use negative, neutral or positive "
                "(map Bearish/Bullish/Neutral before training)"
            )
        if not topics:
            raise DataError("no topic labels in the training data: give at least one file with a topic column")
        return cls(topics=sorted(topics))

    def to_json(self) -> dict[str, list[str]]:
        return {"topic": self.topics, "sentiment": self.sentiments}

    @classmethod
    def from_json(cls, data: dict[str, list[str]]) -> LabelMaps:
        return cls(topics=list(data["topic"]), sentiments=list(data["sentiment"]))

    def check(self, examples: Sequence[Example], source: str) -> None:
        """Raise on a label the model does not know, naming the first offending row of `source`, the
        one file `examples` were read from."""
        topics, sentiments = set(self.topics), set(self.sentiments)
        for row, ex in _numbered(examples):
            if ex.topic is not None and ex.topic not in topics:
                raise DataError(f"{source}: row {row}: unknown topic {ex.topic!r}; the model knows {self.topics}")
            if ex.sentiment is not None and ex.sentiment not in sentiments:
                raise DataError(
                    f"{source}: row {row}: unknown sentiment {ex.sentiment!r}; the model knows {self.sentiments}"
                )

    def check_files(self, files: Iterable[tuple[str, Sequence[Example]]]) -> None:
        """`check` each (file name, its examples) on its own: a row number means something only in
        its own file, so files joined first would be blamed for each other's rows."""
        for source, examples in files:
            self.check(examples, source)


def check_topic_spellings(files: Iterable[tuple[str, Sequence[Example]]]) -> None:
    """Refuse a topic spelled two ways that differ only by case ("Earnings", "earnings") across the
    training files, naming both spellings and the row of the second.

    Topics are the user's own classes, so unlike sentiments there is no fixed vocabulary to map a
    spelling to, and keeping both would silently split one class in two. Surrounding spaces are
    already trimmed when a label is read.
    """
    first: dict[str, tuple[str, str, int]] = {}
    for source, examples in files:
        for row, ex in _numbered(examples):
            if ex.topic is None:
                continue
            spelling, where, at = first.setdefault(ex.topic.casefold(), (ex.topic, source, row))
            if spelling != ex.topic:
                raise DataError(f"{source}: row {row}: topic {ex.topic!r} differs only by case from {spelling!r} "
                                f"({where}: row {at}); spell each topic one way in every file")


def _numbered(examples: Sequence[Example]) -> Iterator[tuple[int, Example]]:
    """(the row its file's errors name, example); an example made in code counts by position."""
    for index, ex in enumerate(examples, start=1):
        yield ex.row or index, ex


# Numeric sentiments are the Twitter financial news sentiment set's codes (0 bearish, 1 bullish,
# 2 neutral), not the order of the model's labels (negative, neutral, positive): docs/MODEL.md.
SENTIMENT_CODES = {"0": "negative", "1": "positive", "2": "neutral"}
# Warnings given once per process (load_file's numeric sentiments).
_said = {"codes": False}


def _warn_stderr(message: str) -> None:
    print(f"finsentry: warning: {message}", file=sys.stderr, flush=True)
_SENTIMENT_ALIASES = {"bearish": "negative", "bullish": "positive", "neutral": "neutral",
                      "negative": "negative", "positive": "positive", **SENTIMENT_CODES}


def _rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """(row number, record) for each record of the file; see `Example.row` for how rows count."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix in {".jsonl", ".ndjson"}:
        with path.open(encoding="utf-8") as fh:
            for row, value, why in json_objects(fh):
                if value is None:
                    raise DataError(f"{path}: row {row}: {why}")
                yield row, value
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}: use .csv, .jsonl or .parquet")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name (Excel
    # writes one), and header names are trimmed, as `finsentry classify` and `produce` read them
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            return
        reader.fieldnames = [name.strip() for name in reader.fieldnames]
        for row, record in enumerate(reader, start=1):
            _check_field_count(path, row, record, reader.fieldnames)
            yield row, record


def _check_field_count(path: Path, row: int, record: dict[str | None, object], header: Sequence[str]) -> None:
    """Refuse a CSV row whose fields do not match the header, so no label is read from the wrong cell.

    More fields (`csv` files those past the header under the key None), even empty ones: an unquoted
    comma in a text makes the text's tail the label ("Contoso, Inc. beats,Earnings" learns the topic
    "Inc. beats", and "Contoso, Inc. beats," under `text,topic` the same); a trailing separator on
    every line cannot be told from that, so the header must name it. Fewer fields (`csv` fills the
    missing ones with None): a text broken by an unquoted line break reads so ("Contoso, Inc. beats"
    then "estimates,Earnings,positive" under `text,topic,sentiment` would learn "Inc. beats")."""
    expected = len(header)
    extra = record.get(None)
    if isinstance(extra, list):
        raise DataError(f"{path}: row {row}: {expected + len(extra)} fields where the header has {expected}: put a "
                        'text that holds a comma in double quotes ("Contoso, Inc. beats"); if every line ends with a '
                        "separator, end the header with one too")
    missing = sum(value is None for value in record.values())
    if missing:
        got = expected - missing
        raise DataError(f"{path}: row {row}: {got} field{'s' * (got != 1)} where the header has {expected}: give "
                        "every column (an empty cell for a missing label; some Excel exports leave trailing "
                        "separators out: re-save from LibreOffice or pandas, or fill the cells), and put a text "
                        "that holds a comma or a line break in double quotes")


def load_file(path: str | Path, columns: Columns = Columns(),
              warn: Callable[[str], None] | None = _warn_stderr) -> list[Example]:
    """Read one labelled file.

    Each row carries the labels it has: a label column the file lacks, an empty CSV cell, a JSON null
    and a JSON key one row has and another lacks are all an absent label, which training masks (see
    the module docstring); a row with no label at all is refused. The first row must name the text
    column and at least one label column, so a file with other column names fails at once.
    `warn` (None: no warning) gets one line when every sentiment of the file is a number
    (SENTIMENT_CODES), once per process for all files (`train` and `evaluate` alike, naming the first
    such file), by default on stderr.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    examples: list[Example] = []
    coded = 0  # rows whose sentiment was a number
    try:
        for row, record in _rows(path):
            if not examples:
                _check_columns(path, row, record, columns)
            examples.append(_example(f"{path}: row {row}", row, record, columns))
            raw = record.get(columns.sentiment)
            coded += examples[-1].sentiment is not None and _code_of(raw) in SENTIMENT_CODES
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from None
    if not examples:
        raise DataError(f"{path}: no rows")
    if warn is not None and coded and coded == sum(ex.sentiment is not None for ex in examples) \
            and not _said["codes"]:
        _said["codes"] = True
        warn(f"{path}: every sentiment is a number, read as the Twitter financial news set's codes: "
             + ", ".join(f"{code} {name}" for code, name in SENTIMENT_CODES.items())
             + " (docs/MODEL.md); write the names if a file means another mapping (said once, for the first "
             "file read so)")
    return examples


def _check_columns(path: Path, row: int, record: dict[str, object], columns: Columns) -> None:
    if columns.text not in record:
        raise DataError(
            f"{path}: row {row}: no {columns.text!r} column (found {sorted(record)}); name it with --text-col"
        )
    if columns.topic not in record and columns.sentiment not in record:
        raise DataError(
            f"{path}: row {row}: neither a {columns.topic!r} nor a {columns.sentiment!r} column; "
            "name them with --topic-col / --sentiment-col"
        )


def _example(where: str, row: int, record: dict[str, object], columns: Columns) -> Example:
    text = record.get(columns.text)
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty or missing {columns.text!r}")
    topic = _label(record.get(columns.topic), where, columns.topic)
    sentiment = _sentiment(record.get(columns.sentiment), where, columns.sentiment)
    if topic is None and sentiment is None:
        raise DataError(f"{where}: no label in {columns.topic!r} or {columns.sentiment!r}")
    return Example(text=text[:MAX_TEXT_CHARS], topic=topic, sentiment=sentiment, row=row, row_style=_row_style(record))


def style_cell(record: Mapping[object, object]) -> object | None:
    """The first value of a row's STYLE_COLUMN (any case and spacing of its name: `Style`) that says
    something: not null, not blank. The one reading of a row's own style, for training files and for
    `finsentry classify`; None where the row names none."""
    for key, value in record.items():
        if isinstance(key, str) and style_name(key) == STYLE_COLUMN and value is not None \
                and not (isinstance(value, str) and not value.strip()):
            return value
    return None


def _row_style(record: dict[str, object]) -> str | None:
    """`style_cell` stripped; a value that is not text as JSON writes it (`true`, `["social"]`)."""
    value = style_cell(record)
    if value is None:
        return None
    return value.strip() if isinstance(value, str) else json.dumps(value)


def own_style(path: str | Path, example: Example) -> str | None:
    """The style `example`'s row names (one of STYLES, any case), None where it names none.

    Raises DataError naming the file, the row and the value for anything else: a post read as
    newswire, or the reverse, would train or be judged in the wrong conventions."""
    if example.row_style is None:
        return None
    if style_name(example.row_style) not in STYLES:
        raise DataError(f"{path}: row {example.row}: {STYLE_COLUMN!r} is {example.row_style[:40]!r}; use "
                        f"{' or '.join(STYLES)}, or leave it empty for the file's style")
    return style_name(example.row_style)


def _sentiment_code(value: object) -> str | None:
    """A JSON or Parquet sentiment number as its code among SENTIMENT_CODES: an integer 0, 1 or 2, or
    the same as an integral float (a Parquet column with gaps holds 1.0 for 1); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return str(int(value)) if value in (0, 1, 2) else None


def _code_of(raw: object) -> str:
    """The text a sentiment value would be looked up by among SENTIMENT_CODES."""
    code = _sentiment_code(raw)
    if code is not None:
        return code
    return raw.strip() if isinstance(raw, str) else ""


def _label(value: object, where: str, column: str) -> str | None:
    """A topic label, trimmed; None or blank is no label. An integer (JSON or Parquet 7) is its decimal
    string, as in a CSV cell. Any other value that is not text is refused: a float (JSON 1.0 or 1e20
    would become "1" or "100000000000000000000" where a CSV cell "1.0" stays "1.0"; 0.5), a boolean,
    an object or a list (as str() it would become a class named by its Python repr: "True",
    "{'name': 'Earnings'}")."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataError(f"{where}: {column!r} is {type(value).__name__} {reprlib.repr(value)}, not text: "
                        "write the label as a string")
    return value.strip() or None


def _sentiment(value: object, where: str, column: str) -> str | None:
    """A sentiment label mapped to the model's names. A number is the Twitter sentiment set's code (0
    bearish, 1 bullish, 2 neutral), which Parquet keeps as a number: 0, 1 or 2, or 0.0, 1.0 or 2.0;
    any other number is refused."""
    if not isinstance(value, bool) and isinstance(value, int | float):
        code = _sentiment_code(value)
        if code is None:
            raise DataError(f"{where}: {column!r} is {type(value).__name__} {reprlib.repr(value)}, not a sentiment: "
                            "use negative, neutral or positive (or the codes 0, 1, 2)")
        value = code
    name = _label(value, where, column)
    if name is None:
        return None
    mapped = _SENTIMENT_ALIASES.get(name.lower())
    if mapped is None:
        raise DataError(f"{where}: unknown sentiment {name!r}; use negative, neutral or positive")
    return mapped


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_style(path: str | Path, social_files: Collection[str]) -> str:
    """"social" when `path` is one of `social_files` (compared as resolved paths), else DEFAULT_STYLE."""
    return "social" if Path(path).resolve() in {Path(p).resolve() for p in social_files} else DEFAULT_STYLE


def check_social_files(social_files: Collection[str], named: Collection[str | Path], flags: str) -> None:
    """A `--social-files` path must be one of the files the command reads (`named`, given by `flags`):
    a stray one would mark nothing and the run would read posts as newswire without a word.

    Raises DataError naming the stray paths."""
    read = {Path(p).resolve() for p in named}
    stray = [str(p) for p in social_files if Path(p).resolve() not in read]
    if stray:
        raise DataError(f"--social-files: {', '.join(stray)} not among the {flags} files")


def styled(path: str | Path, examples: list[Example], social_files: Collection[str] | None) -> list[Example]:
    """`examples`, read from `path`, each marked for a model trained with style markers (models/text.py)
    with the style its own row names, else the file's (`file_style`); unchanged when `social_files` is
    None (a model without them)."""
    if social_files is None:
        return examples
    style = file_style(path, social_files)
    return [replace(ex, style=own_style(path, ex) or style) for ex in examples]


def model_texts(examples: Sequence[Example]) -> list[str]:
    return [for_model(ex.text, ex.style) for ex in examples]
