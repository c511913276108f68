"""`finsentry produce FILE|-`: send a JSONL or CSV file of news to `news.raw`.

Each line is checked with the same validator the ingest agent uses, so a bad line is reported here
with its line number (and skipped and counted) instead of surfacing later in the dead-letter topic.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

from models.jsonl import json_objects
from streams.sources.kafka_sink import SinkError, encode_value
from streams.sources.output import add_output_arguments, open_sink
from streams.usage import UsageError
from streams.validation import MISSING, NUMBER, Rejection, normalise_ticker, parse_time, ticker_names, validate

# Column names people use for the story's fields, matched by `column_key`; the first found wins.
ALIASES = {
    "headline": ("headline", "title", "text"),
    "body": ("body", "description", "summary", "content"),
    "published_at": ("published_at", "published", "pubdate", "date", "datetime", "timestamp", "time"),
    "tickers": ("tickers", "ticker", "symbols", "symbol"),
    "url": ("url", "link"),
}
FIELDS = frozenset({"id", "source", "headline", "body", "url", "published_at", "tickers", "lang", "truncated"})
KNOWN_COLUMNS = FIELDS | {name for names in ALIASES.values() for name in names}
SEPARATORS = ",;\t|"
TEXT_COLUMNS = ("headline", "body", "title", "text", "description", "summary", "content")


def column_key(name: str) -> str:
    """A column name as matched against the fields and ALIASES: case, spaces and punctuation dropped,
    so `Published At`, `published-at` and `PublishedAt` are `published_at`, and `Ticker(s)` is `tickers`."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


class InputError(UsageError):
    """The whole file is unusable (its columns, its encoding): one line, not one error per row."""


SHOWN = 5  # unreadable dates and tickers reported line by line; the rest are counted in the summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("produce", help="send a JSONL or CSV file of news records to news.raw")
    p.add_argument("input", help="a .jsonl or .csv/.tsv file, or - for JSONL on stdin")
    add_output_arguments(p, kafka_by_default=True)
    p.set_defaults(handler=run_cli)


def sniff_dialect(sample: str, known: frozenset[str] | None = None) -> type[csv.Dialect] | csv.Dialect:
    """The file's dialect. The separator (, ; tab |) is the one that splits the header line into the most
    `known` column names (by `column_key`); when none does, csv.Sniffer's guess; a comma when it cannot tell either.
    The header decides first because a sniffer weighs every line, and headlines are full of commas."""
    header = sample.lstrip("\ufeff").splitlines()[0] if sample.strip() else ""
    if header.strip() and not any(separator in header for separator in SEPARATORS):
        # One column: every line is one cell, commas in the text and all ("\x1f" never occurs in text).
        return type("OneColumn", (csv.excel,), {"delimiter": "\x1f"})
    if known:
        known_keys = {column_key(name) for name in known}
        scores = {}
        for separator in SEPARATORS:
            names = next(csv.reader([header], delimiter=separator), [])
            scores[separator] = sum(column_key(name) in known_keys for name in names)
        best = max(scores, key=lambda sep: scores[sep])
        if scores[best]:
            return type("Sniffed", (csv.excel,), {"delimiter": best})
    try:
        return csv.Sniffer().sniff(sample, delimiters=SEPARATORS)
    except csv.Error:
        return csv.excel


def separator_name(delimiter: str) -> str:
    names = {",": "a comma", ";": "a semicolon", "\t": "a tab", "|": "a pipe", "\x1f": "no"}
    return f"{names.get(delimiter, repr(delimiter))} separator"


def csv_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record, "") per CSV row: UTF-8 with or without a byte-order mark, any line ending,
    the separator sniffed, quoted newlines kept, empty and NaN-like cells dropped, column names trimmed
    and lower-cased, common other names read as the fields (ALIASES: `title` as headline, `date` as
    published_at, `symbol` as tickers, ...); other columns named once in a warning and not sent."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(64 * 1024)
        fh.seek(0)
        dialect = sniff_dialect(sample, KNOWN_COLUMNS)
        reader = csv.reader(fh, dialect)
        header = next(reader, None)
        if header is None:
            return
        written = [name.strip().lstrip("\ufeff") for name in header]
        keys = [column_key(name) for name in written]
        if not any(key in map(column_key, TEXT_COLUMNS) for key in keys):
            found = ", ".join(repr(c) for c in written) or "none"
            raise InputError(f"{path}: no headline or body column (read with {separator_name(dialect.delimiter)}, "
                             f"the columns are {found}); name one headline, title, text or body")
        field_of = {column_key(field): field for field in FIELDS}
        for field, names in ALIASES.items():  # the first of each field's aliases present is the field
            present = [key for key in map(column_key, names) if key in keys]
            for key in present[1:]:
                field_of.pop(key, None)  # a later alias of a field already read passes through, ignored
            if present:
                field_of[present[0]] = field
        columns = [field_of.get(key) for key in keys]  # None: not sent
        ignored = [name for name, field in zip(written, columns, strict=True) if name and field is None]
        if ignored:
            print(f"finsentry: warning: {path}: column(s) {', '.join(repr(c) for c in ignored)} are not story fields "
                  f"and are not sent (the fields: {', '.join(sorted(FIELDS))})", file=sys.stderr)
        row_start = reader.line_num + 1
        for row in reader:
            line_no, row_start = row_start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(columns):  # spreadsheets write every row as wide as the header: a comma outside quotes
                blank = not any(cell.strip() for cell in row[len(columns):])
                yield line_no, None, (f"the row has {len(row)} cells, the header {len(columns)}: a headline with "
                                      "a comma must be in double quotes" + ("; if every row ends with a separator, "
                                                                            "end the header line with one too"
                                                                            if blank else ""))
                continue
            record: dict[str, Any] = {}
            for field, cell in zip(columns, row, strict=False):
                if field is not None and cell.strip().lower() not in MISSING:
                    record.setdefault(field, cell)
            if isinstance(record.get("tickers"), str):
                record["tickers"] = ticker_names(record["tickers"])
            yield line_no, record, ""


