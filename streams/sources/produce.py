"""`finsentry produce FILE|-`: send a JSONL or CSV file of news to `news.raw`.

Each line is checked with the same validator the ingest agent uses, so a bad line is reported here
with its line number (and skipped and counted) instead of surfacing later in the dead-letter topic.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TextIO

from models.jsonl import json_objects
from models.text import STYLES, style_name
from models.tickers import normalise_ticker
from streams.sources.kafka_sink import SinkError, encode_value
from streams.sources.output import add_output_arguments, open_sink
from streams.usage import UsageError
from streams.validation import (
    MISSING,
    Rejection,
    Story,
    readable,
    ticker_names,
    unread_because,
    validate,
)

# Column names people use for the story's fields, matched by `column_key`; the first found wins.
ALIASES = {
    "headline": ("headline", "title", "text"),
    "body": ("body", "description", "summary", "content"),
    "published_at": ("published_at", "published", "pubdate", "date", "datetime", "timestamp", "time"),
    "tickers": ("tickers", "ticker", "symbols", "symbol"),
    "url": ("url", "link"),
}
FIELDS = frozenset({"id", "source", "headline", "body", "url", "published_at", "tickers", "lang", "style", "truncated"})
# A date whose clock and zone a spreadsheet keeps in columns of their own (`Date;Time;Time zone`): beside
# a `date` column read as published_at, these columns are its clock and zone, joined to it in one value.
CLOCK, ZONE = "published_at clock", "published_at zone"  # no fields: never sent as they are
DATE_PARTS = {"time": CLOCK, "timezone": ZONE, "zone": ZONE, "tz": ZONE, "utcoffset": ZONE}
KNOWN_COLUMNS = FIELDS | {name for names in ALIASES.values() for name in names} | set(DATE_PARTS)
SEPARATORS = ",;\t|"
TEXT_COLUMNS = ("headline", "body", "title", "text", "description", "summary", "content")


def column_key(name: str) -> str:
    """A column name as matched against the fields and ALIASES: case, spaces and punctuation dropped,
    so `Published At`, `published-at` and `PublishedAt` are `published_at`, and `Ticker(s)` is `tickers`."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


class InputError(UsageError):
    """The whole file is unusable (its columns, its encoding): one line, not one error per row."""


SHOWN = 5  # lines named for each kind of adjusted story (an unreadable date, a dropped ticker, ...)


class Noted:
    """The lines one warning names: the first SHOWN, and a count of them all, so a file with a
    thousand bad values still gets one readable line."""

    def __init__(self) -> None:
        self.count = 0
        self.shown: list[str] = []

    def add(self, line_no: int, what: str) -> None:
        self.count += 1
        if len(self.shown) < SHOWN:
            self.shown.append(f"line {line_no}: {what}")

    def listed(self) -> str:
        return "; ".join(self.shown) + ("; ..." if self.count > len(self.shown) else "")


def field_names(names: list[str]) -> list[str | None]:
    """The field each of a CSV header's columns, or a JSON object's keys, holds (None: not sent),
    matched by `column_key`: a field's own name first, else the first of its ALIASES present (a
    later alias is not sent); beside a `date` read as published_at, DATE_PARTS' clock and zone."""
    keys = [column_key(name) for name in names]
    field_of = {column_key(field): field for field in FIELDS}
    for field, aliases in ALIASES.items():
        present = [key for key in map(column_key, aliases) if key in keys]
        for key in present[1:]:
            field_of.pop(key, None)
        if present:
            field_of[present[0]] = field
    if field_of.get("date") == "published_at":
        field_of.update(DATE_PARTS)
    return [field_of.get(key) for key in keys]


def story_record(pairs: Iterable[tuple[str | None, Any]]) -> dict[str, Any]:
    """The record from one row's (field, value) pairs: each field's first value, a date's clock and
    zone joined to it (`30/11/2026`, `14:05`, `+02:00` as `30/11/2026 14:05 +02:00`) where the joined
    value can be read (a Date cell that holds its own clock, `2026-11-30T14:05:00Z` beside a Time or
    Timezone column, stays as it is), a ticker cell split into its tickers (`ticker_names`)."""
    record: dict[str, Any] = {}
    for field, value in pairs:
        if field is not None:
            record.setdefault(field, value)
    parts = [str(part) for part in (record.pop(CLOCK, None), record.pop(ZONE, None)) if part not in (None, "")]
    date = record.get("published_at")
    if parts and date not in (None, ""):
        joined = " ".join([str(date), *parts])
        # A Date cell with its own clock stays as it is where the joined value cannot be read; without
        # one the joined value goes on, read or not, so that an unreadable Time or zone is named
        # rather than the story stamped at midnight as if that were its time.
        if readable(joined) or not _CLOCK_IN.search(str(date)):
            record["published_at"] = joined
    if isinstance(record.get("tickers"), str):
        record["tickers"] = ticker_names(record["tickers"])
    return record


