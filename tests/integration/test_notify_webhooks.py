"""Notify on a real broker: anomaly events become grouped, signed webhooks at a real HTTP receiver;
silences hold alerts back and survive a restart; a receiver that refuses a notification for good
(a 4xx) ends in `alerts.deadletter`, and one that is down for a while gets it when it is back."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from waiting import wait_for
from webhook_sink import WebhookSink

from alerts.records import AnomalyEvent, iso_utc
from streams.settings import Settings

SECRET = "notify-test-secret"
TOKEN = "notify-test-operator-token"
GROUP_INTERVAL = 2.0  # the desk receiver's, below
COORDINATOR_CHANGELOG = f"{Settings().app_id}-notify-coordinator-changelog"
WAIT = 300  # seconds; a condition normally holds within a few


def anomaly(aid: str, scope: str) -> dict:
    return AnomalyEvent(aid, "open", "negative_surge", scope, "2024-01-02T14:41:00.000Z", "2024-01-02T14:42:00.000Z",
                        12.0, 2.5, 9.4, "warning", ["s1"], ["Acme shares plunge"]).to_json()


def receivers_file(tmp_path: Path, sink: WebhookSink) -> Path:
    path = tmp_path / "receivers.yaml"
    path.write_text(f"""
receivers:
  - name: desk
    url: {sink.url("/hook")}
    secret_env: FINSENTRY_WEBHOOK_SECRET
    group_wait: 1s
    group_interval: 2s
  - name: broken
    url: {sink.url("/broken")}
    secret_env: FINSENTRY_WEBHOOK_SECRET
    scopes: ["ticker:*"]
    group_wait: 1s
    max_attempts: 2
    backoff_initial: 0.1s
    backoff_max: 0.2s
  - name: flaky
    url: {sink.url("/flaky")}
    secret_env: FINSENTRY_WEBHOOK_SECRET
    scopes: ["topic:Flaky"]
    group_wait: 1s
    group_interval: 2s
    max_attempts: 2
    backoff_initial: 0.1s
    backoff_max: 0.2s
