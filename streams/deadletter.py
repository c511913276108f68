"""The dead-letter record: what went wrong, where, and the original bytes, so nothing is lost and
a fixed record can be replayed from it.

An original larger than MAX_ORIGINAL_BYTES is cut to that size, and the record keeps its full byte
size and SHA-256: a dead letter must always fit under the producer's maximum request size (1,000,000
bytes by default), or the send fails and the record ends up nowhere, and since the send failing is a
machinery failure (streams/failures.py), the worker would stop on the same record after every restart.
What counts is the size as sent: the topics' JSON escapes every non-ASCII and control character (six
bytes for one), so a text original whose escaped form would pass MAX_ORIGINAL_JSON_BYTES is kept as
base64 instead (4/3 of its bytes), and the error is cut to MAX_ERROR_CHARS (a rejection can quote a
huge field), and a key over MAX_KEY_BYTES is sent as its digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from alerts.records import iso

# The scheduler agent's: an anomaly event it cannot open a case for, an analyst action it refused.
INVALID_ANOMALY, REJECTED_ACTION = "invalid_anomaly", "rejected_action"
# Every reason a record is dead-lettered for, the `reason` label of finsentry_records_rejected_total:
# a fixed set, so the metric's labels stay bounded and an operator can group failures.
REASONS = (
    # streams/validation.py's rejections of a news.raw value (and the monitor's of a news.scored one);
    # field_too_long and bad_ticker are no longer produced, but older records and dashboards have them.
    "oversized", "invalid_utf8", "invalid_json", "not_object", "wrong_type", "missing_text",
    "field_too_long", "bad_timestamp", "bad_url", "bad_id", "bad_ticker",
    # pure per-record code raised on the record's content (streams/errors.py `record_fault`)
    "internal_error",
    INVALID_ANOMALY, REJECTED_ACTION,
)

# Base64 grows 4/3, and the JSON around it is small: 256 KiB of original stays far under 1 MiB.
MAX_ORIGINAL_BYTES = 256 * 1024
MAX_ORIGINAL_JSON_BYTES = 800_000  # the kept original as the topic's JSON writes it (escaped)
MAX_ERROR_CHARS = 4096  # at most 12 bytes each once escaped: under 50 KB
MAX_KEY_BYTES = 4096  # the input's key, sent as the dead letter's key: ours are story ids of 200 characters at most


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead letter's Kafka key: the input's, or, when a foreign writer sent one too large to send
    back (a 740 KB key beside a large value passed 1 MB), `sha256:` and its digest."""
    if key is None or len(key) <= MAX_KEY_BYTES:
        return key
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode("ascii")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    error: str
    reason: str
    stage: str
    original: str
    original_encoding: str  # "utf-8" or "base64"
    original_bytes: int  # size of the whole original, before any cut
    original_sha256: str  # of the whole original, so a cut one can still be matched to its source
    original_truncated: bool
    source_topic: str
    partition: int | None
    offset: int | None
    at: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... (cut: {len(text)} characters)"


def dead_letter(stage: str, reason: str, error: str, original: bytes | str | None, source_topic: str,
                partition: int | None, offset: int | None, now: float | None = None) -> DeadLetter:
    raw = original if isinstance(original, bytes) else (original or "").encode("utf-8", "surrogatepass")
    kept = raw[:MAX_ORIGINAL_BYTES]
    try:
        text, encoding = kept.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if len(kept) < len(raw) and exc.start >= len(kept) - 3:  # the cut split a character: drop its head
            kept = kept[:exc.start]
            text, encoding = kept.decode("utf-8"), "utf-8"
        else:
            text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    if encoding == "utf-8" and len(json.dumps(text)) > MAX_ORIGINAL_JSON_BYTES:  # Faust's JSON: ensure_ascii
        text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return DeadLetter(error=cut(error, MAX_ERROR_CHARS), reason=reason, stage=stage, original=text, original_encoding=encoding,
                      original_bytes=len(raw), original_sha256=hashlib.sha256(raw).hexdigest(),
                      original_truncated=len(kept) < len(raw), source_topic=source_topic, partition=partition,
                      offset=offset, at=iso(moment))
