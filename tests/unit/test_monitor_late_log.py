"""Late stories are said in the worker's log, not only counted: a second replay of the README's
generated stream into the same worker was older than everything the worker had seen, reached no
detector, and only `finsentry_monitor_late_stories_total` knew."""

from __future__ import annotations

import asyncio
import logging

import pytest
from monitor_harness import isolate_monitor, scope_records

from alerts.config import MonitorConfig
from alerts.records import Story
from streams.agents import monitor

T0 = 1764478800.0  # a window start, in the past
CONFIG = MonitorConfig(allowed_lateness=120.0)


def story(story_id: str, at: float) -> Story:
    return Story(story_id, f"Contoso update {story_id}", "negative", -0.7, at, 0.9)


@pytest.fixture
def deliver(monkeypatch: pytest.MonkeyPatch):
    async def publish(events: list) -> None:
        return None

    isolate_monitor(monkeypatch, publish, config=CONFIG)
    monkeypatch.setattr(monitor, "late_log", monitor.LateLog())

    def run(*stories: Story) -> None:
        asyncio.run(monitor.observe_scope("ticker:CTSO", scope_records("ticker:CTSO", stories, lag=1.0)))
    return run


def test_a_replay_of_older_news_is_named_in_the_log_once_a_minute(deliver, caplog) -> None:
    deliver(*[story(f"live-{i}", T0 + 60 * i) for i in range(40)])  # event time reaches T0 + 39 min
    caplog.set_level(logging.WARNING, logger=monitor.__name__)
    deliver(*[story(f"replay-{i}", T0 + 60 * i) for i in range(10)])  # the same half hour again
    warnings = [r.getMessage() for r in caplog.records if " late stor" in r.getMessage()]
    assert len(warnings) == 1, warnings  # at once, then at most once a minute
    assert "FINSENTRY_MONITOR_ALLOWED_LATENESS=120 s" in warnings[0] and "replay" in warnings[0]
    assert "up to 2340 s behind" in warnings[0]  # the oldest, 39 minutes behind


def test_after_a_restart_behind_is_from_where_the_scope_closed(deliver, monkeypatch, caplog) -> None:
    # The worker's event clock starts again after a restart; the scope's windows come back closed from
    # the changelog. Measured from the restarted clock, a replay's stories were "142 s behind event time:
    # more than the allowed lateness (300 s)", a line that contradicted itself.
    deliver(*[story(f"live-{i}", T0 + 60 * i) for i in range(40)])  # windows closed through T0 + 37 min
    monkeypatch.setattr(monitor, "clock", monitor.EventClock())  # the restart
    caplog.set_level(logging.WARNING, logger=monitor.__name__)
    deliver(*[story(f"replay-{i}", T0 + 35 * 60 + 10 * i) for i in range(6)])  # T0 + 35:00 .. 35:50
    warnings = [r.getMessage() for r in caplog.records if " late stor" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "up to 240 s behind event time 2025-11-30T05:39:00" in warnings[0]  # T0 + 37 min + 120 s, not 50 s


def test_the_next_line_counts_every_late_story_since_the_last() -> None:
    late = monitor.LateLog(every=60.0)
    late.late(100.0, 400.0, now=1000.0)  # said at once
    late.late(200.0, 400.0, now=1010.0)
    late.late(50.0, 400.0, now=1020.0)
    assert (late.count, late.behind) == (2, 350.0)  # held until a minute has passed
    late.late(300.0, 400.0, now=1061.0)
    assert (late.count, late.behind, late.next_at) == (0, 0.0, 1121.0)


def test_the_timer_says_the_late_stories_no_story_came_after(caplog) -> None:
    # A replay that ended within the minute was said as "1 late stories", and the rest never.
    late = monitor.LateLog(every=60.0)
    caplog.set_level(logging.WARNING, logger=monitor.__name__)
    for n in range(9000):
        late.late(100.0, 400.0, now=1000.0 + n / 300)  # 9,000 in 30 s
    late.flush(now=1030.0)
    assert [r.getMessage().split(" up to")[0] for r in caplog.records] == ["monitor: 1 late story (one count per scope)"]
    late.flush(now=1060.0)  # the timer, a minute after the first line
    assert caplog.records[-1].getMessage().startswith("monitor: 8999 late stories")
    late.flush(now=1200.0)
    assert len(caplog.records) == 2  # nothing more to say
