"""A correction keeps its story's style, from the monitor's samples to the training file.

A social post an analyst corrects must train as a post: read as newswire, a model with style markers
would learn the tweet sets' conventions for newswire (docs/MODEL.md, "Styles"). So the style a story
arrived with (news.scored `style`) rides with the monitor's samples into the anomaly, the case keeps
which of its stories were posts, `labels.feedback` says each correction's style,
`finsentry feedback export` writes it, and `finsentry train` reads a row's own style over its file's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.config import MonitorConfig
from alerts.engine import AnomalyEvent, ScopeMonitor, Story
from models.data import DataError, load_file, model_texts, styled
from scheduler import Scheduler, SchedulerPolicy, parse_roster
from scheduler.cases import Case
from scheduler.feedback import feedback_records
from streams.agents.monitor import by_scope_story, parse_scored
from streams.commands.feedback import Record, export_rows, write_rows

W = 60.0
CONFIG = MonitorConfig(window_seconds=W, allowed_lateness=5.0, warmup_windows=10, quiet_windows=2,
                       cooldown_seconds=300.0)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ROSTER = parse_roster("""\
analysts:
  - id: hana
    name: Hana Lindqvist
    capacity: 3
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {topics: {Legal: 5}}
    notify: https://hooks.example.com/hana
    token_env: HANA_TOKEN
