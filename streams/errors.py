"""Dead letters, and the one rule for what an agent dead-letters (streams/failures.py has the other half).

A record is dead-lettered only for its own fault: validation rejected it (a fixed reason code), or
pure per-record code raised on its content (`internal_error`). Agents wrap that pure code in
`record_fault()`; anything raised outside it (the broker, a table, the model runtime) is a machinery
failure and leaves the agent body, so the stories in hand are read again, never dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from streams import metrics
from streams.app import deadletter_topic
from streams.deadletter import MAX_ERROR_CHARS, cut, dead_letter, dead_letter_key

log = logging.getLogger(__name__)


class RecordFault(Exception):
    """Pure code raised on one record's content: dead-letter the record, keep the agent going."""


@contextmanager
def record_fault() -> Iterator[None]:
    """Mark the code inside as pure per-record work: any exception it raises is the record's fault."""
    try:
        yield
    except Exception as exc:
        raise RecordFault(cut(f"{type(exc).__name__}: {exc}", MAX_ERROR_CHARS)) from exc


async def send_dead_letter(stage: str, reason: str, error: str, original: bytes | str | None, message) -> None:
    """Write a record's dead letter and count it; waits for the broker's acknowledgement, so the
    input is not acknowledged before its dead letter is safe."""
    record = dead_letter(stage, reason, error, original, message.topic, message.partition, message.offset)
    await (await deadletter_topic.send(key=dead_letter_key(message.key), value=record.to_json()))
    metrics.RECORDS_REJECTED.labels(stage, reason).inc()


async def dead_letter_fault(stage: str, fault: RecordFault, original: bytes | str | None, message) -> None:
    """The dead letter of a record whose pure processing raised (reason internal_error)."""
    log.error("%s: record %s[%s]@%s failed: %s", stage, message.topic, message.partition, message.offset, fault)
    await send_dead_letter(stage, "internal_error", str(fault), original, message)
