"""`finsentry worker` started before Kafka retries with a log line per attempt, then proceeds or
gives up with one line; Faust alone exits at once when it cannot bootstrap."""

from __future__ import annotations

import socket

import pytest

from streams.broker_wait import reachable, wait_for_broker
from streams.usage import UsageError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reachable_sees_a_listening_socket_and_not_a_closed_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert reachable([f"127.0.0.1:{closed_port()}", f"127.0.0.1:{server.getsockname()[1]}"])
    assert not reachable([f"127.0.0.1:{closed_port()}"])


def test_waits_with_backoff_until_the_broker_listens(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    server = socket.socket()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the broker comes up during the third wait
        sleeps.append(seconds)
        if len(sleeps) == 3:
            server.bind(("127.0.0.1", port))
            server.listen()

    try:
        wait_for_broker([f"127.0.0.1:{port}"], patience=60, sleep=sleep)
    finally:
        server.close()
    assert sleeps == [1.0, 2.0, 4.0]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(f"127.0.0.1:{port} not reachable yet" in line for line in lines)
    assert "finsentry broker --port" in lines[0] and "FINSENTRY_BROKER" in lines[0]  # the fix, said once


def test_gives_up_after_its_patience_with_one_line_naming_the_setting() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(UsageError, match="FINSENTRY_BROKER_WAIT_SECONDS"):
        wait_for_broker([f"127.0.0.1:{closed_port()}"], patience=20, sleep=sleep, clock=lambda: now[0])
    assert now[0] >= 20
