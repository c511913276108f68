"""The scheduler agent's and analyst API's pure parts: label checks, feedback records, gauges,
auth, the failure limiter, request bodies, case webhook payloads and the feedback export format."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.data import load_file
from scheduler import Scheduler, SchedulerPolicy, parse_roster
from scheduler.engine import ACTIONS
from scheduler.feedback import feedback_records, label_problem
from scheduler.tokens import hash_token
from scheduler.workload import workload
from streams.agents.case_webhooks import case_payload
from streams.commands.feedback import training_rows
from streams.commands.receiver import alert_lines
from streams.views.cases import MAX_OUTCOME, VERB_FIELDS, FailureLimiter, action_from_body, bearer_person
from streams.views.http import BadRequest

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
ROSTER_TEXT = f"""\
analysts:
  - id: alice
    name: Alice
    capacity: 2
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Earnings: 5}}}}
    notify: https://hooks.example.com/alice
    token_hash: {hash_token("alice-secret", n=16)}
  - id: bob
    name: Bob
    capacity: 1
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Macro: 5}}}}
    notify: https://hooks.example.com/bob
    token_hash: {hash_token("bob-secret", n=16)}
"""
ROSTER = parse_roster(ROSTER_TEXT)


def anomaly(aid: str, scope: str = "topic:Earnings", severity: str = "warning") -> dict:
    return {"anomaly_id": aid, "scope": scope, "severity": severity, "kind": "negative_surge",
            "sample_ids": [f"{aid}-1", f"{aid}-2"], "headlines": [f"first {aid}", f"second {aid}"]}


def assigned_case() -> tuple[Scheduler, dict]:
    sched = Scheduler(ROSTER, SchedulerPolicy())
    sched.on_anomaly(anomaly("a1"), NOW)
    case = sched.case("case-a1")
    assert case is not None and case["analyst"] == "alice"
    return sched, case


def test_labels_must_name_a_headline_of_the_case_and_a_known_sentiment() -> None:
    _, case = assigned_case()
    assert label_problem(case, None) is None
    assert label_problem(case, [{"id": "a1-2", "sentiment": "negative"}, {"id": "a1-1", "topic": "Earnings"}]) is None
    assert "not a headline" in label_problem(case, [{"id": "other", "topic": "Earnings"}])
    assert "sentiment" in label_problem(case, [{"id": "a1-1", "sentiment": "bearish-ish"}])
    assert "corrects nothing" in label_problem(case, [{"id": "a1-1"}])
    assert "list" in label_problem(case, {"id": "a1-1"})
    # Only the model's own topics: anything else would become a new class in training.
    topics = frozenset({"Earnings", "Macro"})
    assert label_problem(case, [{"id": "a1-1", "topic": "Earnings"}], topics) is None
    assert "one of the model's topics" in label_problem(case, [{"id": "a1-1", "topic": "PWNED-NEW-CLASS"}], topics)
    assert "one of the model's topics" in label_problem(case, [{"id": "a1-1", "topic": "E" * 10_000}], topics)
    assert len(label_problem(case, [{"id": "a1-1", "topic": "E" * 10_000}], topics)) < 1_000


def test_a_resolve_with_labels_becomes_feedback_with_the_headline_text() -> None:
    sched, _ = assigned_case()
    [event] = sched.on_action({"action": "resolve", "case_id": "case-a1", "analyst": "alice", "action_id": "x1",
                               "labels": [{"id": "a1-2", "sentiment": "negative"}, {"id": "nope", "topic": "M&A"}]},
                              NOW + timedelta(minutes=3))
    records = feedback_records(event, sched.case("case-a1"))
    assert records == [{"id": "a1-2", "text": "second a1", "sentiment": "negative", "case_id": "case-a1",
                        "analyst": "alice", "at": event["at"]}]


def test_the_export_keeps_every_field_a_headline_was_corrected_in() -> None:
    sched, _ = assigned_case()
    records = []
    for n, label in enumerate([{"id": "a1-1", "sentiment": "negative"}, {"id": "a1-1", "topic": "Macro"},
                               {"id": "a1-2", "topic": "Earnings"}, {"id": "a1-2", "topic": "Macro"}]):
        [event] = sched.on_action({"action": "label", "case_id": "case-a1", "analyst": "alice",
                                   "action_id": f"l{n}", "labels": [label]}, NOW + timedelta(minutes=n))
        records += feedback_records(event, sched.case("case-a1"))
    assert training_rows(records) == [{"text": "first a1", "topic": "Macro", "sentiment": "negative"},
                                      {"text": "second a1", "topic": "Macro", "sentiment": None}]


def test_workload_counts_held_waiting_and_cases_past_their_ack_sla_from_creation() -> None:
    sched = Scheduler(ROSTER, SchedulerPolicy())
    sched.on_anomaly(anomaly("m1", "topic:Macro"), NOW)
    sched.on_anomaly(anomaly("m2", "topic:Macro"), NOW)  # bob's capacity is 1: this one waits
    sched.on_anomaly(anomaly("e1"), NOW)
    load = workload(sched.to_dict(), ROSTER, SchedulerPolicy(), NOW + timedelta(minutes=1))
    assert load.open_by_analyst == {"alice": 1, "bob": 1}
    assert load.utilisation == {"alice": 0.5, "bob": 1.0}
    assert (load.waiting, load.over_sla) == (1, 0)
    sched.tick(NOW + timedelta(minutes=31))  # escalation moves ack_due on; the breach still counts
    late = workload(sched.to_dict(), ROSTER, SchedulerPolicy(), NOW + timedelta(minutes=31))
    assert late.over_sla == 3


def test_bearer_tokens_map_to_their_analyst_and_nothing_else() -> None:
    assert bearer_person(ROSTER, "Bearer alice-secret").id == "alice"
    assert bearer_person(ROSTER, "bearer bob-secret").id == "bob"
    for header in (None, "", "Bearer", "Bearer ", "Basic alice-secret", "Bearer alice-secre", "alice-secret"):
        assert bearer_person(ROSTER, header) is None


def test_failure_limiter_blocks_an_address_for_the_rest_of_its_window() -> None:
    limiter = FailureLimiter(limit=3, window=60.0)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after("10.0.0.1", t) is None
        limiter.fail("10.0.0.1", t)
    assert limiter.retry_after("10.0.0.1", 3.0) == pytest.approx(57.0)
    assert limiter.retry_after("10.0.0.2", 3.0) is None
    assert limiter.retry_after("10.0.0.1", 60.5) is None  # the first failure has left the window


def test_failure_limiter_memory_is_bounded() -> None:
    limiter = FailureLimiter(limit=1, window=60.0, max_clients=2)
    for i in range(5):
        limiter.fail(f"10.0.0.{i}", 0.0)
    assert len(limiter._failures) == 2


def test_request_bodies_take_only_their_verb_fields() -> None:
    action = action_from_body("resolve", "case-a1", "alice", b'{"outcome": "ok", "labels": []}')
    assert action["action"] == "resolve" and action["analyst"] == "alice" and len(action["action_id"]) == 32
    assert action_from_body("ack", "case-a1", "alice", b"")["action"] == "ack"
    assert action_from_body("reopen", "case-a1", "alice", b"{}")["action"] == "reopen"
    assert set(VERB_FIELDS) <= set(ACTIONS)  # the API's verbs are the scheduler's actions
    for verb, body in (("ack", b'{"to": "bob"}'), ("reassign", b"[1]"), ("resolve", b"{nope"),
                       ("resolve", b'{"analyst": "bob"}'), ("reopen", b'{"to": "bob"}')):
        with pytest.raises(BadRequest):
            action_from_body(verb, "case-a1", "alice", body)
    # A 63 KB outcome, fourteen times over, filled the scheduler's state record past 1 MB (issue 17).
    with pytest.raises(BadRequest, match=f"at most {MAX_OUTCOME}"):
        action_from_body("resolve", "case-a1", "alice", json.dumps({"outcome": "x" * (MAX_OUTCOME + 1)}).encode())


def test_case_webhook_payload_is_alertmanager_v4_naming_case_and_analyst() -> None:
    sched = Scheduler(ROSTER, SchedulerPolicy())
    assigned = next(e for e in sched.on_anomaly(anomaly("a1"), NOW) if e["event"] == "assigned")
    payload = case_payload(assigned)
    assert payload["version"] == "4" and payload["receiver"] == "analyst-alice"
    [alert] = payload["alerts"]
    assert alert["labels"]["alertname"] == "case_assigned" and alert["labels"]["case_id"] == "case-a1"
    assert "assigned to you" in alert["annotations"]["summary"]
    # `finsentry receiver` prints its severity from the annotations, where a case alert keeps it ("?" before)
    [line] = alert_lines(payload)
    assert line.startswith(f"firing case_assigned {alert['labels']['scope']} {assigned['severity']} ")
    # the analyst's link opens the anomaly's page (a browser: the case in the console); it was "" for cases
    linked = case_payload(assigned, "https://finsentry.example.com/")
    assert linked["externalURL"] == "https://finsentry.example.com/"
    assert linked["alerts"][0]["generatorURL"] == "https://finsentry.example.com/anomalies/a1"


def test_exported_feedback_is_read_by_the_training_loader(tmp_path: Path) -> None:
    records = [{"id": "s1", "text": "Acme cuts guidance", "sentiment": "negative", "case_id": "c", "analyst": "a"},
               {"id": "s2", "text": "Beta wins contract", "topic": "M&A"},
               {"id": "s1", "text": "Acme cuts guidance", "topic": "Earnings", "sentiment": "negative"},
               {"id": "s3", "text": "no label"}, "garbage",
               # each stopped the export with a traceback, or reached the training file unchecked:
               {"id": "s4", "text": "Fabrikam \ud800 recall", "sentiment": "negative"},
               {"id": "s5", "text": "Contoso merger", "topic": [1, 2]}, {"id": "s6", "text": "Adatum", "sentiment": math.nan}]
    rows = training_rows(records)
    path = tmp_path / "feedback.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = load_file(path)
    assert [(e.text, e.topic, e.sentiment) for e in examples] == [
        ("Acme cuts guidance", "Earnings", "negative"), ("Beta wins contract", "M&A", None)]


def test_gauges_drop_the_series_of_an_analyst_who_left_the_roster() -> None:
    from streams import metrics
    from streams.agents.schedule import publish_gauges

    def analysts(gauge) -> set[str]:
        return {s.labels["analyst"] for m in gauge.collect() for s in m.samples}

    sched = Scheduler(ROSTER, SchedulerPolicy())
    sched.on_anomaly(anomaly("m1", "topic:Macro"), NOW)
    publish_gauges(sched, NOW)
    assert {"alice", "bob"} <= analysts(metrics.CASES_OPEN) and "bob" in analysts(metrics.ANALYST_UTILISATION)
    sched.set_roster(parse_roster(ROSTER_TEXT.split("  - id: bob")[0]), NOW + timedelta(minutes=1))
    publish_gauges(sched, NOW + timedelta(minutes=1))
    assert "bob" not in analysts(metrics.CASES_OPEN) | analysts(metrics.ANALYST_UTILISATION)
    assert "alice" in analysts(metrics.CASES_OPEN)


def test_acknowledgement_latency_counts_from_the_reopening() -> None:
    from streams import metrics
    from streams.agents.schedule import count_events

    def ack_sum() -> float:
        return next(s.value for m in metrics.ACK_SECONDS.collect() for s in m.samples if s.name.endswith("_sum"))

    sched = Scheduler(ROSTER, SchedulerPolicy())
    nine, three = NOW.replace(hour=9), NOW.replace(hour=15)
    sched.on_anomaly(anomaly("i1", severity="info"), nine)  # closed by the machine at 09:00
    sched.on_action({"action": "reopen", "case_id": "case-i1", "analyst": "bob", "action_id": "o1"}, three)
    events = sched.on_action({"action": "ack", "case_id": "case-i1", "analyst": "alice", "action_id": "k1"},
                             three + timedelta(minutes=3))
    before = ack_sum()
    count_events(sched, events)
    assert ack_sum() - before == 180  # not 6 h 3 min
