"""A story the monitor dead-letters leaves its scope's state exactly as it was before that story.

`ScopeMonitor.observe` counts the story and pops every due window before it closes any, so an
exception part-way (a detector raising on the second of five windows) once left the popped windows
lost and the dead-lettered story counted, and the monitor saved that state.
"""

from __future__ import annotations

import asyncio
import copy
import math
from types import SimpleNamespace

import pytest
from monitor_harness import isolate_monitor, scope_records

from alerts.config import MonitorConfig
from alerts.engine import ScopeMonitor
from alerts.records import Story
from alerts.windows import Window
from streams.agents import monitor

SCOPE = "ticker:ACME"
CONFIG = MonitorConfig()
W, L = CONFIG.window_seconds, CONFIG.allowed_lateness
T0 = math.floor(1764478800.0 / W) * W  # a window's start, in the past


def story(story_id: str, at: float, sentiment: str = "negative") -> Story:
    return Story(story_id, f"Headline {story_id} about Acme", sentiment, -0.7, at, 0.9)


S1 = story("s1", T0 + 1)
S2 = story("s2", T0 + W + 1, "positive")  # window k+1; does not close window k (lateness)
S3 = story("s3", T0 + 5 * W + L)  # closes windows k..k+4
S4 = story("s4", T0 + 5 * W + L + 1)


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The monitor's per-scope step with its table, the broker and the dead-letter topic replaced."""
    seen = SimpleNamespace(published=[], dead=[])

    async def publish(events: list) -> None:
        seen.published.extend(events)

    async def dead_letter_fault(stage: str, fault: Exception, original: object, message: SimpleNamespace) -> None:
        seen.dead.append(message.key)

    seen.table = isolate_monitor(monkeypatch, publish, config=CONFIG)
    monkeypatch.setattr(monitor, "dead_letter_fault", dead_letter_fault)
    return seen


def run(*stories: Story) -> None:
    asyncio.run(monitor.observe_scope(SCOPE, scope_records(SCOPE, stories)))


def reference(*stories: Story) -> dict:
    """The state the stories leave when nothing fails."""
    scope_monitor = ScopeMonitor.new(SCOPE, CONFIG)
    for s in stories:
        scope_monitor.observe(s)
    return scope_monitor.to_dict()


def fail_once(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, when) -> list[str]:
    """Make `cls.name` raise once, after doing its work, on the first call that `when(args)` picks."""
    original, raised = getattr(cls, name), []

    def flaky(self, *args):
        result = original(self, *args)
        if not raised and when(*args):
            raised.append(name)
            raise ZeroDivisionError("a detector's bug")
        return result

    monkeypatch.setattr(cls, name, flaky)
    return raised


def test_a_close_that_raises_leaves_the_saved_state_as_it_was_and_the_next_story_closes_the_windows(
        agent: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    run(S1, S2)
    before = copy.deepcopy(agent.table[SCOPE])
    raised = fail_once(monkeypatch, ScopeMonitor, "_close", lambda window: "s2" in window.ids)  # the 2nd of 5

    run(S3)
    assert raised and agent.dead == ["s3"]
    assert agent.table[SCOPE] == before  # no window popped, s3 not counted
    assert agent.published == []
    assert monitor.clock.newest == S2.published_at  # a dead-lettered story does not move the event clock

    run(S4)
    assert agent.table[SCOPE] == reference(S1, S2, S4)
    assert agent.table[SCOPE]["baseline"]["windows"] == 5  # the window holding s2 among them
    assert monitor.clock.newest == S4.published_at


def test_within_a_batch_the_stories_before_and_after_the_fault_count_and_it_does_not(
        agent: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_once(monkeypatch, ScopeMonitor, "_close", lambda window: "s2" in window.ids)
    run(S1, S2, S3, S4)
    assert agent.dead == ["s3"]
    assert agent.table[SCOPE] == reference(S1, S2, S4)


def test_a_story_that_raises_after_being_counted_is_not_counted(
        agent: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault in a story that closes nothing: the stories counted since the last save stay counted."""
    bad = story("bad", T0 + W + 2)
    fail_once(monkeypatch, Window, "add", lambda s, novel, max_samples: s.id == "bad")
    run(S1, S2, bad, S4)
    assert agent.dead == ["bad"]
    assert agent.table[SCOPE] == reference(S1, S2, S4)


def test_a_score_out_of_range_is_dead_lettered_and_leaves_the_scope_as_it_was(
        agent: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A foreign producer's 1e154 once reached the scope: its square made the score variance inf, and the
    shift detector never scored there again."""
    async def send_dead_letter(stage: str, reason: str, error: str, original: object, message: SimpleNamespace) -> None:
        agent.dead.append((message.key, reason, error))

    monkeypatch.setattr(monitor, "send_dead_letter", send_dead_letter)
    run(S1, S2)
    before = copy.deepcopy(agent.table[SCOPE])
    huge = [Story(f"h{i}", f"Huge {i}", "negative", 1e154, T0 + W + 5 + i, 0.9) for i in range(3)]
    run(*huge)
    assert [(key, reason) for key, reason, _ in agent.dead] == [("h0", "wrong_type"), ("h1", "wrong_type"),
                                                                  ("h2", "wrong_type")]
    assert "outside [-1, 1]" in agent.dead[0][2]
    assert agent.table[SCOPE] == before
    run(S3)
    assert math.isfinite(agent.table[SCOPE]["baseline"]["score_var"])
