"""The monitor's event clock: no source makes another source's on-time stories late.

The worker closes every scope's windows at the newest event time it has seen (the 5 s timer), so
whatever moves that clock decides which stories count. Two ways it used to lose a surge: one story
from a source whose clock ran four minutes fast moved it four minutes ahead, and a feed polled every
minute (scrape's default) delivered stories older than the clock the prompt sources kept, by more
than the allowed lateness. These run the monitor's own agent step and timer over simulated arrivals.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from types import SimpleNamespace

import pytest
from monitor_harness import isolate_monitor, scope_record

from alerts.config import MonitorConfig
from alerts.records import Story
from streams import metrics
from streams.agents import monitor

T0 = 1764478800.0  # 2025-11-30 05:00 UTC, a window start in the past (the monitor refuses the far future)
W = 60.0
SURGE_AT = T0 + 40 * W  # after the 30-window warm-up


class Worker:
    """One worker's monitor: its agent step per batch and its timer every 5 s, on a simulated clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, config: MonitorConfig) -> None:
        self.events, self.now = [], T0
        self.timer = inspect.unwrap(monitor.advance_quiet_scopes)  # the body: a failure is the test's

        async def publish(events: list) -> None:
            self.events += [(self.now, e) for e in events]

        self.table = isolate_monitor(monkeypatch, publish, config=config)

    def run(self, arrivals: list[tuple[float, str, Story]], until: float) -> None:
        """Deliver (Kafka timestamp, scope, story) records in timestamp order, each second's as one batch."""
        async def main() -> None:
            tick = T0 + monitor.TICK_SECONDS
            batches: dict[int, list] = {}
            for offset, (at, scope, story) in enumerate(sorted(arrivals, key=lambda a: a[0])):
                batches.setdefault(int(at), []).append(scope_record(scope, story, offset, timestamp=at))
            for second in sorted(batches):
                while tick <= second:
                    self.now = tick
                    await self.timer()
                    tick += monitor.TICK_SECONDS
                self.now = float(second)
                groups, _ = monitor.group_by_scope(batches[second])
                for scope, events in groups.items():
                    await monitor.observe_scope(scope, events)
            while tick <= until:
                self.now = tick
                await self.timer()
                tick += monitor.TICK_SECONDS

        asyncio.run(main())

    def opened(self, scope: str) -> list[tuple[float, str]]:
        return [(at, e.kind) for at, e in self.events if e.scope == scope and e.event == "open"]


def late_stories() -> float:
    return metrics.LATE_STORIES._value.get()


def background(scope: str, prefix: str, minutes: range, seed: int) -> list[Story]:
    """About two stories a minute, a quarter negative."""
    rng, out = random.Random(seed), []
    for m in minutes:
        for k in range(rng.choice([1, 2, 2, 3])):
            sentiment = rng.choices(["negative", "neutral", "positive"], [0.25, 0.5, 0.25])[0]
            score = {"negative": -0.7, "neutral": 0.0, "positive": 0.6}[sentiment]
            out.append(Story(f"{prefix}-{m}-{k}", f"{scope} background {m} {k} {rng.random()}", sentiment, score,
                             T0 + m * W + rng.uniform(0, W - 1), 0.9))
    return out


def surge(prefix: str, start: float, count: int, seconds: float) -> list[Story]:
    return [Story(f"{prefix}-surge-{i}", f"Acme bad news number {i} for {prefix}", "negative", -0.8,
                  start + i * seconds / count, 0.9) for i in range(count)]


def prompt(scope: str, stories: list[Story], delay: float = 1.0) -> list[tuple[float, str, Story]]:
    """A source that sends each story as it is published; the pipeline takes `delay` seconds."""
    return [(s.published_at + delay, scope, s) for s in stories]


def test_a_source_whose_clock_runs_fast_makes_no_one_elses_stories_late(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 10 s lateness: the clock bound alone keeps the surge on time, whatever the lateness.
    worker = Worker(monkeypatch, MonitorConfig(allowed_lateness=10.0))
    acme = background("ticker:ACME", "acme", range(50), seed=1) + surge("acme", SURGE_AT - W, 12, W)
    fast = Story("fast-1", "Fabrikam names a new chair", "neutral", 0.0, T0 + 38 * W + 240.0, 0.9)
    before = late_stories()

    worker.run(prompt("ticker:ACME", acme) + [(T0 + 38 * W, "ticker:FABRIKAM", fast)], until=T0 + 52 * W)

    assert late_stories() == before  # the surge and ACME's background all counted
    assert "negative_surge" in [kind for _, kind in worker.opened("ticker:ACME")]
    assert monitor.clock.newest <= T0 + 50 * W + 1  # never ahead of a record's Kafka timestamp


def test_a_story_from_a_fast_clock_counts_in_the_window_of_its_own_time(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = Worker(monkeypatch, MonitorConfig(allowed_lateness=10.0))
    fast = Story("fast-1", "Fabrikam names a new chair", "neutral", 0.0, T0 + 240.0, 0.9)
    worker.run([(T0 + 1.0, "ticker:FABRIKAM", fast)], until=T0 + 60.0)
    assert monitor.clock.newest == T0 + 1.0
    windows, own = worker.table["ticker:FABRIKAM"]["windows"], str(int((T0 + 240.0) // W))
    assert list(windows["open"]) == [own] and windows["open"][own]["ids"] == ["fast-1"]  # its own time's window
    assert windows["next_index"] is None  # and it closed nothing on its own scope either


def polled(scope: str, stories: list[Story], seed: int, interval: float = 60.0) -> list[tuple[float, str, Story]]:
    """A feed polled every `interval` seconds from the start of each poll, as `finsentry scrape` does; a
    fetch takes up to 25 s (scrape's limit is 30 s), and a poll's stories are sent newest first, as
    feeds list them, 2 s later."""
    rng, out, sent = random.Random(seed), [], set()
    poll = T0 - interval + 7.0
    last = max(s.published_at for s in stories)
    while poll <= last + interval:
        fetched = poll + rng.uniform(0, 25)
        new = sorted((s for s in stories if s.published_at <= fetched and s.id not in sent),
                     key=lambda s: -s.published_at)
        out += [(fetched + 2.0, scope, s) for s in new]
        sent.update(s.id for s in new)
        poll += interval
    return out


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_feed_polled_every_minute_is_not_late_under_the_default_settings(
        monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    worker = Worker(monkeypatch, MonitorConfig())
    acme = background("ticker:ACME", "acme", range(50), seed=seed) + surge("acme", SURGE_AT, 12, W)
    busy = [Story(f"busy-{i}", f"Contoso market update {i}", "neutral", 0.0, T0 + 10.0 * i, 0.9) for i in range(320)]
    before = late_stories()

    worker.run(polled("ticker:ACME", acme, seed) + prompt("ticker:CONTOSO", busy), until=T0 + 56 * W)

    assert late_stories() == before
    assert "negative_surge" in [kind for _, kind in worker.opened("ticker:ACME")]


@pytest.mark.parametrize(("timestamp", "bound"), [(T0 + 5.0, T0 + 5.0), (-0.001, T0 + 60.0), (None, T0 + 60.0),
                                                  (float("nan"), T0 + 60.0)])
def test_a_record_without_a_kafka_timestamp_is_bounded_by_the_workers_clock(timestamp, bound) -> None:
    # Kafka's "no timestamp" is -1 ms (-0.001 s to Faust): bounding by it would stop the clock for good.
    assert monitor.clock_bound(SimpleNamespace(timestamp=timestamp), T0 + 60.0) == bound
