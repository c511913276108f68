"""The monitor agent run in-process by unit tests: its module state replaced, its records built as
Faust hands them over. One copy, so every monitor test isolates the same state the same way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from types import SimpleNamespace

import pytest

from alerts.config import MonitorConfig
from alerts.records import Story
from streams.agents import monitor


class Table(dict):
    """Stands in for the monitor's Faust table: a dict that remembers the keys written (each one a
    changelog write on a worker), with the `written()` flush the agent awaits returning at once."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: dict) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)

    async def written(self) -> None:
        return None


def isolate_monitor(monkeypatch: pytest.MonkeyPatch, publish: Callable[[list], Awaitable[None]], *,
                    config: MonitorConfig | None = None, owned: Callable[[str], bool] = lambda scope: True,
                    clock: monitor.EventClock | None = None, table: Table | None = None) -> Table:
    """Replace the monitor module's table, publisher, partition ownership, event clock and shown-topic
    gauges (and its config, when given) for one test; returns the table."""
    table = Table() if table is None else table
    monkeypatch.setattr(monitor, "monitors", table)
    monkeypatch.setattr(monitor, "publish", publish)
    monkeypatch.setattr(monitor, "owned", owned)
    monkeypatch.setattr(monitor, "clock", clock or monitor.EventClock())
    monkeypatch.setattr(monitor, "_shown_topics", set())
    if config is not None:
        monkeypatch.setattr(monitor, "CONFIG", config)
    return table


def scope_record(scope: str, story: Story, offset: int, timestamp: float | None = None) -> SimpleNamespace:
    """One `news.by-scope` event as the agent's stream yields it: the story's dict as value, and its
    message at `offset`, with a Kafka `timestamp` (Unix seconds) when given (none: the worker's clock)."""
    message = SimpleNamespace(key=story.id, value=b"", topic="news.by-scope", partition=0, offset=offset)
    if timestamp is not None:
        message.timestamp = timestamp
    return SimpleNamespace(key=scope, value=asdict(story), message=message)


def scope_records(scope: str, stories: Iterable[Story], lag: float | None = None) -> list[SimpleNamespace]:
    """The stories as consecutive records of one scope, each produced `lag` seconds after its
    publication time (None: without a Kafka timestamp)."""
    return [scope_record(scope, s, i, None if lag is None else s.published_at + lag) for i, s in enumerate(stories)]
