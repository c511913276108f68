"""A story with a body and no headline (feeds that carry only a description, CSV rows with only a
body column) is classified on its body's opening. The monitor kept its empty headline instead: every
such story had the same (empty) novelty fingerprint, so after the first they were all repeats and a
surge of them opened nothing; and the case an analyst reviewed showed no text, so a correction was
accepted and then exported as nothing."""

from __future__ import annotations

import json

from alerts.config import MonitorConfig
from alerts.engine import ScopeMonitor
from scheduler.feedback import label_problem
from streams.agents.monitor import parse_scored
from streams.validation import BODY_CHARS_READ, model_text

NOW = 1764479000.0
BODIES = [
    "Fabrikam said on Monday it would recall 40,000 space heaters after reports of overheating.",
    "Contoso shares fell 12% after the company withdrew its full-year guidance, citing weak orders.",
    "Northwind Traders missed analysts' estimates for a third straight quarter, its filing showed.",
]


def scored(story_id: str, body: str, headline: str = "") -> bytes:
    return json.dumps({"id": story_id, "headline": headline, "body": body, "sentiment": "negative",
                       "sentiment_score": -0.8, "published_at": "2025-11-30T05:00:00Z", "confidence": 0.9,
                       "topic": "Industrials", "tickers": ["FBKM"]}).encode()


def test_the_monitor_keeps_the_text_the_model_read() -> None:
    long_body = "Fabrikam " + "recall " * 200
    story, _ = parse_scored(scored("b1", long_body), NOW)
    assert story.headline == long_body[:BODY_CHARS_READ] == model_text(json.loads(scored("b1", long_body)))
    story, _ = parse_scored(scored("h1", BODIES[0], headline="Fabrikam recalls heaters"), NOW)
    assert story.headline == "Fabrikam recalls heaters"


def test_body_only_stories_are_each_novel() -> None:
    monitor = ScopeMonitor.new("ticker:FBKM", MonitorConfig())
    stories = [parse_scored(scored(f"b{i}", body), NOW)[0] for i, body in enumerate(BODIES)]
    assert [monitor.novelty.is_novel(s.published_at, s.headline) for s in stories] == [True, True, True]


def test_a_correction_of_a_story_without_text_is_refused_not_lost() -> None:
    # Cases recorded before this change hold "" for a body-only story: say so instead of accepting it.
    case = {"case_id": "case-x1", "sample_ids": ["s1", "s2"], "headlines": ["Contoso cuts outlook", ""]}
    assert label_problem(case, [{"id": "s1", "sentiment": "negative"}]) is None
    problem = label_problem(case, [{"id": "s2", "sentiment": "negative"}])
    assert problem is not None and "no text" in problem and "'s2'" in problem