# A date cell that holds its own time of day: a clock (14:05, 2026-11-30T14:05:00Z), or a number of 9
# digits or more (an epoch, YYYYMMDDHHMMSS); YYYYMMDD has none.
_CLOCK_IN = re.compile(r"\d:\d\d|^\s*\d{9,}(?:\.\d+)?\s*$")


def warn_not_fields(path: str, kind: str, names: list[str]) -> None:
    print(f"finsentry: warning: {path}: {kind}(s) {', '.join(repr(name) for name in names)} are not story fields "
          f"and are not sent (the fields: {', '.join(sorted(FIELDS))})", file=sys.stderr)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("produce", help="send a JSONL or CSV file of news records to news.raw")
    p.add_argument("input", help="a .jsonl or .csv/.tsv file, or - for JSONL on stdin")
    p.add_argument("--style", choices=STYLES, default=None, type=style_name,
                   help="the style of every story that does not say its own: social for a file of social-media "
                        "posts (tweets), newswire (docs/INPUTS.md); without it such stories are read as newswire")
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


# The line Excel writes first to name a CSV file's separator (`sep=;`).
_SEP_LINE = re.compile(r"^\ufeff?sep=(.)\r?$")
# Byte-order marks of the encodings that are not UTF-8 but are saved by common tools: PowerShell 5's
# `>` and Out-File write UTF-16, Excel's "Unicode Text" too.
_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
               (codecs.BOM_UTF16_BE, "UTF-16"))


def check_utf8_start(path: str, head: bytes) -> None:
    """InputError, one line, for a file whose byte-order mark says UTF-16 or UTF-32: read as UTF-8 every
    line would be bad for the same reason, each saying less than this."""
    for bom, name in _OTHER_BOMS:
        if head.startswith(bom):
            raise InputError(f"{path}: the file is {name}, not UTF-8 (PowerShell's '>' writes UTF-16); save it as "
                             "UTF-8 (PowerShell: '| Out-File -Encoding utf8'; Excel: \"CSV UTF-8\")")


def read_dialect(fh: TextIO, known: frozenset[str]) -> tuple[type[csv.Dialect] | csv.Dialect, bool]:
    """(the dialect of the CSV text `fh`, whether its first line is Excel's `sep=X`, which names the
    separator and says nothing else: the caller's reader skips it). Reads a sample and seeks back to
    the start; `known` are the column names that pick the separator (`sniff_dialect`)."""
    sample = fh.read(64 * 1024)
    fh.seek(0)
    if named := _SEP_LINE.match(sample.partition("\n")[0]):
        return type("Named", (csv.excel,), {"delimiter": named.group(1)}), True
    return sniff_dialect(sample, known), False


def csv_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record, "") per CSV row: UTF-8 with or without a byte-order mark, any line ending,
    the separator sniffed, or named by Excel's `sep=;` first line, quoted newlines kept, empty and
    NaN-like cells dropped, columns read as the fields by `field_names` (`title` as headline, `date`
    and `time` as published_at, `symbol` as tickers, ...); other columns named once in a warning and
    not sent."""
    with open(path, "rb") as raw:
        check_utf8_start(path, raw.read(4))
    with open(path, newline="", encoding="utf-8-sig") as fh:
        dialect, named = read_dialect(fh, KNOWN_COLUMNS)
        reader = csv.reader(fh, dialect)
        if named:
            next(reader, None)
        header = next(reader, None)
        if header is None:
            return
        written = [name.strip().lstrip("\ufeff") for name in header]
        keys = [column_key(name) for name in written]
        if not any(key in map(column_key, TEXT_COLUMNS) for key in keys):
            found = ", ".join(repr(c) for c in written) or "none"
            raise InputError(f"{path}: no headline or body column (read with {separator_name(dialect.delimiter)}, "
                             f"the columns are {found}); name one headline, title, text or body")
        columns = field_names(written)
        if ignored := [name for name, field in zip(written, columns, strict=True) if name and field is None]:
            warn_not_fields(path, "column", ignored)
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
            cells = zip(columns, row, strict=False)
            yield line_no, story_record((f, cell) for f, cell in cells if cell.strip().lower() not in MISSING), ""


def records(path: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record or None, error) for each non-empty line or CSV row. A JSON line's keys
    are read as a CSV header's columns are (`field_names`: `title`, `pubDate`, `symbols`, `link`):
    an export's records are stories whichever of the two it wrote; a key that is no field is named
    once, at the first line that has it."""
    if path.lower().endswith((".csv", ".tsv")):
        yield from csv_rows(path)
        return
    warned: set[str] = set()
    with nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb") as fh:
        if hasattr(fh, "peek"):  # a file, or stdin from a file or pipe: the first bytes, left to be read
            check_utf8_start("stdin" if path == "-" else path, fh.peek(4)[:4])
        for line_no, value, why in json_objects(fh):  # bytes: a line that is not UTF-8 is one bad line
            if value is None:
                yield line_no, None, why or ""
                continue
            keys = list(value)
            fields = field_names(keys)
            if ignored := [key for key, field in zip(keys, fields, strict=True) if key and field is None
                           and key not in warned]:
                warned.update(ignored)
                warn_not_fields(f"{'stdin' if path == '-' else path} line {line_no}", "key", ignored)
            yield line_no, story_record(zip(fields, value.values(), strict=True)), ""