def records(path: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record or None, error) for each non-empty line or CSV row."""
    if path.lower().endswith((".csv", ".tsv")):
        yield from csv_rows(path)
        return
    with nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb") as fh:
        for line_no, value, why in json_objects(fh):  # bytes: a line that is not UTF-8 is one bad line
            yield line_no, value, why or ""


def unread_because(stamp: object, now: float) -> str:
    """Why ingest stamps a story with its receive time: parse_time's error, or a date outside the
    range ingest keeps (before 1970, or ahead of the clock at `now`, Unix seconds)."""
    try:
        moment = parse_time(stamp)
    except (ValueError, OverflowError, OSError) as exc:
        return str(exc)
    if moment.timestamp() < 0:
        return "before 1970"
    ahead = (moment.timestamp() - now) / 60
    naive = (isinstance(stamp, str) and not NUMBER.match(stamp.strip()) and moment.utcoffset() == timedelta(0)
             and not re.search(r"(?:Z|UTC|GMT|UT|[+-]\d\d(?::?\d\d)?)\s*$", stamp.strip(), re.IGNORECASE))
    return (f"{ahead:.0f} min ahead of this clock" + ("; a time without a zone is read as UTC: write its zone "
                                                      "(2026-11-30T14:05:00+01:00)" if naive else ""))


def run_cli(args: argparse.Namespace) -> int:
    if args.input != "-" and not Path(args.input).is_file():
        raise UsageError(f"{args.input}: no such file")
    if args.input != "-" and not args.input.lower().endswith((".jsonl", ".ndjson", ".csv", ".tsv")):
        raise UsageError(f"{args.input}: use a .jsonl, .ndjson, .csv or .tsv file (or - for JSONL on stdin)")
    sent = bad = undated = unlisted = 0
    started = time.monotonic()
    try:
        with open_sink(args) as sink:
            for line_no, record, error in records(args.input):
                if record is not None:
                    # The bytes ingest will get, through ingest's own validation: nothing is counted as
                    # sent that ingest would dead-letter.
                    checked = validate(encode_value(record), time.time())
                    if isinstance(checked, Rejection):
                        error = f"{checked.reason}: {checked.message}"
                    else:
                        cell = record.get("tickers")
                        names = cell if isinstance(cell, list) else ticker_names(cell) if isinstance(cell, str) else []
                        if spaced := [t for t in names if isinstance(t, str) and " " in t.strip()
                                      and normalise_ticker(t) not in checked.tickers]:
                            unlisted += 1  # kept without it: say how to write several tickers
                            if unlisted <= SHOWN:
                                print(f"line {line_no}: ticker {spaced[0]!r} is no ticker and was dropped; separate "
                                      "tickers with commas or semicolons (AAPL, MSFT; a share class as BRK.B)",
                                      file=sys.stderr)
                        if record.get("published_at") not in (None, "") and checked.published_at_source == "received":
                            undated += 1  # kept, stamped with the time ingest receives it: say so, not in silence
                            if undated <= SHOWN:
                                print(f"line {line_no}: published_at {str(record['published_at'])[:40]!r} could not "
                                      f"be read ({unread_because(record['published_at'], time.time())}); the receive "
                                      "time stands in",
                                      file=sys.stderr)
                if error:
                    bad += 1
                    print(f"line {line_no}: skipped: {error}", file=sys.stderr)
                    continue
                sink.send(record)
                sent += 1
                if sent % 1000 == 0:
                    print(f"sent {sent} ({sent / (time.monotonic() - started):.0f}/s)", file=sys.stderr, flush=True)
            sink.flush()
    except SinkError as exc:
        raise UsageError(str(exc)) from None
    except UnicodeDecodeError as exc:  # CSV is decoded as a whole stream
        raise UsageError(f"{args.input}: not UTF-8 ({exc.reason} at byte {exc.start}); re-save it as UTF-8 "
                         f"(\"CSV UTF-8\" in Excel); {sent} records were sent before it") from None
    except csv.Error as exc:  # e.g. a field over the csv module's size limit; the reader cannot resync
        raise UsageError(f"{args.input}: malformed CSV ({exc}); {sent} records were sent before it") from None
    print(f"sent {sent} record(s), skipped {bad} bad line(s) in {time.monotonic() - started:.1f}s", file=sys.stderr)
    if unlisted:
        print(f"finsentry: warning: {unlisted} record(s) named tickers separated by spaces, which were dropped; "
              "separate tickers with commas or semicolons", file=sys.stderr)
    if undated:
        print(f"finsentry: warning: {undated} published_at value(s) could not be read and were replaced by the receive "
              "time; write ISO 8601 (2026-11-30T14:05:00Z) or see docs/INPUTS.md for the forms read", file=sys.stderr)
    return 0 if sent or not bad else 1
