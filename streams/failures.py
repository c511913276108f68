"""Machinery failures: an agent that raised stops the worker without committing past its work.

Two kinds of failure reach an agent:

- **The record's own fault**: pure code (validation, parsing, detection) raised on this record's
  content. Retrying cannot help; the record goes to the dead-letter topic with reason
  `internal_error` and the exception, and the agent goes on (streams/errors.py).
- **The machinery's failure**: the broker, a table's changelog, the model runtime. The stories in
  hand are fine, so dead-lettering them would lose them. The exception leaves the agent body, and
  Faust calls the app's agent error hook (`App._on_agent_error`), which calls `agent_failed`:
  commits stop at once (the consumer checks `FAILURES` before every commit, streams/consumer.py),
  `/readyz` and `finsentry_ready` go to not-ready naming the agent, `finsentry_agent_crashes_total`
  counts it, and after `FINSENTRY_CRASH_EXIT_DELAY_SECONDS` (long enough for a Prometheus scrape
  to see the crash) the worker stops and `finsentry worker` exits with status 1.

A timer's body (`@app.timer`) is not an agent: Faust runs it as a task of the app, and an exception
leaving it went to mode's `Service.crash`, which neither stops commits nor tells `/readyz` or the
crash counter. `guarded_timer` puts it on the same path, under the timer's own name.

Why stop rather than restart the agent in place: Faust acknowledges every event it handed to a
crashed agent (its stream's `finally` blocks) and, by default, commits on the spot; records
already fetched for the agent sit in Faust's queues past the failed ones. Restarting in place from
the committed offset would mean rewinding Faust's private per-partition bookkeeping while the
fetcher runs, the class of race the seek guard already had to fix once. A fresh process reads
every partition from its committed offset, and tables recover from their changelogs; its
supervisor (compose's `restart: unless-stopped`, systemd, Kubernetes) restarts it. Everything
processed after the last commit is processed again, which every stage tolerates (idempotent by id).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from streams import metrics

log = logging.getLogger(__name__)


@dataclass
class Failures:
    """Agents that crashed in this process, {agent name: 'ExceptionType: message'}; once any has, the
    consumer commits nothing more."""

    crashed: dict[str, str] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.crashed)


FAILURES = Failures()


def agent_failed(agent: str, exc: BaseException, exit_delay: float) -> None:
    """A machinery failure left an agent's body: stop committing, report it, and stop the worker soon."""
    first = not FAILURES.any
    FAILURES.crashed[agent] = f"{type(exc).__name__}: {exc}"
    metrics.AGENT_CRASHES.labels(agent).inc()
    metrics.READY.set(0)
    log.critical("agent %s crashed (%s); committing nothing more and stopping the worker in %.0fs so that "
                 "its supervisor restarts it from the last committed offsets", agent, FAILURES.crashed[agent],
                 exit_delay)
    if first:
        asyncio.get_running_loop().call_later(exit_delay, os.kill, os.getpid(), signal.SIGTERM)


TimerBody = Callable[..., Awaitable[None]]
# The guarded timer bodies by name, each the function `@app.timer` wraps (tests call them directly).
TIMERS: dict[str, TimerBody] = {}


def guarded_timer(name: str, exit_delay: float) -> Callable[[TimerBody], TimerBody]:
    """Put a timer's body on the agents' failure path; goes under `@app.timer`.

    An exception leaving the body (a timer has no record to blame, so it is the machinery's) is
    `agent_failed` under `name`: commits stop, `/readyz` and `finsentry_agent_crashes_total` name
    it, and the worker stops after `exit_delay`. Until then the body does not run again.
    """

    def guard(body: TimerBody) -> TimerBody:
        @wraps(body)
        async def guarded(*args: Any) -> None:
            if name in FAILURES.crashed:
                return
            try:
                await body(*args)
            except Exception as exc:  # noqa: BLE001 - reported as an agent's crash, which stops the worker
                agent_failed(name, exc, exit_delay)

        TIMERS[name] = guarded
        metrics.AGENT_CRASHES.labels(name)  # the series at 0 from start, as for the agents
        return guarded

    return guard


class InjectedFault(RuntimeError):
    """Raised by the fault-injection test hook (FINSENTRY_FAULT_INJECTION), never otherwise."""


@dataclass
class FaultInjection:
    """Test hook, off by default: raise once in `agent` when its record count reaches `after`.

    Parsed from FINSENTRY_FAULT_INJECTION=AGENT:N (e.g. `classify:150`). It stands for a machinery
    failure in the middle of a batch, so the fault-injection test can show nothing is lost;
    `model-call:N` stands for a model call that hangs instead (`hang`), and `fetch:N` for a
    partition the consumer stops fetching (`starve`).
    """

    agent: str
    after: int
    seen: int = 0
    fired: bool = False

    @classmethod
    def parse(cls, spec: str | None) -> FaultInjection | None:
        if not spec:
            return None
        agent, _, after = spec.partition(":")
        return cls(agent, int(after))

    def tick(self, agent: str, records: int = 1) -> None:
        if agent != self.agent or self.fired:
            return
        self.seen += records
        if self.seen >= self.after:
            self.fired = True
            raise InjectedFault(f"fault injected in {agent} after {self.seen} records (FINSENTRY_FAULT_INJECTION)")

    def starve(self, agent: str, records: int, stop_fetching: Callable[[], str]) -> None:
        """As `tick`, but instead of raising, call `stop_fetching` once: `fetch:N` in the classify agent
        pauses the partition of the last record of the batch that brings its count to N in Faust's consumer, as a rebalance that never resumed
        it would, and logs it (`TOPIC/PARTITION`). The worker stays up with work it will not do
        (streams/health.py must say so)."""
        try:
            self.tick(agent, records)
        except InjectedFault:
            log.critical("fault injected in %s after %d records: %s is no longer fetched (FINSENTRY_FAULT_INJECTION)",
                         agent, self.seen, stop_fetching())

    def hang(self, agent: str, records: int = 1) -> None:
        """As `tick`, but the calling thread blocks for good instead of raising: a runtime call that
        never returns (`model-call:N` in the classify agent's model thread)."""
        try:
            self.tick(agent, records)
        except InjectedFault:
            log.critical("fault injected in %s after %d records: this thread now hangs (FINSENTRY_FAULT_INJECTION)",
                         agent, self.seen)
            threading.Event().wait()
