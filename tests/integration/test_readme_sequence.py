"""The README's own sequence, as a new user types it: `finsentry broker`, then `finsentry worker`,
then `finsentry generate --to-kafka`, on a fresh broker where nobody created a topic.

This is the path that used to lose stories: the worker let topics appear lazily, its first table
write failed inside the producer's partitioner, every crash of the classify agent committed past
its batch, and /readyz said ready throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from waiting import wait_for

from streams.broker import free_port, wait_for_port
from streams.demo import stop_process
from streams.settings import Settings
from streams.sources.generate import malformed_with_kinds

pytestmark = pytest.mark.integration
FINSENTRY = str(Path(sys.executable).parent / "finsentry")
S = Settings()
ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@dataclass
class Stack:
    """A broker and one worker started as the README starts them, and where to reach them."""

    url: str
    bootstrap: str
    base: str  # the worker's web address
    env: dict[str, str]  # the user's environment (no FINSENTRY_BROKER: each command names the broker)
    log: Path


@contextmanager
def readme_stack(tmp_path: Path, model_dir: Path, worker_argv: list[str]) -> Iterator[Stack]:
    """`finsentry broker`, then `FINSENTRY_BROKER=... <worker_argv> --web-port P`, waiting for /readyz;
    the worker is stopped before the broker afterwards, as it must be."""
    port, web_port = free_port(), free_port()
    url, bootstrap = f"kafka://127.0.0.1:{port}", f"127.0.0.1:{port}"
    # The user's environment: no FINSENTRY_* beyond what the README sets (the model dir only where
    # the shipped model is absent, and a data dir so parallel runs do not share one).
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENTRY_")}
    env["FINSENTRY_DATA_DIR"] = str(tmp_path / "data")
    env["FINSENTRY_MODEL_DIR"] = str(model_dir)
    broker = subprocess.Popen([FINSENTRY, "broker", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    log = tmp_path / "worker.log"
    worker = None
    try:
        assert wait_for_port(port, 30), "finsentry broker did not listen"
        worker = subprocess.Popen([*worker_argv, "--web-port", str(web_port)], env={**env, "FINSENTRY_BROKER": url},
                                  cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: worker.poll() is not None or get(base + "/readyz")[0] == 200, 240, "the worker's /readyz")
        assert worker.poll() is None, log.read_text()[-4000:]
        yield Stack(url, bootstrap, base, env, log)
    finally:
        if worker is not None:
            stop_process(worker, 60)  # workers stop before the broker
        stop_process(broker)


def test_broker_then_worker_then_generate_scores_every_story(tmp_path: Path, model_dir: Path, kafka) -> None:
    with readme_stack(tmp_path, model_dir, [FINSENTRY, "worker", "-l", "info"]) as stack:
        url, bootstrap, base, env, worker_log = stack.url, stack.bootstrap, stack.base, stack.env, stack.log
        # Every series whose labels are known is there at 0 before the first event.
        _, text = get(base + "/metrics")
        for series in ('finsentry_agent_crashes_total{agent="classify"} 0.0',
                       'finsentry_records_rejected_total{reason="invalid_json",stage="ingest"} 0.0',
                       'finsentry_records_out_total{stage="classify"} 0.0'):
            assert series in text, series

        subprocess.run([FINSENTRY, "generate", "--count", "2000", "--rate", "200", "--seed", "3", "--to-kafka",
                        "--broker", url], env=env, check=True, capture_output=True, timeout=300)
        # A user's own producer sends some records no one can read.
        malformed = [raw for _, raw in malformed_with_kinds(40, seed=3)]
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for raw in malformed:
            producer.send(S.topic_raw, raw)
        producer.flush()
        producer.close()

        def complete(seen: dict) -> bool:
            return len({v["id"] for v in seen[S.topic_scored]}) >= 2000 and len(seen[S.topic_deadletter]) >= 40

        seen = kafka.consume(bootstrap, [S.topic_scored, S.topic_deadletter], complete, timeout=600)
        scored = {v["id"] for v in seen[S.topic_scored]}
        assert len(scored) == 2000, f"{len(scored)} of 2000 stories scored"
        assert len(seen[S.topic_deadletter]) == 40
        assert not [d for d in seen[S.topic_deadletter] if d["reason"] == "internal_error"]
        assert {d["stage"] for d in seen[S.topic_deadletter]} == {"ingest"}

        def monitor_count() -> float:
            _, text = get(base + "/metrics")
            line = next((ln for ln in text.splitlines() if ln.startswith('finsentry_records_in_total{stage="monitor"}')),
                        "x 0")
            return float(line.split()[-1])

        wait_for(lambda: monitor_count() >= 2000, 300, "the monitor to count every scored story")
        status, body = get(base + "/readyz")
        assert status == 200, body
        assert json.loads(body)["agents_running"] is True
        _, text = get(base + "/metrics")
        assert 'finsentry_agent_crashes_total{agent="classify"} 0.0' in text
        assert 'finsentry_records_rejected_total{reason="internal_error",stage="monitor"} 0.0' in text
        assert "Traceback" not in worker_log.read_text()


def test_faust_cli_worker_prepares_topics_like_finsentry_worker(tmp_path: Path, model_dir: Path, kafka) -> None:
    """`faust -A streams.worker worker`, the other documented entry point, on a fresh broker: it waits
    for the broker, creates every topic with the declared partitions and exposes the series at 0, as
    `finsentry worker` does, and the stories it is sent are scored."""
    with readme_stack(tmp_path, model_dir, [sys.executable, "-m", "faust", "-A", "streams.worker", "worker",
                                             "-l", "info"]) as stack:
        url, bootstrap, base, env, worker_log = stack.url, stack.bootstrap, stack.base, stack.env, stack.log
        _, text = get(base + "/metrics")
        assert 'finsentry_agent_crashes_total{agent="classify"} 0.0' in text

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([S.topic_raw, S.topic_scored])}
        finally:
            admin.close()
        assert partitions == {S.topic_raw: S.partitions, S.topic_scored: S.partitions}

        subprocess.run([FINSENTRY, "generate", "--count", "50", "--rate", "50", "--seed", "5", "--to-kafka",
                        "--broker", url], env=env, check=True, capture_output=True, timeout=300)
        seen = kafka.consume(bootstrap, [S.topic_scored], lambda s: len({v["id"] for v in s[S.topic_scored]}) >= 50,
                             timeout=600)
        assert len({v["id"] for v in seen[S.topic_scored]}) == 50
        assert "Traceback" not in worker_log.read_text()
