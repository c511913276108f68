"""End to end: a generated stream with a planted surge of negative legal and regulatory news, sent to
`news.raw`, ends as exactly one open anomaly and exactly one signed webhook for that scope.

Everything is real: broker, worker process, the shipped classifier, the HTTP receiver. The stream
is paced like live news, and the producer never runs more than a few chunks ahead of what the
worker has committed, so event time stays in order through the re-keyed topics however slow the
machine is (tests/surge.py, shared with the console's browser test). Every "exactly one" is checked
once the work that could add a second is done.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from surge import (
    BY_SCOPE,
    GROUP,
    MONITOR_ENV,
    SURGE_SCOPE,
    WAIT,
    S,
    needs_shipped_model,
    send_paced,
    stories,
    windows_closed_to,
)
from waiting import wait_for
from webhook_sink import WebhookSink

from alerts.engine import scopes_for
from alerts.records import AnomalyEvent
from streams.settings import Settings
from streams.validation import parse_time

SECRET = "e2e-secret"
NOTIFY = "alerts.notify"  # streams/agents/notify.py: the coordinator's input
COORDINATOR_CHANGELOG = f"{GROUP}-notify-coordinator-changelog"
MARKER_SCOPE = "topic:Marker"

pytestmark = [pytest.mark.e2e, needs_shipped_model]


def outbox_empty(kafka, bootstrap: str) -> bool:
    """Every notification the coordinator decided on so far is delivered (or dead-lettered)."""
    saved = kafka.read(bootstrap, [COORDINATOR_CHANGELOG])[COORDINATOR_CHANGELOG]
    return bool(saved) and saved[-1]["outbox"] == {}


def fetch(url: str, accept: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_generated_surge_becomes_one_anomaly_and_one_webhook(embedded_broker, start_worker_process, kafka,
                                                              tmp_path: Path) -> None:
    settings = Settings()
    sink = WebhookSink(SECRET.encode()).start()
    try:
        receivers = tmp_path / "receivers.yaml"
        receivers.write_text(f"""
receivers:
  - name: e2e
    url: {sink.url("/hook")}
    secret_env: FINSENTRY_WEBHOOK_SECRET
    group_wait: 1s
    group_interval: 10m
""")
        worker = start_worker_process(FINSENTRY_RECEIVERS=str(receivers), FINSENTRY_WEBHOOK_SECRET=SECRET,
                                      **MONITOR_ENV)
        bootstrap = embedded_broker.bootstrap
        records = stories()
        send_paced(kafka, bootstrap, records)
        scored = kafka.read(bootstrap, [S.topic_scored])[S.topic_scored]
        assert {r["id"] for r in scored} == {r["id"] for r in records}
        by_scope = sum(len(scopes_for(r.get("topic"), r.get("tickers") or [])) for r in scored)
        wait_for(lambda: kafka.committed(bootstrap, GROUP, BY_SCOPE) >= by_scope, WAIT, "the monitor to count every story")
        assert worker.metric("finsentry_records_in_total", 'stage="monitor"') >= len(records)
        assert worker.metric("finsentry_monitor_late_stories_total", "") == 0  # the order survived
        watermark = max(parse_time(r["published_at"]).timestamp() for r in records)
        wait_for(lambda: windows_closed_to(kafka, bootstrap, watermark), WAIT,
                 "the monitor timer to close every window due at the stream's end", every=3)

        def surge_hooks() -> list:
            return [r for r in sink.on("/hook") if r.payload["groupLabels"].get("scope") == SURGE_SCOPE]

        wait_for(lambda: len(surge_hooks()) >= 1, WAIT, "the webhook for the surge")
        # A wrong second notification shows up by the time a marker alert, sent once the coordinator
        # has taken every anomaly event, is delivered and nothing is left in the outbox.
        events = kafka.end_offsets(bootstrap, S.topic_anomalies)
        wait_for(lambda: kafka.committed(bootstrap, GROUP, S.topic_anomalies) >= events, WAIT, "notify to route every event")
        routed = kafka.end_offsets(bootstrap, NOTIFY)
        wait_for(lambda: kafka.committed(bootstrap, GROUP, NOTIFY) >= routed, WAIT, "the coordinator to take every event")
        marker = AnomalyEvent("marker", "open", "negative_surge", MARKER_SCOPE, "2024-01-02T14:41:00.000Z",
                              "2024-01-02T14:42:00.000Z", 12.0, 2.5, 9.4, "warning", ["m1"], ["Marker"]).to_json()
        kafka.produce(bootstrap, S.topic_anomalies, [marker], [MARKER_SCOPE])
        wait_for(lambda: any(r.payload["groupLabels"].get("scope") == MARKER_SCOPE for r in sink.on("/hook"))
                 and outbox_empty(kafka, bootstrap), WAIT, "the marker to be delivered and the outbox settled")
        seen = kafka.read(bootstrap, [settings.topic_anomalies])
        opens = [e for e in seen[settings.topic_anomalies] if e["event"] == "open" and e["scope"] == SURGE_SCOPE]
        assert len(opens) == 1 and opens[0]["kind"] == "negative_surge", seen[settings.topic_anomalies]
        hooks = surge_hooks()
        assert len(hooks) == 1 and hooks[0].valid_signature
        assert [a["labels"]["anomaly_id"] for a in hooks[0].payload["alerts"]] == [opens[0]["anomaly_id"]]

        # Every generatorURL in the run opens its anomaly's page, as JSON and as HTML (issue 16).
        alerts = [a for r in sink.on("/hook") for a in r.payload["alerts"] if a["labels"]["scope"] != MARKER_SCOPE]
        assert alerts
        for alert in alerts:
            aid = alert["labels"]["anomaly_id"]
            assert alert["generatorURL"].endswith(f"/anomalies/{aid}")
            status, page = fetch(alert["generatorURL"], "application/json")
            assert status == 200, page
            page = json.loads(page)
            assert page["anomaly_id"] == aid and page["scope"] == alert["labels"]["scope"]
            assert page["history"] and page["history"][0]["event"] == "open"
            assert page["headlines"] and all(h["sentiment"] and h["confidence"] is not None
                                             for h in page["headlines"])
            status, html = fetch(alert["generatorURL"], "text/html")  # the console's case page, after sign-in
            assert status == 200 and f'name="next" value="/console/cases/case-{aid}"' in html
    finally:
        sink.stop()
