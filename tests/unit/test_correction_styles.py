"""A correction keeps its story's style, from the monitor's samples to the training file.

A social post an analyst corrects must train as a post: read as newswire, a model with style markers
would learn the tweet sets' conventions for newswire (docs/MODEL.md, "Styles"). So the style a story
arrived with (news.scored `style`) rides with the monitor's samples into the anomaly, the case keeps
which of its stories were posts, `labels.feedback` says each correction's style,
`finsentry feedback export` writes it, and `finsentry train` reads a row's own style over its file's. A newswire story, or one from before
styles were kept, says none, and trains in the style of the file it is exported to.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from alerts.config import MonitorConfig
from alerts.engine import AnomalyEvent, ScopeMonitor, Story
from models.data import DataError, load_file, model_texts, styled
from models.evaluate import evaluate
from scheduler import Scheduler, SchedulerPolicy, parse_roster
from scheduler.cases import Case
from scheduler.feedback import feedback_records
from streams.agents.monitor import by_scope_story, parse_scored, scope_copy
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


def story(i: str, t: float, sentiment: str, style: str = "newswire") -> Story:
    """A story as the fan-out makes it of a news.scored record with this `style` (ingest always sets one)."""
    record = {"id": i, "headline": f"distinct headline {i} about the Vellmar lawsuit {t}", "sentiment": sentiment,
              "sentiment_score": {"negative": -0.7, "neutral": 0.0, "positive": 0.6}[sentiment],
              "published_at": datetime.fromtimestamp(1.7e9 + t, UTC).isoformat(), "confidence": 0.9, "topic": "Legal",
              "tickers": [], "style": style}
    parsed, _ = parse_scored(json.dumps(record).encode(), 1.7e9 + t)
    assert isinstance(parsed, Story), parsed
    return replace(parsed, published_at=t)


def surge_event() -> AnomalyEvent:
    """A negative surge in topic:Legal whose samples are half posts marked social, half newswire."""
    monitor = ScopeMonitor.new("topic:Legal", CONFIG)
    calm = [story(f"calm-{m}-{k}", m * W + 7 + 20 * k, "neutral" if k else "positive") for m in range(30) for k in range(2)]
    bad = [story(f"bad-{i}", 30 * W + 4 * i + 1, "negative", "social" if i % 2 else "newswire") for i in range(12)]
    events: list[AnomalyEvent] = []
    for s in [*calm, *bad]:
        events += monitor.observe(s)
    events += monitor.advance(32 * W + 10)
    opened = [e for e in events if e.event == "open" and e.kind == "negative_surge"]
    assert opened, [(e.kind, e.event) for e in events]
    return opened[0]


def test_a_posts_copy_carries_its_style_and_a_newswire_copy_is_as_before_styles():
    base = {"id": "p-1", "headline": "Vellmar sued by regulators", "sentiment": "negative", "sentiment_score": -0.8,
            "published_at": "2026-03-02T09:59:00Z", "confidence": 0.9, "topic": "Legal", "tickers": []}
    now = NOW.timestamp()
    post, _ = parse_scored(json.dumps({**base, "style": "social"}).encode(), now)
    assert post.style == "social" and scope_copy(post)["style"] == "social"
    assert by_scope_story(json.loads(json.dumps(scope_copy(post))), now) == post
    for other in ("newswire", "blog", 7, None):  # newswire, a foreign writer's value, a record from before styles
        parsed, _ = parse_scored(json.dumps({**base, "style": other}).encode(), now)
        assert parsed.style is None and "style" not in scope_copy(parsed)  # the copy a monitor before styles reads
        assert by_scope_story(json.loads(json.dumps(scope_copy(parsed))), now) == parsed
    bad_copy = by_scope_story({**scope_copy(post), "style": "blog"}, now)
    assert getattr(bad_copy, "reason", None) == "wrong_type"


def test_the_anomaly_samples_say_which_stories_were_posts():
    event = surge_event()
    styles = {s["id"]: s["style"] for s in event.samples}
    assert styles and set(styles.values()) == {"social", None}
    assert all(styles[f"bad-{i}"] == ("social" if i % 2 else None) for i in range(12) if f"bad-{i}" in styles)
    assert AnomalyEvent.from_json(json.loads(json.dumps(event.to_json()))).samples == event.samples
    with pytest.raises(ValueError, match="samples"):
        AnomalyEvent.from_json({**event.to_json(), "samples": [{**event.samples[0], "style": 7}]})


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
    assert {r["id"]: r.get("style") for r in records} == {social[0]: "social", wire[0]: None}

    exported = export_rows([Record(0, n, r) for n, r in enumerate(records)])
    assert [row.get("style") for row in exported.rows] == ["social", None]
    out = tmp_path / "feedback.jsonl"
    write_rows(exported.rows, out)
    examples = styled(out, load_file(out), social_files=[])  # a run with style markers, the file not named social
    assert [ex.style for ex in examples] == ["social", "newswire"]
    assert model_texts(examples)[0].startswith("tweet: ") and model_texts(examples)[1].startswith("news: ")
    assert [ex.style for ex in styled(out, load_file(out), social_files=[str(out)])] == ["social", "social"]
    assert [ex.style for ex in styled(out, load_file(out), social_files=None)] == [None, None]  # no markers: as read


def test_stories_from_before_styles_say_none_and_a_later_update_teaches_the_case():
    event = surge_event()
    old_samples = [{k: v for k, v in s.items() if k != "style"} for s in event.samples]  # a monitor before styles
    sched = Scheduler(ROSTER, SchedulerPolicy())
    sched.on_anomaly({**event.to_json(), "samples": old_samples}, NOW)
    case = sched.case(f"case-{event.anomaly_id}")
    assert "social_ids" not in case  # left out when empty, so older stored cases read unchanged
    assert Case.from_dict(case).social_ids == []
    post = next(s["id"] for s in event.samples if s["style"] == "social")
    sched.on_action({"action": "ack", "case_id": case["case_id"], "analyst": "hana", "action_id": "a1"}, NOW)
    [labelled] = sched.on_action({"action": "label", "case_id": case["case_id"], "analyst": "hana", "action_id": "a2",
                                  "labels": [{"id": post, "sentiment": "neutral"}]}, NOW)
    assert "style" not in feedback_records(labelled, sched.case(case["case_id"]))[0]  # unknown: the file's style

    # The same evidence again, now with styles (a new monitor's update): nothing new to announce, but
    # the case learns which of the stories it holds were posts.
    sched.on_anomaly({**replace(event, event="update").to_json()}, NOW + timedelta(minutes=1))
    case = sched.case(f"case-{event.anomaly_id}")
    assert sorted(case["social_ids"]) == sorted(s["id"] for s in event.samples if s["style"] == "social")
    [again] = sched.on_action({"action": "label", "case_id": case["case_id"], "analyst": "hana", "action_id": "a3",
                               "labels": [{"id": post, "sentiment": "neutral"}]}, NOW + timedelta(minutes=2))
    assert feedback_records(again, sched.case(case["case_id"]))[0]["style"] == "social"


def test_an_update_adds_the_styles_of_its_new_stories():
    event = surge_event()
    sched = Scheduler(ROSTER, SchedulerPolicy())
    first = replace(event, sample_ids=event.sample_ids[:1], headlines=event.headlines[:1], samples=event.samples[:1])
    sched.on_anomaly(first.to_json(), NOW)
    sched.on_anomaly(replace(event, event="update").to_json(), NOW + timedelta(minutes=1))
    case = sched.case(f"case-{event.anomaly_id}")
    assert sorted(case["social_ids"]) == sorted(s["id"] for s in event.samples if s["style"] == "social")


def test_a_training_file_may_name_each_rows_style_and_a_wrong_one_stops_only_a_run_that_reads_styles(tmp_path: Path):
    good = tmp_path / "mixed.csv"
    good.write_text("text,sentiment,Style\nVellmar beats estimates,positive,Social\nVellmar beats estimates,positive,\n"
                    "Ostrava Steel cuts guidance,negative,newswire\n")
    examples = load_file(good)
    assert [ex.style for ex in styled(good, examples, social_files=[str(good)])] == ["social", "social", "newswire"]
    assert [ex.style for ex in styled(good, examples, social_files=[])] == ["social", "newswire", "newswire"]
    other = tmp_path / "other.csv"  # a `style` column that means something else
    other.write_text("text,sentiment,style\nVellmar beats estimates,positive,blog\n")
    assert [ex.style for ex in styled(other, load_file(other), social_files=None)] == [None]  # no markers: unread
    with pytest.raises(DataError, match=r"other.csv: row 1: 'style' is 'blog'; use newswire or social"):
        styled(other, load_file(other), social_files=[])


def test_the_export_skips_a_foreign_style_with_its_reason():
    value = {"id": "x-1", "text": "Vellmar sued", "sentiment": "negative", "style": "blog", "case_id": "case-x",
             "analyst": "hana", "at": NOW.isoformat()}
    result = export_rows([Record(0, 0, value)])
    assert result.rows == [] and list(result.skipped) == ["style not one of newswire, social"]


def test_evaluate_reads_each_rows_own_style_only_with_a_model_that_reads_styles(tmp_path: Path, monkeypatch):
    import models.evaluate as evaluation

    seen: list[list] = []

    def fake_logits(model_path, texts, variant, device, progress, info, styles):
        seen.append(list(styles))
        info["reads_styles"] = (model_path / "card.json").is_file() and "style_models" in (model_path / "card.json").read_text()
        labels = evaluation.labels_of(model_path)
        return labels, np.zeros((len(texts), len(labels.topics))), np.zeros((len(texts), len(labels.sentiments)))

    monkeypatch.setattr(evaluation, "logits_for", fake_logits)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("text,sentiment,style\nVellmar beats,positive,social\nOstrava cuts guidance,negative,\n")
    shipped = Path(__file__).resolve().parents[2] / "models" / "default"  # newswire with markers, a social model
    report = evaluate(shipped, [str(mixed)], progress=False)
    assert seen[-1] == ["social", "newswire"] and report["styles"] == {str(mixed): "by row"}
    plain = shipped / json.loads((shipped / "card.json").read_text())["style_models"]["social"]  # reads all alike
    odd = tmp_path / "odd.csv"
    odd.write_text("text,sentiment,style\nVellmar beats,positive,blog\n")
    evaluate(plain, [str(odd)], progress=False)  # not a style this model could read: not checked
    assert seen[-1] == ["newswire"]
    with pytest.raises(DataError, match=r"odd.csv: row 1: 'style' is 'blog'"):
        evaluate(shipped, [str(odd)], progress=False)


def test_the_first_style_column_with_a_value_counts_and_a_json_value_is_named_as_written(tmp_path: Path):
    both = tmp_path / "both.jsonl"
    both.write_text('{"text": "Kestrel Air holds investor day", "sentiment": "neutral", "style": "", "Style": "social"}\n'
                    '{"text": "Kestrel Air cuts routes", "sentiment": "negative", "style": null, "STYLE": "Social"}\n'
                    '{"text": "Kestrel Air beats", "sentiment": "positive", "style": true}\n')
    with pytest.raises(DataError, match=r"both.jsonl: row 3: 'style' is 'true'"):
        styled(both, load_file(both), social_files=[])
    first_two = both.read_text().splitlines()[:2]
    both.write_text("\n".join(first_two) + "\n")
    assert [ex.style for ex in styled(both, load_file(both), social_files=[])] == ["social", "social"]


def test_the_export_reads_a_style_in_any_case_and_an_empty_one_as_none():
    def value(n: int, style: object) -> Record:
        return Record(0, n, {"id": f"x-{n}", "text": f"Vellmar item {n}", "sentiment": "negative", "style": style,
                             "case_id": "case-x", "analyst": "hana", "at": NOW.isoformat()})

    result = export_rows([value(0, " Social "), value(1, ""), value(2, "NEWSWIRE"), value(3, 7)])
    assert [row.get("style") for row in result.rows] == ["social", None, "newswire"]
    assert {reason: [r.offset for r in records] for reason, records in result.skipped.items()} == \
        {"style not one of newswire, social": [3]}


def test_classify_reads_a_rows_style_as_load_file_does():
    from streams.commands.model import _row_style

    assert _row_style({"text": "x", "style": "  ", "Style": " Social "}, "newswire") == ("social", None)
    assert _row_style({"text": "x", "style": None, "STYLE": "newswire"}, "social") == ("newswire", None)
    assert _row_style({"text": "x"}, "social") == ("social", None)
    assert _row_style({"text": "x", "style": 7}, "newswire") == ("newswire", 7)  # named in the warning
