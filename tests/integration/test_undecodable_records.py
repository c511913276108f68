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
