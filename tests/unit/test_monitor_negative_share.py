"""`finsentry_negative_share_ratio{topic}`: a value only where this worker has one to give.

It once stayed at its last value on a worker that had lost the topic's partition in a rebalance
(two workers then showed the topic, one of them frozen), and an empty window set it to 0, which
reads as "no negative news" where there was no news at all.
"""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import pytest
from monitor_harness import isolate_monitor
from prometheus_client import REGISTRY

from alerts.config import MonitorConfig
from alerts.engine import ScopeMonitor
from alerts.records import Story
from streams import metrics
from streams.agents import monitor

CONFIG = MonitorConfig(allowed_lateness=10.0)
W, L = CONFIG.window_seconds, CONFIG.allowed_lateness
T0 = 1764478800.0  # a window start
SCOPE = "topic:Earnings"  # one of the model's topics


def share(topic: str = "Earnings") -> float | None:
    return REGISTRY.get_sample_value("finsentry_negative_share_ratio", {"topic": topic})


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    seen = SimpleNamespace(owned={SCOPE})

    async def publish(events: list) -> None:
        return None

    seen.table = isolate_monitor(monkeypatch, publish, config=CONFIG, owned=lambda scope: scope in seen.owned)
    metrics.NEGATIVE_SHARE.clear()
    timer = inspect.unwrap(monitor.advance_quiet_scopes)

    def tick(at: float) -> None:
        monitor.clock.newest = at
        asyncio.run(timer())

    seen.tick = tick
    scope_monitor = ScopeMonitor.new(SCOPE, CONFIG)
    scope_monitor.observe(Story("e1", "Northwind misses estimates", "negative", -0.8, T0 + 1, 0.9))
    scope_monitor.observe(Story("e2", "Northwind holds its dividend", "neutral", 0.0, T0 + 2, 0.9))
    seen.table[SCOPE] = scope_monitor.to_dict()
    yield seen
    metrics.NEGATIVE_SHARE.clear()


def test_a_window_with_stories_shows_its_share_and_an_empty_one_none(worker: SimpleNamespace) -> None:
    worker.tick(T0 + W + L)
    assert share() == 0.5
    worker.tick(T0 + 2 * W + L)  # the next window closes with no story in it
    assert share() is None


def test_a_topic_this_worker_no_longer_owns_has_no_series_here(worker: SimpleNamespace) -> None:
    worker.tick(T0 + W + L)
    assert share() == 0.5
    worker.owned.clear()  # a rebalance gave the topic's partition to another worker
    worker.tick(T0 + W + L + 5)
    assert share() is None
