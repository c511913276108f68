"""What the fan-out accepts from news.scored: the one check of a scored story before it is counted.

A value that would be dead-lettered one stage later by the monitor's own check (tests/unit/
test_by_scope_values.py) is rejected here, at the boundary, with the record's own reason.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from streams.agents.monitor import FUTURE_LIMIT, by_scope_story, parse_scored
from streams.validation import MAX_FUTURE_SKEW, Rejection

NOW = 1764479000.0
GOOD = {"id": "s-2", "headline": "Fabrikam recalls 40,000 heaters", "sentiment": "negative",
        "sentiment_score": -0.7, "published_at": "2025-11-30T05:00:00Z", "confidence": 0.88,
        "topic": "Industrials", "tickers": ["FBKM"]}


def scored(**fields: object) -> bytes:
    return json.dumps({**GOOD, **fields}).encode()


def test_a_scored_story_becomes_the_story_the_monitor_accepts_in_each_of_its_scopes():
    story, scopes = parse_scored(scored(), NOW)
    assert (story.id, story.sentiment_score, story.confidence, story.topic) == ("s-2", -0.7, 0.88, "Industrials")
    assert story.published_at == 1764478800.0
    assert sorted(scopes) == ["ticker:FBKM", "topic:Industrials"]
    assert by_scope_story(json.loads(json.dumps(story.__dict__)), NOW) == story


@pytest.mark.parametrize("raw", [
    scored(sentiment_score=math.nan), scored(sentiment_score=-math.inf),  # json writes and reads NaN, -Infinity
    scored(sentiment_score=True), scored(sentiment_score="-0.7"), scored(sentiment_score=None),
    scored(sentiment_score=10 ** 400),  # an int no float can hold: math.isfinite raises on it
    scored(id=7), scored(tickers="FBKM"),
    scored(tickers=["FBKM", "FB\ud800"]), scored(topic="Indus\udc80"),  # a scope key no encode can send
])
def test_a_score_the_windows_cannot_count_is_rejected_as_wrong_type(raw):
    rejected = parse_scored(raw, NOW)
    assert isinstance(rejected, Rejection) and rejected.reason == "wrong_type", rejected


@pytest.mark.parametrize("published_at", ["9999-12-31T23:59:59Z", "2025-11-30T05:30:00Z", "1969-12-31T00:00:00Z", "not a date"])
def test_a_time_the_event_clock_must_not_see_is_rejected_as_bad_timestamp(published_at):
    rejected = parse_scored(scored(published_at=published_at), NOW)
    assert isinstance(rejected, Rejection) and rejected.reason == "bad_timestamp", rejected


@pytest.mark.parametrize("confidence", [True, "high", None, math.nan, 10 ** 400])
def test_an_unusable_confidence_is_dropped_not_the_story(confidence):
    story, _ = parse_scored(scored(confidence=confidence), NOW)
    assert story.id == "s-2" and story.confidence is None


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


@pytest.mark.parametrize("ahead", [MAX_FUTURE_SKEW + 1, FUTURE_LIMIT])
def test_a_time_as_far_ahead_as_ingest_lets_through_plus_clock_skew_is_kept(ahead):
    story, _ = parse_scored(scored(published_at=iso(NOW + ahead)), NOW)
    assert story.published_at == NOW + ahead


def test_one_second_past_the_bound_is_rejected():
    rejected = parse_scored(scored(published_at=iso(NOW + FUTURE_LIMIT + 1)), NOW)
    assert isinstance(rejected, Rejection) and rejected.reason == "bad_timestamp"


def test_only_the_models_topics_become_negative_share_series():
    """A foreign producer's topic on news.scored still gets its windows, but no Prometheus series: the
    label's values stay the model's label map, however many topics such records name."""
    from types import SimpleNamespace

    from prometheus_client import REGISTRY

    from streams.agents.monitor import record_window

    def share(topic: str) -> float | None:
        return REGISTRY.get_sample_value("finsentry_negative_share_ratio", {"topic": topic})

    window = SimpleNamespace(negative_share=0.75)
    record_window(SimpleNamespace(scope="topic:Not A Model Topic 7", last_window=window))
    record_window(SimpleNamespace(scope="topic:Earnings", last_window=window))
    assert share("Not A Model Topic 7") is None and share("Earnings") == 0.75


@pytest.mark.parametrize("confidence", [1.5, -0.1, 97.0])
def test_a_confidence_that_is_no_probability_costs_only_the_confidence(confidence: float) -> None:
    # An anomaly event whose samples carry one is refused by notify-route (alerts/records.py): one
    # story from a foreign scorer (a percentage) would have held back a real surge's alert.
    story, _ = parse_scored(scored(confidence=confidence), NOW)
    assert story.confidence is None and story.sentiment_score == -0.7
    carried = by_scope_story({**json.loads(json.dumps(story.__dict__)), "confidence": confidence}, NOW)
    assert carried.confidence is None


def test_a_foreign_record_is_kept_within_what_ingest_lets_through():
    """The stream review's finding: a valid news.scored record with a 180,000-character CJK headline
    became a 1 MB news.by-scope copy once JSON-escaped; the producer refused it and the worker stopped
    on the same record after every restart. The monitor now keeps a story within ingest's bounds."""
    from faust.utils import json as faust_json

    from streams.validation import MAX_HEADLINE_CHARS, MAX_ID_CHARS

    story, scopes = parse_scored(scored(headline="\u503a" * 180_000, tickers=["FBKM", "x" * 500_000]), NOW)
    assert len(story.headline) <= MAX_HEADLINE_CHARS and scopes == ["topic:Industrials", "ticker:FBKM"]
    assert len(faust_json.dumps(story.__dict__)) < 20_000
    assert parse_scored(scored(id="i" * (MAX_ID_CHARS + 1)), NOW).reason == "bad_id"
    assert parse_scored(scored(topic="T" * 300_000), NOW).reason == "wrong_type"
    long = {**story.__dict__, "headline": "\u503a" * 180_000}
    assert len(by_scope_story(long, NOW).headline) <= MAX_HEADLINE_CHARS
    assert by_scope_story({**story.__dict__, "id": "i" * 300_000}, NOW).reason == "bad_id"
    assert by_scope_story({**story.__dict__, "topic": "T" * 300_000}, NOW).reason == "wrong_type"
