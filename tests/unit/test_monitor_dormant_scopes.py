"""Dormant scopes cost the timer nothing, lose nothing, and are forgotten after a day.

Every ticker ever named got a scope, and every 5 s the timer loaded each one, closed its empty
window once a minute and wrote it back to the changelog, forever: with 20,000 one-story tickers,
20,000 changelog writes a minute and more than a second of event loop per tick.
"""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import pytest
from monitor_harness import isolate_monitor, scope_records

from alerts.config import MonitorConfig
from alerts.engine import ScopeMonitor, dormant
from alerts.records import Story
from alerts.windows import WindowSet
from streams import metrics
from streams.agents import monitor

CONFIG = MonitorConfig(allowed_lateness=10.0, warmup_windows=5)
W, L = CONFIG.window_seconds, CONFIG.allowed_lateness
T0 = 1764478800.0  # a window start
TICK = monitor.TICK_SECONDS


def story(story_id: str, at: float, sentiment: str = "neutral") -> Story:
    return Story(story_id, f"Headline {story_id} about Woodgrove", sentiment, -0.7 if sentiment == "negative" else 0.0,
                 at, 0.9)


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    seen = SimpleNamespace(events=[])

    async def publish(events: list) -> None:
        seen.events += events

    seen.table = isolate_monitor(monkeypatch, publish, config=CONFIG)
    timer = inspect.unwrap(monitor.advance_quiet_scopes)

    def ticks(start: float, end: float) -> None:
        """The timer every 5 s while other scopes' stories move the event clock to each tick's time."""
        async def run() -> None:
            at = start
            while at <= end:
                monitor.clock.newest = max(monitor.clock.newest, at)
                await timer()
                at += TICK
        asyncio.run(run())

    def deliver(scope: str, *stories: Story) -> None:
        asyncio.run(monitor.observe_scope(scope, scope_records(scope, stories, lag=1.0)))

    seen.ticks, seen.deliver = ticks, deliver
    return seen


def test_a_dormant_ticker_is_not_rewritten_each_minute(worker: SimpleNamespace) -> None:
    worker.deliver("ticker:ONCE", story("o1", T0 + 1))
    worker.ticks(T0 + 5, T0 + 120 * W)
    writes = worker.table.writes
    assert dormant(worker.table["ticker:ONCE"])
    assert len(writes) < 25  # until its story has left the spans and the running statistic: minutes, not hours
    worker.table.writes.clear()
    worker.ticks(T0 + 120 * W + 5, T0 + 180 * W)
    assert worker.table.writes == []
    # Nothing with a story is left to close (what the end-to-end tests wait for on the changelog);
    # only its empty windows wait, for its next story.
    windows = WindowSet.from_dict(worker.table["ticker:ONCE"]["windows"], W, L)
    assert not windows.closes_any(T0 + 180 * W) and windows.behind(T0 + 180 * W)


def test_its_quiet_windows_close_when_its_next_story_comes_as_if_the_timer_had_closed_them(
        worker: SimpleNamespace) -> None:
    first, second = story("o1", T0 + 1, "negative"), story("o2", T0 + 90 * W + 30)
    worker.deliver("ticker:ONCE", first)
    worker.ticks(T0 + 5, T0 + 90 * W)
    worker.deliver("ticker:ONCE", second)

    reference = ScopeMonitor.new("ticker:ONCE", CONFIG)  # what the old timer made of it: every window closed
    reference.observe(first)
    at = T0 + 5
    while at <= T0 + 90 * W:
        reference.advance(at)
        at += TICK
    reference.observe(second)
    assert worker.table["ticker:ONCE"] == reference.to_dict()


def test_a_story_late_for_a_dormant_scope_is_late_as_before(worker: SimpleNamespace) -> None:
    worker.deliver("ticker:ONCE", story("o1", T0 + 1))
    worker.ticks(T0 + 5, T0 + 90 * W)
    before = metrics.LATE_STORIES._value.get()
    worker.deliver("ticker:ONCE", story("old", T0 + 80 * W))  # ten minutes behind the clock
    assert metrics.LATE_STORIES._value.get() == before + 1
    assert not worker.table["ticker:ONCE"]["windows"]["open"]


def test_a_scope_dormant_over_a_weekend_is_kept_and_its_next_surge_opens(worker: SimpleNamespace) -> None:
    # Evicted after a day, a ticker quiet over a weekend came back as a new scope, in its warm-up,
    # and its first surge opened nothing.
    worker.deliver("ticker:ONCE", story("o1", T0 + 1))
    busy = [story(f"b{m}", T0 + m * W + 30) for m in range(10)]
    worker.deliver("ticker:SURGE", *busy)
    worker.ticks(T0 + 5, T0 + 10 * W)
    worker.deliver("ticker:SURGE", *[story(f"s{i}", T0 + 10 * W + 2 * i, "negative") for i in range(12)])
    worker.ticks(T0 + 10 * W + 5, T0 + 11 * W + L)
    assert [e.event for e in worker.events if e.scope == "ticker:SURGE"] == ["open"]
    assert metrics.ANOMALIES_ACTIVE.labels("negative_surge")._value.get() == 1

    weekend = 3 * 1440 * W
    worker.ticks(T0 + 11 * W + L + 5, T0 + weekend)
    assert "ticker:ONCE" in worker.table
    assert metrics.ANOMALIES_ACTIVE.labels("negative_surge")._value.get() == 0  # the surge resolved meanwhile
    assert [e.event for e in worker.events if e.scope == "ticker:SURGE"] == ["open", "resolve"]

    worker.deliver("ticker:ONCE", *[story(f"w{i}", T0 + weekend + 2 * i, "negative") for i in range(20)])
    worker.ticks(T0 + weekend + 5, T0 + weekend + 2 * W + L)
    assert [e.event for e in worker.events if e.scope == "ticker:ONCE"] == ["open"]


def test_twenty_thousand_dormant_tickers_cost_a_tick_no_write_and_no_load(
        worker: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    one = ScopeMonitor.new("ticker:T", CONFIG)
    one.observe(story("t", T0 + 1))
    one.advance(T0 + 30 * W)
    state = one.to_dict()
    assert dormant(state)
    for i in range(20_000):
        dict.__setitem__(worker.table, f"ticker:T{i:05d}", {**state, "scope": f"ticker:T{i:05d}"})
    loads = []
    monkeypatch.setattr(monitor, "rebuild", lambda *args: loads.append(args))
    worker.ticks(T0 + 31 * W, T0 + 33 * W)
    assert worker.table.writes == [] and loads == []
