"""Labelled data for the two-head classifier.

Files may carry a topic label, a sentiment label or both. A topic-only set and a sentiment-only set
train one model: each example keeps `None` for the label it lacks and the training loss masks that
head. Every error names the file and, where there is one, the row, so a user can fix the input.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.jsonl import json_objects
from models.labels import SENTIMENTS
from models.text import for_model

MAX_TEXT_CHARS = 10_000


class DataError(ValueError):
    """Input data cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    topic: str | None = None
    sentiment: str | None = None


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
        """Raise on a label the model does not know, naming the first offending row."""
        topics, sentiments = set(self.topics), set(self.sentiments)
        for row, ex in enumerate(examples, start=1):
            if ex.topic is not None and ex.topic not in topics:
                raise DataError(f"{source}: row {row}: unknown topic {ex.topic!r}; the model knows {self.topics}")
            if ex.sentiment is not None and ex.sentiment not in sentiments:
                raise DataError(
                    f"{source}: row {row}: unknown sentiment {ex.sentiment!r}; the model knows {self.sentiments}"
                )


_SENTIMENT_ALIASES = {"bearish": "negative", "bullish": "positive", "neutral": "neutral",
                      "negative": "negative", "positive": "positive", "0": "negative", "1": "positive",
                      "2": "neutral"}


def _rows(path: Path) -> Iterator[dict[str, object]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name (Excel
        # writes one), and header names are trimmed, as `finsentry classify` and `produce` read them
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is not None:
                reader.fieldnames = [name.strip() for name in reader.fieldnames]
            yield from reader
    elif suffix in {".jsonl", ".ndjson"}:
        with path.open(encoding="utf-8") as fh:
            for row, value, why in json_objects(fh):
                if value is None:
                    raise DataError(f"{path}: row {row}: {why}")
                yield value
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
        yield from pq.read_table(path).to_pylist()
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}: use .csv, .jsonl or .parquet")


def load_file(path: str | Path, columns: Columns = Columns()) -> list[Example]:
    """Read one labelled file. Label columns that the file lacks are simply absent labels."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    examples: list[Example] = []
    has_topic = has_sentiment = False
    try:
        for row, record in enumerate(_rows(path), start=1):
            if row == 1:
                if columns.text not in record:
                    raise DataError(
                        f"{path}: row 1: no {columns.text!r} column (found {sorted(record)}); "
                        "name it with --text-col"
                    )
                has_topic, has_sentiment = columns.topic in record, columns.sentiment in record
                if not (has_topic or has_sentiment):
                    raise DataError(
                        f"{path}: row 1: neither a {columns.topic!r} nor a {columns.sentiment!r} column; "
                        "name them with --topic-col / --sentiment-col"
                    )
            text = record.get(columns.text)
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{path}: row {row}: empty or missing {columns.text!r}")
            topic = _label(record.get(columns.topic)) if has_topic else None
            sentiment = _label(record.get(columns.sentiment)) if has_sentiment else None
            if sentiment is not None:
                mapped = _SENTIMENT_ALIASES.get(sentiment.lower())
                if mapped is None:
                    raise DataError(
                        f"{path}: row {row}: unknown sentiment {sentiment!r}; use negative, neutral or positive"
                    )
                sentiment = mapped
            if topic is None and sentiment is None:
                raise DataError(f"{path}: row {row}: no label in {columns.topic!r} or {columns.sentiment!r}")
            examples.append(Example(text=text[:MAX_TEXT_CHARS], topic=topic, sentiment=sentiment))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from None
    if not examples:
        raise DataError(f"{path}: no rows")
    return examples


def _label(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_texts(examples: Sequence[Example]) -> list[str]:
    return [for_model(ex.text) for ex in examples]
