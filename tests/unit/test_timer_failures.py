"""A timer's body that raises takes the agents' failure path: not ready, counted, the worker stopping.

Faust runs a timer as a task of the app; an exception leaving it went to mode's `Service.crash`, so
/readyz stayed 200, commits went on and `finsentry_agent_crashes_total` did not move.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from monitor_harness import Table, isolate_monitor

from streams import metrics
from streams.agents import classify, monitor, schedule
from streams.failures import FAILURES, TIMERS, guarded_timer
from streams.health import readiness


def crashes(name: str) -> float:
    return metrics.AGENT_CRASHES.labels(name)._value.get()


@pytest.fixture(autouse=True)
def failures() -> Iterator[mock.MagicMock]:
    FAILURES.crashed.clear()
    with mock.patch("streams.failures.os.kill") as kill:
        yield kill
    FAILURES.crashed.clear()


def test_a_timer_that_raises_marks_the_worker_failed_and_does_not_run_again(failures: mock.MagicMock) -> None:
    runs = []

    async def body() -> None:
        runs.append(1)
        raise ConnectionError("broker gone")

    guarded = guarded_timer("test-timer", 0.0)(body)
    assert crashes("test-timer") == 0  # the series exists from the start

    async def tick_twice() -> None:
        await guarded()
        await guarded()
        deadline = time.monotonic() + 60
        while not failures.called and time.monotonic() < deadline:  # the worker's stop, after the exit delay
            await asyncio.sleep(0)

    asyncio.run(tick_twice())
    assert runs == [1]
    assert FAILURES.crashed == {"test-timer": "ConnectionError: broker gone"}
    assert crashes("test-timer") == 1
    assert readiness()["agents_running"] is False
    assert metrics.READY._value.get() == 0
    failures.assert_called_once()  # SIGTERM to this process


def test_a_timer_that_is_cancelled_is_not_a_failure() -> None:
    async def body() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(guarded_timer("test-cancelled", 0.0)(body)())
    assert not FAILURES.any


@pytest.mark.parametrize(("timer", "name"), [(monitor.advance_quiet_scopes, "monitor-advance"),
                                             (classify.expire_seen, "classify-expire-seen"),
                                             (schedule.tick, "scheduler-tick")])
def test_the_agents_timers_run_their_bodies_guarded(timer, name: str) -> None:
    guarded = TIMERS[name]
    assert inspect.unwrap(timer, stop=lambda f: f is guarded) is guarded  # under @app.timer, not over it


def test_the_monitor_timer_failing_to_publish_leaves_the_state_and_reports_the_crash(
        monkeypatch: pytest.MonkeyPatch) -> None:
    state = monitor.ScopeMonitor.new("ticker:ACME", monitor.CONFIG)
    state.observe(monitor.Story("s1", "Acme cuts outlook", "negative", -0.8, 1764478800.0, 0.9))
    table = Table({"ticker:ACME": state.to_dict()})
    saved = table["ticker:ACME"]

    async def publish(events: list) -> None:
        raise ConnectionError("broker gone")

    isolate_monitor(monkeypatch, publish, clock=monitor.EventClock(newest=1764478800.0 + 3600), table=table)
    before = crashes("monitor-advance")

    asyncio.run(TIMERS["monitor-advance"]())
    assert FAILURES.crashed == {"monitor-advance": "ConnectionError: broker gone"}
    assert crashes("monitor-advance") == before + 1
    assert readiness()["agents_running"] is False
    assert table["ticker:ACME"] is saved and monitor.clock.applied == float("-inf")


def test_every_timer_of_the_worker_is_guarded() -> None:
    # A timer left unguarded crashes through mode's Service.crash: no /readyz, no crash counter.
    unguarded = []
    for path in (Path(__file__).resolve().parents[2] / "streams").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
                decorators = [ast.unparse(d) for d in node.decorator_list]
                if any(d.startswith("app.timer") for d in decorators) and not any(
                        d.startswith("guarded_timer") for d in decorators):
                    unguarded.append(f"{path}:{node.name}")
    assert unguarded == []
