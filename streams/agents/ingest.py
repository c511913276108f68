"""Ingest: validate and normalise `news.raw`, re-key by story id onto `news.clean`.

Re-keying by id puts every copy of a story on one partition, so the classify agent's dedupe table
sees all of them. Nothing a record contains stops the agent: a rejected record, or one whose
validation raised, goes to the dead-letter topic with its reason and original bytes, and is counted.
A broker failure is not the record's fault and stops the worker instead (streams/failures.py).
"""

from __future__ import annotations

import functools
import logging
import time

from streams import metrics
from streams.app import app, clean_topic, raw_topic
from streams.errors import RecordFault, dead_letter_fault, record_fault, send_dead_letter
from streams.validation import Rejection, Story, validate

log = logging.getLogger(__name__)
STAGE = "ingest"
HOP = metrics.HOP_LATENCY.labels(STAGE)


@app.agent(raw_topic, name="ingest")
async def ingest(stream) -> None:
    async for event in stream.events():
        message = event.message
        metrics.RECORDS_IN.labels(STAGE).inc()
        value = event.value
        try:
            with record_fault():
                result = (Rejection("missing_text", "empty record (no value)") if value is None
                          else validate(value, received_at(message.timestamp, time.time())))
                clean = None if isinstance(result, Rejection) else result.to_json()
        except RecordFault as fault:
            await dead_letter_fault(STAGE, fault, value, message)
            continue
        if isinstance(result, Rejection):
            await send_dead_letter(STAGE, result.reason, result.message, value, message)
            continue
        sent = await clean_topic.send(key=result.id.encode("utf-8"), value=clean)
        metrics.when_acknowledged(sent, functools.partial(emitted, result, message.timestamp))


def received_at(timestamp: float | None, now: float) -> float:
    """When the story was received: its record's timestamp, which for a topic with Kafka's default
    CreateTime is the producing host's clock, never later than this worker's. A source host whose
    clock ran 15 minutes fast stamped dateless stories ahead of the event time the monitor accepts,
    and every one was dead-lettered there; an older timestamp (a replayed backlog) is kept."""
    return min(timestamp, now) if timestamp else now


def emitted(story: Story, read_at: float) -> None:
    """Count a clean record the broker acknowledged; `read_at`: its raw record's timestamp (Unix seconds)."""
    metrics.count_adjustments(story)
    metrics.RECORDS_OUT.labels(STAGE).inc()
    HOP.observe(max(0.0, time.time() - read_at))
