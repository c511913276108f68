"""`finsentry produce FILE|-`: send a JSONL or CSV file of news to `news.raw`.

Each line is checked with the same validator the ingest agent uses, so a bad line is reported here
with its line number (and skipped and counted) instead of surfacing later in the dead-letter topic.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from streams.sources.kafka_sink import SinkError
from streams.sources.output import add_output_arguments, open_sink
from streams.validation import Rejection, validate

CSV_LIST_FIELDS = ("tickers",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("produce", help="send a JSONL or CSV file of news records to news.raw")
    p.add_argument("input", help="a .jsonl or .csv file, or - for JSONL on stdin")
    add_output_arguments(p, kafka_by_default=True)
    p.set_defaults(handler=run_cli)


def records(path: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record or None, error) for each non-empty line or CSV row."""
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            for line_no, row in enumerate(csv.DictReader(fh), start=2):
                record: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
                for name in CSV_LIST_FIELDS:
                    if isinstance(record.get(name), str):
                        record[name] = [t.strip() for t in record[name].replace(";", ",").split(",") if t.strip()]
                yield line_no, record, ""
        return
    with nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield line_no, None, f"not UTF-8 ({exc.reason} at byte {exc.start})"
                continue
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, None, f"not JSON ({exc.msg} at column {exc.colno})"
                continue
            except RecursionError:
                yield line_no, None, "not JSON (nested too deeply)"
                continue
            if not isinstance(value, dict):
                yield line_no, None, f"expected a JSON object, got {type(value).__name__}"
                continue
            yield line_no, value, ""


def run_cli(args: argparse.Namespace) -> int:
    if args.input != "-" and not Path(args.input).is_file():
        print(f"finsentry produce: error: {args.input}: no such file", file=sys.stderr)
        return 2
    if args.input != "-" and not args.input.endswith((".jsonl", ".ndjson", ".csv")):
        print(f"finsentry produce: error: {args.input}: use a .jsonl or .csv file (or - for JSONL on stdin)", file=sys.stderr)
        return 2
    sent = bad = 0
    started = time.monotonic()
    try:
        with open_sink(args) as sink:
            for line_no, record, error in records(args.input):
                if record is not None:
                    checked = validate(json.dumps(record).encode("utf-8"), time.time())
                    if isinstance(checked, Rejection):
                        error = f"{checked.reason}: {checked.message}"
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
        print(f"finsentry produce: error: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:  # CSV is decoded as a whole stream
        print(f"finsentry produce: error: {args.input}: not UTF-8 ({exc.reason} at byte {exc.start}); "
              f"{sent} records were sent before it", file=sys.stderr)
        return 2
    except csv.Error as exc:  # e.g. a field over the csv module's size limit; the reader cannot resync
        print(f"finsentry produce: error: {args.input}: malformed CSV ({exc}); {sent} records were sent before it",
              file=sys.stderr)
        return 2
    print(f"sent {sent} records, skipped {bad} bad lines in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0 if sent or not bad else 1
