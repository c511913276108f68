"""What the monitor accepts from news.by-scope: only the fan-out's own records reach a scope's state."""

from __future__ import annotations

import json
import math

import pytest

from alerts.records import Story
from streams.agents.monitor import by_scope_story, parse_scored
from streams.validation import Rejection

GOOD = {"id": "s-1", "headline": "Tailspin Toys cuts outlook", "sentiment": "negative", "sentiment_score": -0.8,
        "published_at": 1764478800.0, "confidence": 0.91}
NOW = 1764479000.0
SCORED = {"id": "s-1", "headline": "Tailspin Toys cuts outlook", "sentiment": "negative", "sentiment_score": -0.8,
          "published_at": "2025-11-30T05:00:00Z", "confidence": 0.91, "topic": "Earnings", "tickers": ["TT"]}


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


@pytest.mark.parametrize("score", [1e154, -1e154, 1.0001, -2, 10 ** 300])
def test_a_score_outside_minus_one_to_one_is_refused_before_it_reaches_a_scope(score):
    # The model's score is p(positive) - p(negative). Counted, 1e154 squared is inf: the scope's score
    # variance became inf and its shift detector never scored again.
    for rejected in (by_scope_story({**GOOD, "sentiment_score": score}, NOW),
                     parse_scored(json.dumps({**SCORED, "sentiment_score": score}).encode(), NOW)):
        assert isinstance(rejected, Rejection) and rejected.reason == "wrong_type"
        assert "outside [-1, 1]" in rejected.message


@pytest.mark.parametrize("score", [-1, -1.0, 0, 1.0])
def test_the_ends_of_the_range_are_scores(score):
    assert isinstance(by_scope_story({**GOOD, "sentiment_score": score}, NOW), Story)
    assert not isinstance(parse_scored(json.dumps({**SCORED, "sentiment_score": score}).encode(), NOW), Rejection)

