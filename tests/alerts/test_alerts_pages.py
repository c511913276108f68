"""The anomaly page record: history in order, headlines with label and confidence (the console's case
page shows it, escaped: tests/unit/test_console.py)."""

from __future__ import annotations

import json

from alerts.pages import expired, record
from alerts.records import AnomalyEvent

HOSTILE = '<script>alert("x")</script> & Co'


def event(step: str, severity: str, end: str, score: float, samples: list[dict]) -> AnomalyEvent:
    return AnomalyEvent("a1b2", step, "negative_surge", "ticker:<ACME>", "2024-05-01T10:00:00.000Z", end,  # type: ignore[arg-type]
                        9.0, 0.4, score, severity, [s["id"] for s in samples], [s["headline"] for s in samples],  # type: ignore[arg-type]
                        samples)


def test_record_keeps_the_history_and_the_stories_once() -> None:
    first = [{"id": "s1", "headline": HOSTILE, "sentiment": "negative", "confidence": 0.91}]
    page = record(None, event("open", "warning", "2024-05-01T10:01:00.000Z", 6.0, first), 100.0)
    page = record(page, event("open", "warning", "2024-05-01T10:01:00.000Z", 6.0, first), 101.0)  # a replay
    more = [*first, {"id": "s2", "headline": "Acme CFO resigns", "sentiment": "negative", "confidence": None}]
    page = record(page, event("update", "critical", "2024-05-01T10:02:00.000Z", 20.0, more), 160.0)
    page = record(page, event("resolve", "critical", "2024-05-01T10:05:00.000Z", 0.5, []), 400.0)
    assert [(h["event"], h["severity"]) for h in page["history"]] == [
        ("open", "warning"), ("update", "critical"), ("resolve", "critical")]
    assert [h["id"] for h in page["headlines"]] == ["s1", "s2"] and page["headlines"][0]["confidence"] == 0.91
    assert page["status"] == "resolved" and page["severity"] == "critical" and page["window_end"].endswith("10:05:00.000Z")
    assert json.loads(json.dumps(page)) == page


def test_older_events_without_samples_still_list_their_headlines() -> None:
    old = AnomalyEvent("a9", "open", "volume_spike", "topic:X", "2024-05-01T10:00:00.000Z",  # type: ignore[arg-type]
                       "2024-05-01T10:01:00.000Z", 9.0, 1.0, 9.0, "warning", ["s1"], ["Plain headline"])  # type: ignore[arg-type]
    page = record(None, old, 0.0)
    assert page["headlines"] == [{"id": "s1", "headline": "Plain headline", "sentiment": None, "confidence": None}]


def test_only_pages_resolved_before_the_cutoff_expire() -> None:
    samples = [{"id": "s1", "headline": "x", "sentiment": "negative", "confidence": 0.5}]
    open_page = record(None, event("open", "warning", "2024-05-01T10:01:00.000Z", 6.0, samples), 100.0)
    done = record(open_page, event("resolve", "warning", "2024-05-01T10:05:00.000Z", 0.5, []), 400.0)
    items = [("open", open_page), ("done", done), ("gone", None)]
    assert expired(items, cutoff=300.0) == [] and expired(items, cutoff=500.0) == ["done"]
