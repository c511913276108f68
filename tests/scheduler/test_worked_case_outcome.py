"""A case an analyst acknowledged, back in the queue when the monitor resolves its anomaly, is not closed
`unattended` (which says no analyst saw it) but `unfinished`, naming who last acknowledged it."""

import json
from datetime import timedelta

import pytest
from scheduler_fixtures import MONDAY_10, action, anomaly, roster

from scheduler import Scheduler, SchedulerPolicy

MIN = timedelta(minutes=1)
MSFT = "ticker:MSFT"  # only alice qualifies (the Technology sector), so who holds what is plain
FULL = f"no qualified analyst for {MSFT} on shift has free capacity"


def only(current, analyst_id):
    """The roster with one of its analysts left."""
    return current.__class__({k: a for k, a in current.analysts.items() if k == analyst_id}, current.sectors)


def resolve(s, name, at):
    return s.on_anomaly(anomaly(name, scope=MSFT, event="resolve"), at)


def handed_back(s):
    """alice acknowledges `held` and hands it back while full, so `queued` takes her slot and it waits."""
    for name in ("held", "other", "queued"):
        s.on_anomaly(anomaly(name, scope=MSFT), MONDAY_10)
    s.on_action(action("ack", "case-held", "alice", "k1"), MONDAY_10 + MIN)
    s.on_action(action("reassign", "case-held", "alice", "r1"), MONDAY_10 + 2 * MIN)
    return MONDAY_10 + 3 * MIN, FULL


def left_the_roster(s):
    s.on_anomaly(anomaly("held", scope=MSFT), MONDAY_10)
    s.on_action(action("ack", "case-held", "alice", "k1"), MONDAY_10 + MIN)
    s.set_roster(only(s.roster, "bob"), MONDAY_10 + 2 * MIN)  # bob has no Technology skill
    return MONDAY_10 + 3 * MIN, f"no qualified analyst: nobody on the roster has a skill for {MSFT}"


def went_home_past_the_resolve_sla(s):
    four_pm = MONDAY_10.replace(hour=16)  # alice's shift ends at 17:00 London; a warning's resolve SLA is 4 h
    s.on_anomaly(anomaly("held", scope=MSFT), four_pm)
    s.on_action(action("ack", "case-held", "alice", "k1"), four_pm + MIN)
    s.tick(four_pm + 4 * 60 * MIN + MIN)
    return four_pm + 4 * 60 * MIN + 2 * MIN, f"no qualified analyst for {MSFT} is on shift"


@pytest.mark.parametrize("back_to_the_queue", [handed_back, left_the_roster, went_home_past_the_resolve_sla])
def test_an_acknowledged_case_resolved_by_the_monitor_while_it_waits_is_unfinished_and_names_the_analyst(
    back_to_the_queue,
):
    s = Scheduler(roster(), SchedulerPolicy())
    at, unserved = back_to_the_queue(s)
    assert s.case("case-held")["status"] == "waiting"
    [closed] = resolve(s, "held", at)
    reason = f"the monitor resolved the anomaly while the case waited for its next analyst (last acknowledged by alice; {unserved})"
    assert (closed["event"], closed["outcome"], closed["reason"]) == ("auto_resolved", "unfinished", reason)
    case = s.case("case-held")
    assert (case["status"], case["outcome"], case["reason"]) == ("auto_resolved", "unfinished", reason)
    assert case["acknowledged_by"] == ["alice"]


def test_the_reason_names_the_last_of_several_analysts_who_acknowledged_it():
    s = Scheduler(roster(), SchedulerPolicy())
    s.on_anomaly(anomaly("held", scope="topic:Macro"), MONDAY_10)  # bob, the Macro expert
    s.on_action(action("ack", "case-held", "bob", "k1"), MONDAY_10 + MIN)
    s.on_action(action("reassign", "case-held", "bob", "r1", to="alice"), MONDAY_10 + 2 * MIN)
    s.on_action(action("ack", "case-held", "alice", "k2"), MONDAY_10 + 3 * MIN)
    s.on_action(action("reassign", "case-held", "alice", "r2", to="bob"), MONDAY_10 + 4 * MIN)
    s.on_action(action("ack", "case-held", "bob", "k3"), MONDAY_10 + 5 * MIN)
    assert s.case("case-held")["acknowledged_by"] == ["alice", "bob"]  # each once, the latest last
    s.set_roster(only(s.roster, "nina"), MONDAY_10 + 6 * MIN)  # nobody left with a Macro skill
    [closed] = s.on_anomaly(anomaly("held", scope="topic:Macro", event="resolve"), MONDAY_10 + 7 * MIN)
    assert closed["outcome"] == "unfinished" and "(last acknowledged by bob; no qualified analyst:" in closed["reason"]


