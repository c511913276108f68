"""What the monitor accepts from news.by-scope: only the fan-out's own records reach a scope's state."""

from __future__ import annotations

import math

import pytest

from alerts.records import Story
from streams.agents.monitor import by_scope_story
from streams.validation import Rejection

GOOD = {"id": "s-1", "headline": "Tailspin Toys cuts outlook", "sentiment": "negative", "sentiment_score": -0.8,
        "published_at": 1764478800.0, "confidence": 0.91}
NOW = 1764479000.0


def test_the_fan_outs_record_is_a_story():
    assert by_scope_story(GOOD, NOW) == Story(**GOOD)
    assert by_scope_story({**GOOD, "confidence": None}, NOW) == Story(**{**GOOD, "confidence": None})


@pytest.mark.parametrize("value", [
    b"\xff\xfe", "a string", ["a", "list"], None,
    {**GOOD, "published_at": "2026-11-30T05:00:00Z"},  # news.scored's format, not the fan-out's
    {**GOOD, "published_at": None}, {**GOOD, "published_at": math.inf}, {**GOOD, "published_at": True},
    {**GOOD, "sentiment_score": "-0.8"}, {**GOOD, "sentiment_score": math.nan},
    {**GOOD, "sentiment_score": 10 ** 400}, {**GOOD, "confidence": 10 ** 400},  # math.isfinite raises on these
    {**GOOD, "confidence": "high"}, {**GOOD, "id": 7}, {**GOOD, "headline": None},
    {**GOOD, "sentiment": "bearish"}, {**GOOD, "extra": 1}, {k: v for k, v in GOOD.items() if k != "headline"},
])
def test_anything_else_is_rejected_as_wrong_type(value):
    rejected = by_scope_story(value, NOW)
    assert isinstance(rejected, Rejection) and rejected.reason == "wrong_type"


@pytest.mark.parametrize("published_at", [-1.0, NOW + 601, 253402300799.0, 1e300])
def test_a_time_before_1970_or_far_ahead_would_move_the_event_clock_and_is_rejected(published_at):
    rejected = by_scope_story({**GOOD, "published_at": published_at}, NOW)
    assert isinstance(rejected, Rejection) and rejected.reason == "bad_timestamp"


def test_a_time_a_little_ahead_passes_as_ingest_lets_it():
    assert isinstance(by_scope_story({**GOOD, "published_at": NOW + 590}, NOW), Story)