class Report:
    """What produce says about the stories it sends that ingest keeps adjusted, or that classify will
    drop: an unreadable date (line by line, as it is read), and one line each at the end for dropped
    fields, dropped tickers, ids that are no id, and ids an earlier line has."""

    def __init__(self) -> None:
        self.undated = 0
        self.fields, self.tickers, self.odd_ids, self.repeated = Noted(), Noted(), Noted(), Noted()
        self.spaced = False  # a dropped ticker held a space, '|' or '/': several tickers, most likely
        self.first_line: dict[str, int] = {}  # each id given, at the line that first gave it

    def check(self, line_no: int, record: dict[str, Any], story: Story) -> None:
        cell = record.get("tickers")
        names = cell if isinstance(cell, list) else [] if cell is None else [cell]
        for name in names:
            if not isinstance(name, str):
                self.tickers.add(line_no, repr(name)[:40])
            elif name.strip().lower() not in MISSING and normalise_ticker(name) not in story.tickers:
                self.tickers.add(line_no, repr(name[:40]))
                self.spaced |= any(mark in name.strip() for mark in " |/")
        for why in story.dropped_fields:
            self.fields.add(line_no, why[:120])
        given = record.get("id")
        if isinstance(given, bool) or (given is not None and not isinstance(given, str | int)):
            self.odd_ids.add(line_no, repr(given)[:40])
        elif given not in (None, "") and (first := self.first_line.setdefault(story.id, line_no)) != line_no:
            self.repeated.add(line_no, f"{story.id[:40]!r} as on line {first}")
        stamp = record.get("published_at")
        if stamp not in (None, "") and story.published_at_source == "received":
            self.undated += 1  # kept, stamped with the time ingest receives it: say so, not in silence
            if self.undated <= SHOWN:
                print(f"line {line_no}: published_at {str(stamp)[:40]!r} could not be read "
                      f"({unread_because(stamp, time.time())}); the receive time stands in", file=sys.stderr)

    def summary(self) -> Iterator[str]:
        if self.fields.count:
            yield (f"{self.fields.count} field(s) could not be kept and were dropped from stories that were sent "
                   f"({self.fields.listed()}); docs/INPUTS.md gives each field's form")
        if self.tickers.count:
            yield (f"{self.tickers.count} ticker(s) are no ticker and were dropped from stories that were sent "
                   f"({self.tickers.listed()}); a ticker is 1-10 letters or digits with up to two .X or -X suffixes "
                   "(AAPL, 7203.T, BRK.B)" + ("; separate tickers with commas or semicolons (AAPL, MSFT), not "
                                              "spaces, '|' or '/'" if self.spaced else ""))
        if self.odd_ids.count:
            yield (f"{self.odd_ids.count} id(s) are neither text nor a whole number, so finsentry derived those "
                   f"stories' ids ({self.odd_ids.listed()}); write each id as text")
        if self.repeated.count:
            yield (f"{self.repeated.count} record(s) repeat an id an earlier line has ({self.repeated.listed()}); "
                   "they were sent, but classify drops a repeated id as a duplicate: give each story an id of its "
                   "own, or leave the id column out and finsentry derives one")
        if self.undated:
            yield (f"{self.undated} published_at value(s) could not be read and were replaced by the receive time; "
                   "write ISO 8601 (2026-11-30T14:05:00Z) or see docs/INPUTS.md for the forms read")


def run_cli(args: argparse.Namespace) -> int:
    if args.input != "-" and not Path(args.input).is_file():
        raise UsageError(f"{args.input}: no such file")
    if args.input != "-" and not args.input.lower().endswith((".jsonl", ".ndjson", ".csv", ".tsv")):
        raise UsageError(f"{args.input}: use a .jsonl, .ndjson, .csv or .tsv file (or - for JSONL on stdin)")
    sent = bad = 0
    report = Report()
    started = time.monotonic()
    try:
        with open_sink(args) as sink:
            for line_no, record, error in records(args.input):
                if record is not None and args.style is not None and record.get("style") in (None, ""):
                    record["style"] = args.style
                if record is not None:
                    # The bytes ingest will get, through ingest's own validation: nothing is counted as
                    # sent that ingest would dead-letter.
                    checked = validate(encode_value(record), time.time())
                    if isinstance(checked, Rejection):
                        error = f"{checked.reason}: {checked.message}"
                    else:
                        report.check(line_no, record, checked)
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
    for warning in report.summary():
        print(f"finsentry: warning: {warning}", file=sys.stderr)
    return 0 if sent or not bad else 1
