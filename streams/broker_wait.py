"""Waiting for Kafka before a worker starts.

A worker started before its broker (compose without health checks, a laptop where the broker comes
second) would otherwise fail in Faust's first metadata request with a traceback. Both entry points,
`finsentry worker` and `faust -A streams.worker worker`, wait here instead, logging each retry, and
give up with one line naming the servers and the setting once their patience is spent.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Sequence

from streams.usage import UsageError


def reachable(servers: Sequence[str], timeout: float = 2.0) -> bool:
    """Whether any bootstrap server (`host:port`) accepts a TCP connection: enough to know Kafka is up."""
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def wait_for_broker(servers: Sequence[str], patience: float, sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> None:
    """Block until a bootstrap server answers, logging each retry to stderr with a doubling delay
    (1 s to 15 s); UsageError after `patience` seconds."""
    started, delay, attempt = clock(), 1.0, 1
    while not reachable(servers):
        waited = clock() - started
        if waited >= patience:
            raise UsageError(f"no Kafka broker at {','.join(servers)} after {waited:.0f}s; start it or point "
                             "FINSENTRY_BROKER at one (FINSENTRY_BROKER_WAIT_SECONDS sets how long to wait)")
        hint = ("; start it (the embedded one: finsentry broker --port PORT) or point FINSENTRY_BROKER at a "
                "running one" if attempt == 1 else "")
        print(f"finsentry worker: broker {','.join(servers)} not reachable yet (attempt {attempt}); "
              f"retrying in {delay:.0f}s{hint}", file=sys.stderr, flush=True)
        sleep(delay)
        delay, attempt = min(delay * 2, 15.0), attempt + 1
