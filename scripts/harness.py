"""What scripts/chaos.py and scripts/hostile.py share: an embedded broker with workers as real
subprocesses (started and killed by PID, never by name), and exact reads of whole topics; the
tests' `kafka` fixture (tests/conftest.py) takes `end_offsets` from here too.

Topic reads stop at the end offsets taken when the read starts, not after a quiet timeout, so a
count is a count and not a guess about whether more was on the way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from models.runtime import default_model_dir
from models.variants import INT8
from streams import broker
from streams.demo import start_worker, stop_process, worker_env
from streams.settings import Settings

SETTINGS = Settings()


def exit_on_sigterm() -> None:
    """Turn SIGTERM (e.g. from `timeout`) into SystemExit, so `finally` stops the workers and broker."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def model_dir(given: str | None) -> Path:
    """--model-dir, else $FINSENTRY_MODEL_DIR, else the shipped model."""
    path = Path(given or os.environ.get("FINSENTRY_MODEL_DIR") or default_model_dir())
    if not (path / INT8.file).is_file():
        raise SystemExit(f"no {INT8.file} in {path}: pass --model-dir (e.g. the output of `finsentry export`)")
    return path


@dataclass
class Worker:
    process: subprocess.Popen
    port: int
    log: Path

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds until /readyz said 200; raises if the process died or the time ran out."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited {self.process.returncode}; log {self.log}")
            if self.ready():
                return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout:.0f}s; log {self.log}")

    def counter(self, name: str) -> float:
        """A counter's value summed over its labels from /metrics; 0 when the worker does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return 0.0
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name)

    def becomes_ready(self, within: float) -> bool:
        """Whether /readyz says 200 within the time given. A single probe is not enough at the end of a
        run: on 2 busy cores a worker can miss a heartbeat, rejoin its group, and be briefly without
        partitions while still healthy."""
        try:
            self.wait_ready(timeout=within)
        except RuntimeError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the worker's own process group (start_worker gives it a new session)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, as a supervisor or an operator stops it, and wait for it to exit (SIGKILL after 20 s)."""
        stop_process(self.process)


@dataclass
class Stack:
    """One embedded broker and the workers started against it, all under `workdir`."""

    workdir: Path
    model: Path
    env: dict[str, str] = field(default_factory=dict)
    broker: broker.EmbeddedBroker | None = None
    workers: list[Worker] = field(default_factory=list)

    def start_broker(self, port: int | None = None) -> broker.EmbeddedBroker:
        self.broker = broker.start(port, log=self.workdir / "broker.log")
        names = (SETTINGS.topic_raw, SETTINGS.topic_clean, SETTINGS.topic_scored, SETTINGS.topic_deadletter,
                 SETTINGS.topic_anomalies, SETTINGS.topic_alerts_deadletter, SETTINGS.topic_case_events,
                 SETTINGS.topic_case_actions, SETTINGS.topic_feedback)
        broker.create_topics(self.broker.bootstrap, {name: SETTINGS.partitions for name in names})
        return self.broker

    def start_worker(self, name: str = "w0", broker_url: str | None = None) -> Worker:
        """A worker named `name`; a restart under the same name keeps its data directory."""
        port = broker.free_port()
        url = broker_url or (self.broker.url if self.broker else "")
        env = worker_env(url, port, self.workdir / f"data-{name}", FINSENTRY_MODEL_DIR=str(self.model), **self.env)
        log = self.workdir / f"worker-{name}.log"
        worker = Worker(start_worker(env, log, level="info"), port, log)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        """Workers first, then the broker: a worker whose broker died can hang."""
        for worker in reversed(self.workers):
            stop_process(worker.process)
        if self.broker is not None:
            self.broker.stop()


def end_offsets(bootstrap: str, topic: str) -> int:
    """Records ever written to `topic` (sum of its partitions' end offsets): a cheap progress gauge,
    exact for a topic the worker writes (Tansu's end offsets count batches' first offsets, and the
    worker writes one record per batch: TANSU_WORKAROUNDS)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        return sum(consumer.end_offsets([TopicPartition(topic, p) for p in parts]).values())
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> Iterator[tuple[bytes | None, bytes | None]]:
    """Every (key, value) in `topic` up to the end offsets at the time of the call."""
    from kafka import KafkaConsumer, TopicPartition

    # check_crcs=False: kafka-python computes CRC32C in pure Python here, which made whole-topic reads
    # the slowest part of a run; the broker is local and the checks compare ids, not bytes.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, check_crcs=False,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        pending = {tp for tp in parts if ends[tp] > 0}
        while pending:
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                for message in messages:
                    if message.offset < ends[tp]:
                        yield message.key, message.value
                if consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        consumer.close()


def read_json(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(value) for _, value in read_topic(bootstrap, topic) if value is not None]
