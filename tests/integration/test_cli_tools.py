"""The command line: one-line errors, produce's bad-line report, the embedded broker command."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streams import broker
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
S = Settings()


def finsentry(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def test_worker_with_bad_setting_says_one_line():
    out = finsentry("worker", env={"FINSENTRY_PARTITIONS": "many"})
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "FINSENTRY_PARTITIONS" in out.stderr


@pytest.mark.integration
def test_produce_reports_bad_lines_and_sends_the_rest(embedded_broker, kafka, tmp_path):
    src = tmp_path / "news.jsonl"
    src.write_bytes(b'{"id": "p-1", "source": "t", "headline": "Acme beats"}\n'
                    b'not json\n'
                    b'\xff\xfe\n'
                    b'{"id": "p-2", "headline": 7}\n'
                    b'\n'
                    b'{"id": "p-3", "source": "t", "headline": "Globex slides"}\n')
    out = finsentry("produce", str(src), "--broker", embedded_broker.url, "--topic", "produce.test")
    assert out.returncode == 0, out.stderr
    assert "line 2: skipped: not JSON" in out.stderr
    assert "line 3: skipped: not UTF-8" in out.stderr
    assert "line 4: skipped: wrong_type" in out.stderr
    assert "sent 2 record(s), skipped 3 bad line(s)" in out.stderr
    seen = kafka.consume(embedded_broker.bootstrap, ["produce.test"], lambda s: len(s["produce.test"]) >= 2, timeout=300)
    assert sorted(v["id"] for v in seen["produce.test"]) == ["p-1", "p-3"]

    csv = tmp_path / "news.csv"
    csv.write_text("id,source,headline,tickers\nc-1,t,Acme rises,ACME;GLBX\n")
    out = finsentry("produce", str(csv), "--broker", embedded_broker.url, "--topic", "produce.csv")
    assert out.returncode == 0, out.stderr
    seen = kafka.consume(embedded_broker.bootstrap, ["produce.csv"], lambda s: len(s["produce.csv"]) >= 1, timeout=300)
    assert seen["produce.csv"][0]["tickers"] == ["ACME", "GLBX"]


def test_produce_unreachable_broker_is_one_line(tmp_path):
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps({"headline": "x"}) + "\n")
    out = finsentry("produce", str(src), "--broker", f"kafka://127.0.0.1:{broker.free_port()}")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "error" in out.stderr


def test_broker_command_runs_and_stops_on_sigterm():
    port = broker.free_port()
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "broker", "--port", str(port)],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        announced = process.stderr.readline()  # printed once Tansu accepts connections
        broker.create_topics(f"127.0.0.1:{port}", {"t": 2})
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(300)
    assert f"kafka://127.0.0.1:{port}" in announced
    assert process.returncode == 0
    assert not broker.wait_for_port(port, 0.5)


def test_broker_command_stopped_while_starting_leaves_no_broker_behind():
    port = broker.free_port()
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "broker", "--port", str(port)],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert broker.wait_for_port(port, 300)  # Tansu is up, possibly before the command has announced it
    process.send_signal(signal.SIGTERM)
    process.wait(300)
    assert process.returncode == 0
    assert not broker.wait_for_port(port, 0.5)


def test_broker_command_started_with_sigint_ignored_stops_on_sigint():
    # Started with `&` from a script, Python inherits SIGINT ignored: Ctrl-C (kill -INT) did nothing
    # while the command said "Ctrl-C stops it".
    port = broker.free_port()
    ignoring = f"trap '' INT; exec {shlex.quote(sys.executable)} -m streams.cli broker --port {port}"  # as `&` does
    process = subprocess.Popen(["bash", "-c", ignoring], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert "Ctrl-C stops it" in process.stderr.readline()
        process.send_signal(signal.SIGINT)
        process.wait(300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert not broker.wait_for_port(port, 0.5)
