"""A case webhook in flight when its worker stops is delivered by the next worker: the case event is
acknowledged only once its webhook is delivered or dead-lettered (streams/agents/case_webhooks.py).
Before, the event was acknowledged when the delivery started, and the notification was lost."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from waiting import wait_for
from webhook_sink import WebhookSink

from alerts.records import AnomalyEvent
from streams.settings import Settings

pytestmark = pytest.mark.integration
SECRET = "case-hook-" + uuid.uuid4().hex
WAIT = 300  # seconds; a condition normally holds within a few


def test_a_case_webhook_in_flight_when_its_worker_stops_is_delivered_by_the_next(embedded_broker, start_worker_process,
                                                                                kafka, tmp_path: Path) -> None:
    sink = WebhookSink(SECRET.encode(), statuses={"/ana": 503}).start()  # down: the delivery retries, in flight
    try:
        roster = tmp_path / "roster.yaml"
        roster.write_text(f"""\
analysts:
  - id: ana
    name: Ana
    capacity: 3
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Earnings: 5}}}}
    notify: {sink.url("/ana")}
    token_env: TEST_TOKEN_ANA
""")
        secret = tmp_path / "hook-secret"
        secret.write_text(SECRET)
        env = {"FINSENTRY_ROSTER": str(roster), "TEST_TOKEN_ANA": "ana-" + uuid.uuid4().hex,
               "FINSENTRY_CASE_WEBHOOK_SECRET_FILE": str(secret)}
        first = start_worker_process(**env)
        anomaly = AnomalyEvent("restart-a1", "open", "negative_surge", "topic:Earnings", "2024-01-02T14:41:00.000Z",
                               "2024-01-02T14:42:00.000Z", 12.0, 2.5, 9.4, "warning", ["s1"], ["Contoso warns"]).to_json()
        kafka.produce(embedded_broker.bootstrap, Settings().topic_anomalies, [anomaly], [anomaly["scope"]])
        wait_for(lambda: len(sink.on("/ana")) >= 1, WAIT, "the assignment webhook's first attempt")
        first.stop()  # mid-retry: the receiver is still down

        sink.statuses["/ana"] = 200
        back = time.time()
        start_worker_process(**env)
        wait_for(lambda: any(r.at >= back for r in sink.on("/ana")), WAIT, "the next worker to deliver it")
        delivered = [r for r in sink.on("/ana") if r.at >= back]
        labels = delivered[0].payload["alerts"][0]["labels"]
        assert delivered[0].valid_signature
        assert (labels["alertname"], labels["case_id"], labels["analyst"]) == ("case_assigned", "case-restart-a1", "ana")
    finally:
        sink.stop()
