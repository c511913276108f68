"""The dead-letter record: what went wrong, where, and the original bytes, so nothing is lost and
a fixed record can be replayed from it."""

from __future__ import annotations

import base64
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from streams.validation import iso


@dataclass(frozen=True, slots=True)
class DeadLetter:
    error: str
    reason: str
    stage: str
    original: str
    original_encoding: str  # "utf-8" or "base64"
    source_topic: str
    partition: int | None
    offset: int | None
    at: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def dead_letter(stage: str, reason: str, error: str, original: bytes | str | None, source_topic: str,
                partition: int | None, offset: int | None, now: float | None = None) -> DeadLetter:
    raw = original if isinstance(original, bytes) else (original or "").encode("utf-8")
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return DeadLetter(error=error, reason=reason, stage=stage, original=text, original_encoding=encoding,
                      source_topic=source_topic, partition=partition, offset=offset, at=iso(moment))