""", "roster.yaml")


def story(i: str, t: float, sentiment: str, style: str | None = None) -> Story:
    score = {"negative": -0.7, "neutral": 0.0, "positive": 0.6}[sentiment]
    return Story(i, f"distinct headline {i} about the Vellmar lawsuit {t}", sentiment, score, t,  # type: ignore[arg-type]
                 0.9, "Legal", style)


def surge_event() -> AnomalyEvent:
    """A negative surge in topic:Legal whose samples are half posts marked social, half newswire."""
    monitor = ScopeMonitor.new("topic:Legal", CONFIG)
    calm = [story(f"calm-{m}-{k}", m * W + 7 + 20 * k, "neutral" if k else "positive") for m in range(30) for k in range(2)]
    bad = [story(f"bad-{i}", 30 * W + 4 * i + 1, "negative", "social" if i % 2 else None) for i in range(12)]
    events: list[AnomalyEvent] = []
    for s in [*calm, *bad]:
        events += monitor.observe(s)
    events += monitor.advance(32 * W + 10)
    opened = [e for e in events if e.event == "open" and e.kind == "negative_surge"]
    assert opened, [(e.kind, e.event) for e in events]
    return opened[0]


def test_news_scored_style_reaches_the_by_scope_copy_and_a_foreign_style_reads_as_newswire():
    base = {"id": "p-1", "headline": "Vellmar sued by regulators", "sentiment": "negative", "sentiment_score": -0.8,
            "published_at": "2026-03-02T09:59:00Z", "confidence": 0.9, "topic": "Legal", "tickers": []}
    now = NOW.timestamp()
    post, _ = parse_scored(json.dumps({**base, "style": "social"}).encode(), now)
    assert post.style == "social"
    assert by_scope_story(json.loads(json.dumps(post.__dict__)), now) == post
    for foreign in ("blog", 7, None):
        parsed, _ = parse_scored(json.dumps({**base, "style": foreign}).encode(), now)
        assert parsed.style is None  # read as newswire, the story kept
    bad_copy = by_scope_story({**json.loads(json.dumps(post.__dict__)), "style": "blog"}, now)
    assert getattr(bad_copy, "reason", None) == "wrong_type"


def test_the_anomaly_samples_say_which_stories_were_posts():
    event = surge_event()
    styles = {s["id"]: s["style"] for s in event.samples}
    assert styles and set(styles.values()) == {"social", None}
    assert all(styles[f"bad-{i}"] == ("social" if i % 2 else None) for i in range(12) if f"bad-{i}" in styles)
    assert AnomalyEvent.from_json(json.loads(json.dumps(event.to_json()))).samples == event.samples
    with pytest.raises(ValueError, match="samples"):
        AnomalyEvent.from_json({**event.to_json(), "samples": [{**event.samples[0], "style": ["social"]}]})


def test_a_corrected_post_is_exported_and_trained_as_a_post(tmp_path: Path):
    event = surge_event()
    sched = Scheduler(ROSTER, SchedulerPolicy())
    sched.on_anomaly(event.to_json(), NOW)
    case = sched.case(f"case-{event.anomaly_id}")
    social = [s["id"] for s in event.samples if s["style"] == "social"]
    wire = [s["id"] for s in event.samples if s["style"] is None]
    assert sorted(case["social_ids"]) == sorted(social)
    assert Case.from_dict(json.loads(json.dumps(case))).social_ids == case["social_ids"]  # as the changelog keeps it

    sched.on_action({"action": "ack", "case_id": case["case_id"], "analyst": "hana", "action_id": "a1"},
                    NOW + timedelta(minutes=1))
    [resolved] = sched.on_action({"action": "resolve", "case_id": case["case_id"], "analyst": "hana", "action_id": "a2",
                                  "labels": [{"id": social[0], "sentiment": "neutral"},
                                             {"id": wire[0], "topic": "Legal", "sentiment": "negative"}]},
                                 NOW + timedelta(minutes=2))
    records = feedback_records(resolved, sched.case(case["case_id"]))
    assert {r["id"]: r["style"] for r in records} == {social[0]: "social", wire[0]: "newswire"}

    exported = export_rows([Record(0, n, r) for n, r in enumerate(records)])
    assert [row["style"] for row in exported.rows] == ["social", "newswire"]
    out = tmp_path / "feedback.jsonl"
    write_rows(exported.rows, out)
    examples = styled(out, load_file(out), social_files=[])  # a run with style markers, the file not named social
    assert [ex.style for ex in examples] == ["social", "newswire"]
    assert model_texts(examples)[0].startswith("tweet: ") and model_texts(examples)[1].startswith("news: ")
    assert [ex.style for ex in styled(out, load_file(out), social_files=None)] == [None, None]  # no markers: as read


def test_a_case_stored_before_styles_reads_its_stories_as_newswire():
    event = surge_event()
    sched = Scheduler(ROSTER, SchedulerPolicy())
    sched.on_anomaly({**event.to_json(), "samples": []}, NOW)  # an anomaly from before samples had styles
    case = sched.case(f"case-{event.anomaly_id}")
    assert "social_ids" not in case  # left out when empty, so older stored cases read unchanged
    assert Case.from_dict(case).social_ids == []


def test_an_update_adds_the_styles_of_its_new_stories():
    event = surge_event()
    sched = Scheduler(ROSTER, SchedulerPolicy())
    first = replace(event, sample_ids=event.sample_ids[:1], headlines=event.headlines[:1], samples=event.samples[:1])
    sched.on_anomaly(first.to_json(), NOW)
    sched.on_anomaly(replace(event, event="update").to_json(), NOW + timedelta(minutes=1))
    case = sched.case(f"case-{event.anomaly_id}")
    assert sorted(case["social_ids"]) == sorted(s["id"] for s in event.samples if s["style"] == "social")


def test_a_training_file_may_name_each_rows_style_and_a_wrong_one_is_refused(tmp_path: Path):
    good = tmp_path / "mixed.csv"
    good.write_text("text,sentiment,style\nVellmar beats estimates,positive,Social\nVellmar beats estimates,positive,\n"
                    "Ostrava Steel cuts guidance,negative,newswire\n")
    examples = load_file(good)
    assert [ex.row_style for ex in examples] == ["social", None, "newswire"]
    assert [ex.style for ex in styled(good, examples, social_files=[str(good)])] == ["social", "social", "newswire"]
    assert [ex.style for ex in styled(good, examples, social_files=[])] == ["social", "newswire", "newswire"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,sentiment,style\nVellmar beats estimates,positive,blog\n")
    with pytest.raises(DataError, match=r"bad.csv: row 1: 'style' is 'blog'; use newswire or social"):
        load_file(bad)


def test_the_export_skips_a_foreign_style_with_its_reason():
    value = {"id": "x-1", "text": "Vellmar sued", "sentiment": "negative", "style": "blog", "case_id": "case-x",
             "analyst": "hana", "at": NOW.isoformat()}
    result = export_rows([Record(0, 0, value)])
    assert result.rows == [] and list(result.skipped) == ["style not one of newswire, social"]
