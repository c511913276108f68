"""Ingest: validate and normalise `news.raw`, re-key by story id onto `news.clean`.

Re-keying by id puts every copy of a story on one partition, so the classify agent's dedupe table
sees all of them. Nothing here may stop the agent: a rejected or unexpected record goes to the
dead-letter topic with its reason and original bytes, and is counted.
"""

from __future__ import annotations

import logging
import time

from streams import metrics
from streams.app import app, clean_topic, deadletter_topic, raw_topic
from streams.deadletter import dead_letter
from streams.validation import Rejection, validate

log = logging.getLogger(__name__)
STAGE = "ingest"


async def send_dead_letter(stage: str, reason: str, error: str, original: bytes | str | None, message) -> None:
    record = dead_letter(stage, reason, error, original, message.topic, message.partition, message.offset)
    await deadletter_topic.send(key=message.key, value=record.to_json())
    metrics.RECORDS_REJECTED.labels(stage, reason).inc()


@app.agent(raw_topic, name="ingest")
async def ingest(stream) -> None:
    async for event in stream.events():
        message = event.message
        metrics.RECORDS_IN.labels(STAGE).inc()
        value = event.value
        try:
            if value is None:
                result = Rejection("missing_text", "empty record (no value)")
            else:
                result = validate(value, message.timestamp or time.time())
            if isinstance(result, Rejection):
                await send_dead_letter(STAGE, result.reason, result.message, value, message)
                continue
            await clean_topic.send(key=result.id.encode("utf-8"), value=result.to_json())
            metrics.count_adjustments(result)
            metrics.RECORDS_OUT.labels(STAGE).inc()
        except Exception as exc:  # the agent must survive anything a record can do
            log.exception("ingest: unexpected error at %s[%s]@%s", message.topic, message.partition, message.offset)
            await send_dead_letter(STAGE, "internal_error", f"{type(exc).__name__}: {exc}", value, message)
