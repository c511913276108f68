"""`finsentry receiver` as a real process: a signed webhook is printed and answered 200, a forged one 401."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_for

from alerts.delivery import encode
from alerts.signing import sign
from streams import broker
from streams.demo import stop_process

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"receiver-test-secret"
PAYLOAD = {"version": "4", "status": "firing", "receiver": "demo", "alerts": [
    {"status": "firing", "labels": {"alertname": "negative_surge", "scope": "topic:Earnings", "severity": "warning"},
     "annotations": {"summary": "negative surge in topic:Earnings: observed 12, expected 2.50 (score 9.4)"}}]}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, log = broker.free_port(), tmp_path / "receiver.log"
    env = {**os.environ, "TEST_RECEIVER_SECRET": SECRET.decode()}
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "receiver", "--host", "127.0.0.1", "--port",
                                str(port), "--secret-env", "TEST_RECEIVER_SECRET"], cwd=ROOT, env=env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"

    def listening() -> bool:
        assert process.poll() is None, f"receiver exited {process.returncode}:\n{log.read_text()}"
        try:
            urllib.request.urlopen(url, timeout=5)
        except urllib.error.HTTPError:
            return True  # listening (GET is not allowed)
        except OSError:
            return False
        return True

    try:
        wait_for(listening, 300, "the receiver to listen")
        yield url, log
    finally:
        stop_process(process)


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json",
                                                                            **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_signed_webhook_is_printed_and_a_forged_one_is_refused(receiver: tuple[str, Path]) -> None:
    url, log = receiver
    body = encode(PAYLOAD)
    assert post(url, body, sign(SECRET, body, int(time.time()))) == 200
    assert post(url, body, sign(b"wrong secret", body, int(time.time()))) == 401
    assert post(url, body, sign(SECRET, body, int(time.time()) - 3600)) == 401  # stale: a replay
    assert post(url, body, {}) == 401
    assert post(url, b"[1, 2]", sign(SECRET, b"[1, 2]", int(time.time()))) == 400
    # The receiver prints (and flushes) a request's lines before it answers, so the log is complete
    # once the last answer is in: no wait needed.
    lines = log.read_text().splitlines()
    assert "firing negative_surge topic:Earnings warning negative surge in topic:Earnings: observed 12, expected " \
           "2.50 (score 9.4)" in lines
    assert sum(line.startswith("rejected:") for line in lines) == 3


def test_missing_secret_is_one_line_and_status_2() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_SECRET"}
    done = subprocess.run([sys.executable, "-m", "streams.cli", "receiver", "--secret-env", "NO_SUCH_SECRET"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "NO_SUCH_SECRET is unset or empty" in done.stderr
