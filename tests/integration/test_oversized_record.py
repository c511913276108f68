"""A record too large to dead-letter whole (2 MB on news.raw) still ends in news.deadletter, cut,
with its size and SHA-256, and the stories around it are scored: nothing disappears."""

from __future__ import annotations

import hashlib

import pytest
from kafka import KafkaProducer

from streams.settings import Settings

pytestmark = pytest.mark.integration
S = Settings()


def test_two_megabyte_record_is_dead_lettered_cut_and_its_neighbours_scored(embedded_broker, start_worker_process, kafka):
    start_worker_process()
    huge = b'{"id": "huge-1", "headline": "' + b"A" * (2 * 1024 * 1024) + b'"}'
    producer = KafkaProducer(bootstrap_servers=embedded_broker.bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    producer.send(S.topic_raw, b'{"id": "before-1", "headline": "Fabrikam opens a plant"}')
    producer.send(S.topic_raw, huge)
    producer.send(S.topic_raw, b'{"id": "after-1", "headline": "Fabrikam closes a plant"}')
    producer.flush()
    producer.close()

    def done(seen: dict) -> bool:
        return {"before-1", "after-1"} <= {v["id"] for v in seen[S.topic_scored]} and any(
            d.get("original_sha256") == hashlib.sha256(huge).hexdigest() for d in seen[S.topic_deadletter])

    seen = kafka.consume(embedded_broker.bootstrap, [S.topic_scored, S.topic_deadletter], done, timeout=300)
    assert done(seen), "the 2 MB record or its neighbours went missing"
    letter = next(d for d in seen[S.topic_deadletter] if d.get("original_sha256") == hashlib.sha256(huge).hexdigest())
    assert letter["reason"] == "oversized" and letter["original_truncated"] is True
    assert letter["original_bytes"] == len(huge)
