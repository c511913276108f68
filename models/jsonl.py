"""JSON Lines, read one way: every reader of .jsonl input (training data, texts to score, news to
produce) uses this, so a bad line is reported alike everywhere, by its line number."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any


def json_lines(lines: Iterable[str] | Iterable[bytes]) -> Iterator[tuple[int, object, str | None]]:
    """(line number, value, None) for each non-blank line, or (line number, None, why) for one that
    cannot be read: "not UTF-8 (...); save the file as UTF-8" (bytes lines only), "not JSON (... at
    column N)" or "not JSON (nested too deeply)". Numbers count blank lines too. A byte-order mark on the first line, which
    Notepad and Excel write, is skipped."""
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 ({exc.reason} at byte {exc.start}); save the file as UTF-8"
                continue
        else:
            line = raw.removeprefix("\ufeff") if number == 1 else raw
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield number, None, f"not JSON ({exc.msg} at column {exc.colno})"
        except ValueError as exc:  # an integer of more than 4,300 digits
            yield number, None, f"not JSON ({exc})"
        except RecursionError:
            yield number, None, "not JSON (nested too deeply)"


def json_objects(lines: Iterable[str] | Iterable[bytes]) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """`json_lines`, where a value that is not a JSON object is a bad line too ("expected a JSON
    object, got list")."""
    for number, value, why in json_lines(lines):
        if why is None and not isinstance(value, dict):
            yield number, None, f"expected a JSON object, got {type(value).__name__}"
        else:
            yield number, value if isinstance(value, dict) else None, why
