"""Push into a real Alertmanager (Debian's prometheus-alertmanager) and see it come out of its webhook."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from alerts_http_receiver import Receiver as HttpReceiver
from alerts_http_receiver import free_port

from alerts.alertmanager import AlertmanagerError, push_alerts
from alerts.engine import AnomalyEvent
from alerts.payload import alert_from_event

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.mark.skipif(BINARY is None, reason="Alertmanager binary not installed (apt-get install prometheus-alertmanager)")
def test_alert_pushed_to_alertmanager_comes_out_of_its_webhook(tmp_path: Path) -> None:
    async def main() -> None:
        hook = HttpReceiver(b"unused")
        hook_url = await hook.start()
        port = free_port()
        (tmp_path / "am.yml").write_text(
            "route:\n  receiver: hook\n  group_by: [scope]\n  group_wait: 1s\n  group_interval: 1s\n"
            f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: {hook_url}\n"
        )
        process = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant; the test awaits readiness
            [str(BINARY), f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as client:
                deadline = time.monotonic() + 300
                while True:
                    try:
                        if (await client.get(f"{base}/-/ready")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "Alertmanager did not become ready in 300 s"
                    await asyncio.sleep(0.2)
                event = AnomalyEvent("f00dfeed12345678", "open", "negative_surge", "ticker:ACME",
                                     "2024-05-01T10:00:00.000Z", "2024-05-01T10:01:00.000Z", 9, 0.4, 7.5, "critical",
                                     ["s1"], ["Acme falls"])
                await push_alerts(client, base, [alert_from_event(event, "https://fs.example/a/f00dfeed12345678")])
                unlabelled = replace(alert_from_event(event), labels={})
                with pytest.raises(AlertmanagerError, match="HTTP 400"):  # Alertmanager refuses an alert without labels
                    await push_alerts(client, base, [unlabelled])
                deadline = time.monotonic() + 300
                while not hook.received:
                    assert time.monotonic() < deadline, "Alertmanager did not call the webhook within 300 s"
                    await asyncio.sleep(0.2)
        finally:
            process.terminate()
            process.wait(timeout=10)
            await hook.stop()
        payload = hook.received[0].payload
        assert payload["version"] == "4" and payload["status"] == "firing"
        (alert,) = payload["alerts"]
        assert alert["labels"] == {"alertname": "negative_surge", "scope": "ticker:ACME", "severity": "critical",
                                   "anomaly_id": "f00dfeed12345678"}
        assert alert["annotations"]["headlines"] == "Acme falls"
        assert alert["generatorURL"] == "https://fs.example/a/f00dfeed12345678"
        # The same alert has the same fingerprint whether it comes direct or through Alertmanager.
        assert alert["fingerprint"] == alert_from_event(event).fingerprint
        assert alert["startsAt"].startswith("2024-05-01T10:00:00")

    asyncio.run(main())