""")
    return path


def call(worker, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(worker.url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())




def outbox_empty(kafka, bootstrap: str) -> bool:
    """The coordinator's last saved state has nothing due and unsettled: every notification it
    decided on has been delivered or dead-lettered (streams/agents/notify.py)."""
    saved = kafka.read(bootstrap, [COORDINATOR_CHANGELOG])[COORDINATOR_CHANGELOG]
    return bool(saved) and saved[-1]["outbox"] == {}


def flush_marker(kafka, bootstrap: str, sink: WebhookSink, aid: str) -> None:
    """Send an anomaly for a scope of its own and wait until the coordinator has delivered it and
    settled everything else. Its group is due only after every earlier group's next check (the
    caller waits out their group interval first), in the same or a later flush, so whatever the
    coordinator would (wrongly) send for the earlier alerts has arrived by then."""
    scope = f"topic:Marker-{aid}"
    kafka.produce(bootstrap, Settings().topic_anomalies, [anomaly(aid, scope)], [scope])
    wait_for(lambda: any(r.payload["groupLabels"].get("scope") == scope for r in sink.on("/hook"))
             and outbox_empty(kafka, bootstrap), WAIT, f"the marker {aid} to be delivered and the outbox settled")


def not_markers(received: list) -> list:
    return [r for r in received if not r.payload["groupLabels"].get("scope", "").startswith("topic:Marker-")]


def silence_ids(worker) -> list[str]:
    status, body = call(worker, "GET", "/api/v2/silences")
    return [s["id"] for s in body if s["status"]["state"] == "active"] if status == 200 else []


@pytest.mark.integration
def test_grouped_signed_webhooks_silences_and_dead_letters(embedded_broker, start_worker_process, kafka,
                                                           tmp_path: Path) -> None:
    settings = Settings()
    sink = WebhookSink(SECRET.encode(), statuses={"/broken": 400, "/flaky": 503}).start()
    try:
        (tmp_path / "token").write_text(TOKEN)
        env = {"FINSENTRY_RECEIVERS": str(receivers_file(tmp_path, sink)), "FINSENTRY_WEBHOOK_SECRET": SECRET,
               "FINSENTRY_OPERATOR_TOKEN_FILE": str(tmp_path / "token")}
        worker = start_worker_process(**env)

        assert call(worker, "POST", "/api/v2/silences", b"{nope")[0] == 400
        status, error = call(worker, "POST", "/api/v2/silences", json.dumps({"matchers": [], "endsAt": "x"}).encode())
        assert status == 400 and "matchers" in error["message"]
        assert call(worker, "POST", "/api/v2/silences", b"x" * 20_000)[0] == 413
        until = iso_utc(time.time() + 3600)
        status, created = call(worker, "POST", "/api/v2/silences", json.dumps(
            {"matchers": [{"name": "scope", "value": "topic:Silenced", "isRegex": False}], "startsAt": iso_utc(time.time()),
             "endsAt": until, "createdBy": "test", "comment": "test"}).encode())
        assert status == 200
        created["id"] = created["silenceID"]
        wait_for(lambda: created["id"] in silence_ids(worker), WAIT, "the silence to be applied")

        events = [anomaly("a1", "topic:Earnings"), anomaly("a2", "topic:Silenced"), anomaly("a3", "ticker:ACME")]
        kafka.produce(embedded_broker.bootstrap, settings.topic_anomalies, [*events, b'{"anomaly_id": 1}'],
                      [e["scope"] for e in events] + ["junk"])
        wait_for(lambda: len(sink.on("/hook")) >= 2 and len(sink.on("/broken")) >= 1, WAIT, "the webhooks")
        # A group interval later nothing more may have arrived: the groups' next check is past once
        # a marker sent after it is delivered.
        last = max(r.at for r in sink.received)
        wait_for(lambda: time.time() > last + GROUP_INTERVAL, WAIT, "a group interval after the last delivery")
        flush_marker(kafka, embedded_broker.bootstrap, sink, "m1")
        hooks = not_markers(sink.on("/hook"))
        assert sorted(r.payload["groupLabels"]["scope"] for r in hooks) == ["ticker:ACME", "topic:Earnings"]
        assert all(r.valid_signature and r.payload["version"] == "4" for r in hooks)
        assert [a["labels"]["anomaly_id"] for r in hooks for a in r.payload["alerts"]].count("a2") == 0
        assert len(sink.on("/broken")) == 1  # a 4xx other than 429 is not retried: a resend cannot fix it

        def dead(seen: dict[str, list]) -> bool:
            return any(d.get("receiver") == "broken" for d in seen[settings.topic_alerts_deadletter]) and any(
                d.get("stage") == "notify" for d in seen[settings.topic_deadletter])

        seen = kafka.consume(embedded_broker.bootstrap, [settings.topic_alerts_deadletter, settings.topic_deadletter],
                             dead, timeout=WAIT)
        letter = next(d for d in seen[settings.topic_alerts_deadletter] if d["receiver"] == "broken")
        assert letter["status"] == 400 and letter["attempts"] == 1 and "HTTP 400" in letter["error"]
        assert worker.metric("finsentry_webhook_deliveries_total", 'outcome="delivered",receiver="desk"') == 2 + 1  # m1
        assert worker.metric("finsentry_webhook_deliveries_total", 'outcome="deadletter",receiver="broken"') == 1
        assert worker.metric("finsentry_webhook_deliveries_total", 'outcome="silenced",receiver="desk"') == 1

        # A receiver down for longer than one delivery round (2 attempts) gets the notification when
        # it is back: the round failed, the notification stayed in the outbox, nothing was dead-lettered.
        kafka.produce(embedded_broker.bootstrap, settings.topic_anomalies, [anomaly("f1", "topic:Flaky")], ["topic:Flaky"])
        wait_for(lambda: worker.metric("finsentry_webhook_deliveries_total", 'outcome="failed",receiver="flaky"') >= 1,
                 WAIT, "a failed delivery round to the flaky receiver")
        sink.statuses["/flaky"] = 200
        wait_for(lambda: worker.metric("finsentry_webhook_deliveries_total", 'outcome="delivered",receiver="flaky"') == 1,
                 WAIT, "the flaky receiver's notification once it is back")
        flaky = sink.on("/flaky")
        assert len(flaky) >= 3 and flaky[-1].payload["alerts"][0]["labels"]["anomaly_id"] == "f1"
        assert len({r.headers["X-Finsentry-Notification-Id"] for r in flaky}) == 1  # one notification, re-sent
        assert worker.metric("finsentry_webhook_deliveries_total", 'outcome="deadletter",receiver="flaky"') == 0

        # A restarted coordinator resumes: the silence is still there and nothing is re-sent.
        worker.stop()
        restarted = start_worker_process(**env)
        wait_for(lambda: created["id"] in silence_ids(restarted), WAIT, "the restored silence")
        flush_marker(kafka, embedded_broker.bootstrap, sink, "m2")  # due after any re-send of the old groups
        assert len(not_markers(sink.on("/hook"))) == 3  # a1, a3 and f1, each once: nothing re-sent
        assert call(restarted, "DELETE", f"/api/v2/silence/{created['id']}")[0] == 200
        wait_for(lambda: created["id"] not in silence_ids(restarted), WAIT, "the silence to expire")
    finally:
        sink.stop()
