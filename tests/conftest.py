"""Shared fixtures: the embedded Tansu broker, workers as real subprocesses, Kafka helpers.

Integration tests run against a real Kafka protocol peer (Tansu), never a mocked broker. Workers
are stopped before the broker (fixture order), because a worker whose broker died can hang.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from models.runtime import default_model_dir
from models.variants import INT8
from scripts.harness import end_offsets
from streams import broker
from streams.demo import start_worker, stop_process, worker_env
from streams.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TINY_DATA = [str(FIXTURES / "tiny_topic.csv"), str(FIXTURES / "tiny_sentiment.csv")]


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped with SIGTERM (`timeout`, a CI runner's cancel) ends as Ctrl-C does: pytest then
    tears every fixture down, so the brokers and workers they started stop with the run instead of
    outliving it, holding its ports and cores."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def topic_names(settings: Settings) -> dict[str, int]:
    names = (settings.topic_raw, settings.topic_clean, settings.topic_scored, settings.topic_deadletter,
             settings.topic_anomalies, settings.topic_alerts_deadletter, settings.topic_case_events,
             settings.topic_case_actions, settings.topic_feedback)
    return {name: settings.partitions for name in names}


@pytest.fixture(scope="module")
def embedded_broker() -> Iterator[broker.EmbeddedBroker]:
    running = broker.start()
    broker.create_topics(running.bootstrap, topic_names(Settings()))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped default model; where it is absent, a tiny model trained here on the fixtures."""
    shipped = default_model_dir()
    if (shipped / INT8.file).is_file():
        return shipped
    from models.export import export
    from models.train import TrainConfig, train

    work = tmp_path_factory.mktemp("tiny-model")
    train(TrainConfig(train=TINY_DATA, dev=TINY_DATA, out=str(work / "ckpt"), epochs=1, batch_size=16),
          progress=lambda _: None)
    export(work / "ckpt", work / "onnx", fp16=False, progress=lambda _: None)
    return work / "onnx"


@dataclass
class Worker:
    process: subprocess.Popen
    web_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def get(self, path: str) -> tuple[int, str]:
        # A generous timeout: a worker busy scoring answers late, and callers read it inside waits whose
        # own limit is the one that matters. A worker that is gone refuses the connection at once.
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, labels: str) -> float:
        """One sample from /metrics, e.g. metric("finsentry_cases_total", 'event="assigned"'), or
        metric("finsentry_ready", "") for a series without labels; 0 if absent."""
        _, text = self.get("/metrics")
        series = re.escape(name) + (f"{{{re.escape(labels)}}}" if labels else "")
        match = re.search(rf"^{series} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def start_worker_process(embedded_broker: broker.EmbeddedBroker, model_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    # One case-action secret for every worker of a test, as a deployment shares it (streams/action_signing.py).
    secret = tmp_path / "case-actions.secret"
    secret.write_text(uuid.uuid4().hex)

    def start(wait: bool = True, **extra: str) -> Worker:
        port = broker.free_port()
        env = worker_env(embedded_broker.url, port, tmp_path / f"data-{len(started)}", FINSENTRY_MODEL_DIR=str(model_dir),
                         **{"FINSENTRY_CASE_ACTION_SECRET_FILE": str(secret), **extra})
        log = tmp_path / f"worker-{len(started)}.log"
        worker = Worker(start_worker(env, log, level="info"), port, log)
        started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    for worker in reversed(started):
        worker.stop()


def produce(bootstrap: str, topic: str, values: Iterable[bytes | dict], keys: Iterable[str | None] | None = None) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    n = 0
    key_iter = iter(keys) if keys is not None else None
    for value in values:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        key = next(key_iter) if key_iter is not None else None
        producer.send(topic, raw, key=key.encode() if key else None)
        n += 1
    producer.flush()
    producer.close()
    return n


def consume(bootstrap: str, topics: list[str], until: Callable[[dict[str, list]], bool], timeout: float) -> dict[str, list]:
    """Read topics from the beginning until `until(seen)` holds or time runs out; values JSON-decoded."""
    from kafka import KafkaConsumer

    seen: dict[str, list] = {t: [] for t in topics}
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
                             consumer_timeout_ms=1000)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(seen):
            for message in consumer:
                seen[message.topic].append(json.loads(message.value))
                if until(seen) or time.monotonic() > deadline:
                    break
    finally:
        consumer.close()
    return seen


def read(bootstrap: str, topics: list[str], timeout: float = 300) -> dict[str, list]:
    """Every record in `topics` up to their end offsets at the time of the call, values JSON-decoded
    (tombstones skipped). For assertions that nothing else arrived: call it once a condition says
    the work that could have produced a record is done, never after a fixed sleep.

    Tansu reports a partition's end as its last record batch's first offset + 1, so the last batch is
    read whole; topics the worker writes hold one record per batch (TANSU_WORKAROUNDS).
    """
    from kafka import KafkaConsumer, TopicPartition

    seen: dict[str, list] = {t: [] for t in topics}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, check_crcs=False,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    deadline = time.monotonic() + timeout
    try:
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        pending = {tp for tp in parts if ends[tp] > 0}
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {sorted(f'{tp.topic}/{tp.partition}' for tp in pending)}")
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                seen[tp.topic].extend(json.loads(m.value) for m in messages if m.value is not None)
            pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
    finally:
        consumer.close()
    return seen


def committed(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` that consumer group `group` (a worker's app id) has processed and committed:
    the sum of its committed offsets, as offsets start at 0 and are contiguous. Faust commits an
    offset only once the records before it are handled (its outputs sent, table writes acknowledged)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in parts)
    finally:
        consumer.close()


@pytest.fixture
def kafka() -> object:
    return type("Kafka", (), {name: staticmethod(fn) for name, fn in
                              {"produce": produce, "consume": consume, "read": read, "committed": committed,
                               "end_offsets": end_offsets}.items()})


def pytest_report_header(config: pytest.Config) -> str:
    shipped = default_model_dir()
    which = "shipped default model" if (shipped / INT8.file).is_file() else \
        "NO shipped model: integration tests use a tiny model trained on tests/fixtures (near-random labels)"
    return f"finsentry: {which}; CI={os.environ.get('CI', '')}"
