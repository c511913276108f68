"""JSON Lines, read one way: every reader of .jsonl input (training data, texts to score) uses this."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator


def json_lines(lines: Iterable[str]) -> Iterator[tuple[int, object, str | None]]:
    """(line number, value, None) for each non-blank line, or (line number, None, why) for one that is
    not JSON; `why` is the parser's message, or "nested too deeply". Numbers count blank lines too."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield number, None, exc.msg
        except RecursionError:
            yield number, None, "nested too deeply"