def test_a_case_assigned_but_never_acknowledged_then_escalated_away_stays_unattended():
    s = Scheduler(roster(), SchedulerPolicy())
    late = MONDAY_10.replace(hour=16, minute=55)  # alice goes home at 17:00 without acknowledging it
    s.on_anomaly(anomaly("held", scope=MSFT, severity="critical"), late)
    assert s.case("case-held")["analyst"] == "alice"
    s.tick(late + 10 * MIN)  # past the 10-minute acknowledge SLA: taken off her, and nobody is on shift
    assert s.case("case-held")["status"] == "waiting"
    [closed] = resolve(s, "held", late + 15 * MIN)
    assert closed["outcome"] == "unattended"
    assert closed["reason"] == f"the monitor resolved the anomaly before an analyst took the case (no qualified analyst for {MSFT} is on shift)"
    assert "acknowledged_by" not in s.case("case-held")


def test_an_unfinished_close_is_reviewed_and_retained_with_the_routine_closes():
    s = Scheduler(roster(), SchedulerPolicy(retain_closed_count=1))
    s.on_anomaly(anomaly("unseen", scope="topic:Credit", severity="critical"), MONDAY_10 - 10 * MIN)  # nobody has Credit
    s.on_anomaly(anomaly("unseen", scope="topic:Credit", severity="critical", event="resolve"), MONDAY_10 - 5 * MIN)
    at, _ = handed_back(s)
    resolve(s, "held", at)
    listed = [(c["case_id"], c["outcome"]) for c in s.machine_closed()]
    assert listed == [("case-unseen", "unattended"), ("case-held", "unfinished")]  # what nobody saw first
    s.on_anomaly(anomaly("info", severity="info"), at + MIN)  # a routine close, the newest of its group
    s.tick(at + 2 * MIN)
    assert s.case("case-held") is None and s.case("case-info") is not None and s.case("case-unseen") is not None


def test_a_state_saved_before_the_field_existed_loads():
    s = Scheduler(roster(), SchedulerPolicy())
    handed_back(s)
    s.on_anomaly(anomaly("acked", scope="topic:Macro"), MONDAY_10)
    s.on_action(action("ack", "case-acked", "bob", "k2"), MONDAY_10 + MIN)
    stored = json.loads(json.dumps(s.to_dict()))
    assert "acknowledged_by" not in stored["cases"]["case-queued"]  # left out when empty: nothing rewritten
    for record in stored["cases"].values():
        record.pop("acknowledged_by", None)  # as the release before it wrote them
    restored = Scheduler.from_dict(s.roster, SchedulerPolicy(), stored)
    assert "acknowledged_by" not in restored.case("case-held")  # it waits: who acknowledged it is lost
    assert restored.to_dict()["cases"]["case-queued"] == stored["cases"]["case-queued"]
    # a case acknowledged at the upgrade was acknowledged by its holder: handed back, it is not unattended
    assert restored.case("case-acked")["acknowledged_by"] == ["bob"]
    restored.set_roster(only(s.roster, "alice"), MONDAY_10 + 2 * MIN)  # bob leaves; alice is full
    [closed] = restored.on_anomaly(anomaly("acked", scope="topic:Macro", event="resolve"), MONDAY_10 + 3 * MIN)
    assert closed["outcome"] == "unfinished" and "last acknowledged by bob" in closed["reason"]
    [unattended] = resolve(restored, "held", MONDAY_10 + 3 * MIN)
    assert unattended["outcome"] == "unattended"


def test_reopening_forgets_who_acknowledged_it():
    s = Scheduler(roster(), SchedulerPolicy())
    at, _ = handed_back(s)
    assert resolve(s, "held", at)[0]["outcome"] == "unfinished"
    s.on_action(action("reopen", "case-held", "bob", "o1"), at + MIN)  # alice is full: it waits
    case = s.case("case-held")
    assert case["status"] == "waiting" and "acknowledged_by" not in case
    [closed] = resolve(s, "held", at + 2 * MIN)  # nobody acknowledged it since the reopening
    assert closed["outcome"] == "unattended" and closed["reason"].startswith("the monitor resolved the anomaly before")
