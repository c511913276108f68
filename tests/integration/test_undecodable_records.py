"""Bytes no JSON decoder reads, on a topic the worker reads as JSON, cost that record only: the agent
reads on and the worker stays ready (an agent crash would stop the worker, streams/failures.py)."""

from __future__ import annotations

import pytest
from waiting import wait_for

from streams.settings import Settings

pytestmark = pytest.mark.integration
S = Settings()


def test_garbage_on_alerts_anomalies_is_skipped_and_the_worker_stays_ready(embedded_broker, start_worker_process, kafka):
    worker = start_worker_process()
    kafka.produce(embedded_broker.bootstrap, S.topic_anomalies, [b"{not json", b"\xff\xfe", {}], ["s", "s", "s"])
    # The last record is JSON but no anomaly: its dead letter shows the agent read past the garbage.
    wait_for(lambda: worker.metric("finsentry_records_rejected_total", 'reason="invalid_anomaly",stage="scheduler"') >= 1,
             300, "the scheduler to read past the undecodable records")
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
    assert worker.process.poll() is None
    assert worker.get("/readyz")[0] == 200
    assert worker.metric("finsentry_agent_crashes_total", 'agent="classify"') == 0
