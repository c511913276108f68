"""Bytes no JSON decoder reads, on a topic the worker reads as JSON, cost that record only: the agent
reads on and the worker stays ready (an agent crash would stop the worker, streams/failures.py)."""

from __future__ import annotations

import base64
import json

import pytest
from waiting import wait_for

from streams.settings import Settings

pytestmark = pytest.mark.integration
S = Settings()


def test_garbage_on_alerts_anomalies_is_dead_lettered_and_the_worker_stays_ready(embedded_broker, start_worker_process,
                                                                                  kafka):
    worker = start_worker_process()
    kafka.produce(embedded_broker.bootstrap, S.topic_anomalies, [b"{not json", b"\xff\xfe", {}], ["s", "s", "s"])
    # Both readers of the topic dead-letter all three with their bytes: the undecodable two were once
    # acknowledged, logged and gone, in no metric and no dead-letter topic.
    wait_for(lambda: worker.metric("finsentry_records_rejected_total", 'reason="invalid_anomaly",stage="scheduler"') >= 3
             and worker.metric("finsentry_records_rejected_total", 'reason="wrong_type",stage="notify"') >= 3,
             300, "the scheduler and notify to dead-letter the undecodable records")
    assert sorted(dead_letters_of(kafka, embedded_broker.bootstrap, "scheduler", 3)) == sorted(
        [("utf-8", "{not json"), ("base64", base64.b64encode(b"\xff\xfe").decode()), ("utf-8", "{}")])
    assert worker.process.poll() is None
    assert worker.get("/readyz")[0] == 200
    assert worker.metric("finsentry_agent_crashes_total", 'agent="scheduler-anomalies"') == 0


def test_garbage_on_news_clean_is_dead_lettered_and_classify_reads_on(embedded_broker, start_worker_process, kafka):
    # classify reads in micro-batches (Stream.take_events), whose buffer is filled in the background:
    # before streams/lenient_json.py the first undecodable record ended that, and classify waited forever
    worker = start_worker_process()
    story = {"id": "undecodable-neighbour-1", "headline": "Contoso shares rise after upbeat forecast",
             "published_at": "2026-11-30T05:00:00Z", "source": "test", "tickers": []}
    kafka.produce(embedded_broker.bootstrap, S.topic_clean, [b"{not json", b"\xff\xfe", story],
                  [story["id"]] * 3)
    wait_for(lambda: worker.metric("finsentry_records_out_total", 'stage="classify"') >= 1, 300,
             "classify to score the story after the undecodable records")
    # each undecodable record is dead-lettered with its bytes, not skipped in silence
    assert worker.metric("finsentry_records_rejected_total", 'reason="wrong_type",stage="classify"') == 2
    assert dead_letters_of(kafka, embedded_broker.bootstrap, "classify", 2) == sorted(
        [("utf-8", "{not json"), ("base64", base64.b64encode(b"\xff\xfe").decode())])
    assert worker.process.poll() is None
    assert worker.get("/readyz")[0] == 200
    assert worker.metric("finsentry_agent_crashes_total", 'agent="classify"') == 0


def dead_letters_of(kafka, bootstrap: str, stage: str, count: int) -> list[tuple[str, str]]:
    """(encoding, original) of the first `count` dead letters of `stage`; the broker is shared by the module."""
    def mine(seen: dict) -> list:
        return [d for d in seen[S.topic_deadletter] if d["stage"] == stage]
    dead = mine(kafka.consume(bootstrap, [S.topic_deadletter], lambda seen: len(mine(seen)) >= count, 60))
    return sorted((d["original_encoding"], d["original"]) for d in dead)


def test_garbage_on_news_by_scope_is_dead_lettered_and_the_monitor_reads_on(embedded_broker, start_worker_process, kafka):
    # the monitor reads news.by-scope in micro-batches too, with JSON keys (the scope) and values
    worker = start_worker_process()
    story = {"id": "by-scope-neighbour-1", "headline": "Fabrikam recalls heaters after fire reports",
             "sentiment": "negative", "sentiment_score": -0.9, "published_at": 1764478800.0, "confidence": 0.9}
    # readable, but with news.scored's time format: it would have reached the event clock and crashed the agent
    iso_time = {**story, "published_at": "2026-11-30T05:00:00Z"}
    scope = '"topic:Company | Product News"'  # a key as the fan-out writes it: the scope, JSON-encoded
    kafka.produce(embedded_broker.bootstrap, "news.by-scope", [b"{not json", b"\xff\xfe", story, story, iso_time, story],
                  [scope, scope, "{not a json key", None, scope, scope])
    # before lenient keys and values the first undecodable record ended the batch reader, and the
    # monitor saw none of them
    wait_for(lambda: worker.metric("finsentry_records_rejected_total", 'reason="wrong_type",stage="monitor"') >= 5
             and worker.metric("finsentry_hop_latency_seconds_count", 'agent="monitor"') >= 6, 300,
             "the monitor to read past the undecodable records to the good one")
    # two undecodable values, a key that is not JSON, a record with no key and one with a wrong type:
    # each dead-lettered with the bytes it came with, to be read or replayed
    assert dead_letters_of(kafka, embedded_broker.bootstrap, "monitor", 5) == sorted(
        [("utf-8", "{not json"), ("base64", base64.b64encode(b"\xff\xfe").decode()), ("utf-8", json.dumps(story)),
         ("utf-8", json.dumps(story)), ("utf-8", json.dumps(iso_time))])
    assert worker.process.poll() is None
    assert worker.get("/readyz")[0] == 200
    assert worker.metric("finsentry_agent_crashes_total", 'agent="monitor"') == 0


def test_garbage_on_the_single_writers_inboxes_is_dead_lettered_with_its_bytes(embedded_broker, start_worker_process,
                                                                               kafka):
    # Once Faust's plain JSON codec acknowledged and logged such bytes; with the lenient one they reached
    # the writers, which dead-lettered them as their own internal_error with a Python repr for the bytes.
    worker = start_worker_process()
    kafka.produce(embedded_broker.bootstrap, "scheduler.inbox", [b"\xff\xfe inbox"], ["scheduler"])
    kafka.produce(embedded_broker.bootstrap, "alerts.notify", [b"\xff\xfe notify"], ["x"])
    wait_for(lambda: worker.metric("finsentry_records_rejected_total", 'reason="wrong_type",stage="scheduler"') >= 1
             and worker.metric("finsentry_records_rejected_total", 'reason="wrong_type",stage="notify"') >= 1,
             300, "both writers to dead-letter the bytes")
    wanted = {("scheduler", base64.b64encode(b"\xff\xfe inbox").decode()),
              ("notify", base64.b64encode(b"\xff\xfe notify").decode())}

    def found(seen: dict) -> set:  # the module's broker holds the other tests' dead letters too
        return {(d["stage"], d["original"]) for d in seen[S.topic_deadletter] if d.get("original_encoding") == "base64"}

    seen = kafka.consume(embedded_broker.bootstrap, [S.topic_deadletter], lambda seen: wanted <= found(seen), 60)
    assert wanted <= found(seen), found(seen)
    assert worker.get("/readyz")[0] == 200
