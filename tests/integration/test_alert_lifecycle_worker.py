"""Silences through Debian's `amtool` against a worker, and the anomaly page behind every
generatorURL (issue 16). One worker, a real webhook sink, alerts produced onto alerts.anomalies."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from waiting import wait_for
from webhook_sink import WebhookSink

from alerts.records import AnomalyEvent
from streams.broker import free_port
from streams.settings import Settings

SECRET = "lifecycle-test-secret"
TOKEN = "operator-test-token"
AMTOOL = shutil.which("amtool")
HOSTILE = '<b>Acme</b> & "probe" <script>x()</script>'


def anomaly(aid: str, scope: str) -> dict:
    return AnomalyEvent(aid, "open", "negative_surge", scope, "2024-01-02T14:41:00.000Z", "2024-01-02T14:42:00.000Z",
                        12.0, 2.5, 9.4, "warning", ["s1"], [HOSTILE],
                        [{"id": "s1", "headline": HOSTILE, "sentiment": "negative", "confidence": 0.87}]).to_json()


def request(url: str, method: str = "GET", body: bytes | None = None, **headers: str) -> tuple[int, str, str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


@pytest.mark.integration
@pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (apt-get install prometheus-alertmanager)")
def test_amtool_silences_a_worker_and_every_generator_url_opens(embedded_broker, start_worker_process, kafka,
                                                                tmp_path: Path) -> None:
    settings = Settings()
    (tmp_path / "token").write_text(TOKEN + "\n")
    http_config = tmp_path / "amtool-http.yml"
    http_config.write_text(f"authorization:\n  type: Bearer\n  credentials_file: {tmp_path / 'token'}\n")
    sink = WebhookSink(SECRET.encode()).start()
    receivers = tmp_path / "receivers.yaml"
    receivers.write_text(f"""
receivers:
  - name: desk
    url: {sink.url("/hook")}
    secret_env: FINSENTRY_WEBHOOK_SECRET
    group_by: [alertname]
    group_wait: 1s
    group_interval: 1s
""")
    try:
        nobody = f"http://127.0.0.1:{free_port()}"  # an Alertmanager that is down
        worker = start_worker_process(FINSENTRY_RECEIVERS=str(receivers), FINSENTRY_WEBHOOK_SECRET=SECRET,
                                      FINSENTRY_OPERATOR_TOKEN_FILE=str(tmp_path / "token"),
                                      FINSENTRY_ALERTMANAGER_URL=nobody)
        # Push outcomes are exported at 0 from start-up, so the first failure is an increase.
        exported = worker.get("/metrics")[1]
        for outcome in ("ok", "error"):
            assert f'finsentry_alertmanager_push_total{{outcome="{outcome}"}} 0.0' in exported

        def amtool(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([AMTOOL, f"--alertmanager.url={worker.url}", f"--http.config.file={http_config}",
                                   *args], capture_output=True, text=True, timeout=60, check=False)

        # The silences API wants the operator's token: none is 401, a wrong one 403.
        silences = worker.url + "/api/v2/silences"
        assert request(silences)[0] == 401
        assert request(silences, "POST", b"{}", Authorization="Bearer nope")[0] == 403
        assert request(silences, Authorization="Bearer nope")[0] == 403
        status, _, text = request(silences, "POST", json.dumps({"matchers": []}).encode(),
                                  Authorization=f"Bearer {TOKEN}")
        assert status == 400 and "matchers" in text

        added = amtool("silence", "add", "scope=topic:Silenced", "--comment=maintenance", "--duration=1h")
        assert added.returncode == 0, added.stderr
        silence_id = added.stdout.strip()
        assert silence_id

        def listed() -> str:
            result = amtool("silence", "query", "-q")
            assert result.returncode == 0, result.stderr
            return result.stdout

        wait_for(lambda: silence_id in listed(), 300, "the silence to be listed by amtool")
        query = amtool("-o", "json", "silence", "query")
        (shown,) = json.loads(query.stdout)
        assert shown["id"] == silence_id and shown["status"]["state"] == "active"
        assert shown["matchers"] == [{"name": "scope", "value": "topic:Silenced", "isRegex": False, "isEqual": True}]

        # The silenced alert is taken (counted as silenced) but not delivered; then one it does not
        # match, in the same group, is delivered without it.
        kafka.produce(embedded_broker.bootstrap, settings.topic_anomalies, [anomaly("a2", "topic:Silenced")],
                      ["topic:Silenced"])
        wait_for(lambda: worker.metric("finsentry_webhook_deliveries_total",
                                       'outcome="silenced",receiver="desk"') == 1, 300, "the silenced alert")
        kafka.produce(embedded_broker.bootstrap, settings.topic_anomalies, [anomaly("a1", "topic:Earnings")],
                      ["topic:Earnings"])

        def delivered(aid: str) -> list[dict]:
            return [a for r in sink.on("/hook") for a in r.payload["alerts"] if a["labels"]["anomaly_id"] == aid]

        wait_for(lambda: delivered("a1"), 300, "the unsilenced alert")
        assert delivered("a2") == []
        wait_for(lambda: worker.metric("finsentry_alertmanager_push_total", 'outcome="error"') >= 1, 300,
                 "the failed push to the absent Alertmanager to be counted")
        assert worker.metric("finsentry_alertmanager_push_total", 'outcome="ok"') == 0

        expired = amtool("silence", "expire", silence_id)
        assert expired.returncode == 0, expired.stderr
        wait_for(lambda: silence_id not in listed(), 300, "the silence to expire")
        wait_for(lambda: delivered("a2"), 300, "the alert once its silence expired")
        assert len(delivered("a2")) == 1 and all(r.valid_signature for r in sink.on("/hook"))

        # Every generatorURL opens the anomaly's page: JSON when asked for, the console's case page otherwise.
        alerts = [a for r in sink.on("/hook") for a in r.payload["alerts"]]
        assert {a["labels"]["anomaly_id"] for a in alerts} == {"a1", "a2"}
        # without an external_url in the file, externalURL is the worker's URL, generatorURL's base (it was "")
        for received in sink.on("/hook"):
            base = received.payload["externalURL"].rstrip("/")
            assert base and all(a["generatorURL"] == f"{base}/anomalies/{a['labels']['anomaly_id']}"
                                for a in received.payload["alerts"])
        for alert in alerts:
            url, aid = alert["generatorURL"], alert["labels"]["anomaly_id"]
            assert url.endswith(f"/anomalies/{aid}")
            status, content_type, text = request(url, Accept="application/json")
            assert status == 200 and content_type.startswith("application/json"), text
            page = json.loads(text)
            assert page["anomaly_id"] == aid and page["scope"] == alert["labels"]["scope"]
            assert page["observed"] == 12.0 and page["expected"] == 2.5 and page["score"] == 9.4
            assert [h["severity"] for h in page["history"]] == ["warning"]
            assert page["headlines"] == [{"id": "s1", "headline": HOSTILE, "sentiment": "negative",
                                          "confidence": 0.87}]
            # named, never shown: this route needs no token, and the case (analyst, outcome) is not public
            assert page["case"] == {"case_id": f"case-{aid}", "console": f"/console/cases/case-{aid}"}
            # A browser lands on the console's case page, by way of its sign-in (which comes back there).
            status, content_type, html = request(url, Accept="text/html")
            assert status == 200 and content_type.startswith("text/html") and "<h1>Sign in</h1>" in html
            assert f'name="next" value="/console/cases/case-{aid}"' in html
        assert request(worker.url + "/anomalies/nope", Accept="application/json")[0] == 404
    finally:
        sink.stop()
