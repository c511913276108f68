"""The scheduler review of 2026-11-30: each test fails on the code the review read and passes on the fix."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scheduler_fixtures import ROSTER_YAML, action, anomaly, roster, settled, write_roster

import scheduler.roster as roster_module
from scheduler import ActionError, RosterError, RosterWatcher, Scheduler, SchedulerPolicy, Shift, parse_roster
from scheduler.cases import Case
from scheduler.roster import MAX_CAPACITY

ALICE_SHIFT = "Mon-Fri 08:00-17:00 Europe/London"



# ---- 1. time zones naming a tzdata folder; the watcher's stamp -----------------------------------


@pytest.mark.parametrize("zone", ["Europe", "America", "US", "Etc", "America/Argentina", "Europe/" + "x" * 300])
def test_a_zone_naming_a_folder_is_an_unknown_zone_at_its_line(zone):
    with pytest.raises(RosterError) as info:
        parse_roster(ROSTER_YAML.replace(ALICE_SHIFT, f"Mon-Fri 08:00-17:00 {zone}", 1), "roster.yaml")
    assert str(info.value) == f"roster.yaml:7: analysts[0].shifts[0]: unknown time zone {zone!r}"


def test_a_folder_zone_edited_in_is_reported_and_the_old_roster_kept(tmp_path):
    path = tmp_path / "roster.yaml"
    write_roster(path, ROSTER_YAML, 0)
    watcher = RosterWatcher(path, settle_seconds=0)
    write_roster(path, ROSTER_YAML.replace(ALICE_SHIFT, "Mon-Fri 08:00-17:00 Europe"), 10)
    assert settled(watcher) is None
    assert watcher.error is not None and watcher.error.field == "analysts[0].shifts[0]"
    assert watcher.roster.analysts["alice"].shifts[0].tz.key == "Europe/London"


def test_a_reload_that_fails_unexpectedly_is_reported_as_the_reload_error(tmp_path, monkeypatch):
    path = tmp_path / "roster.yaml"
    write_roster(path, ROSTER_YAML, 0)
    watcher = RosterWatcher(path, settle_seconds=0)
    kept = watcher.roster

    def broken(_path):
        raise LookupError("a parser bug")

    monkeypatch.setattr(roster_module, "load_roster", broken)
    write_roster(path, ROSTER_YAML.replace("capacity: 3", "capacity: 4"), 10)
    assert settled(watcher) is None
    assert watcher.roster is kept
    assert isinstance(watcher.error, RosterError) and "LookupError: a parser bug" in str(watcher.error)
    assert str(watcher.error).startswith(f"{path}:0: (file): ")


def test_a_reload_interrupted_before_judging_the_file_reads_it_again(tmp_path, monkeypatch):
    path = tmp_path / "roster.yaml"
    write_roster(path, ROSTER_YAML, 0)
    watcher = RosterWatcher(path, settle_seconds=0)
    real = roster_module.load_roster

    def interrupted(_path):
        raise KeyboardInterrupt

    monkeypatch.setattr(roster_module, "load_roster", interrupted)
    write_roster(path, ROSTER_YAML.replace("capacity: 3", "capacity: 4"), 10)
    with pytest.raises(KeyboardInterrupt):
        settled(watcher)
    monkeypatch.setattr(roster_module, "load_roster", real)
    reloaded = watcher.poll()  # the file is unchanged since, but it was never judged
    assert reloaded is not None and reloaded.analysts["nina"].capacity == 4


# ---- 3. capacity bounded, and never a plain ValueError --------------------------------------------


@pytest.mark.parametrize("value", ["1000000000", "9" * 5000, "0" * 5000 + "1001", "0"])
def test_capacity_outside_its_bound_is_a_roster_error_at_its_line(value):
    with pytest.raises(RosterError) as info:
        parse_roster(ROSTER_YAML.replace("capacity: 2", f"capacity: {value}", 1), "roster.yaml")
    assert (info.value.line, info.value.field) == (6, "analysts[0].capacity")
    assert f"expected an integer 1..{MAX_CAPACITY}" in str(info.value)
    assert len(str(info.value)) < 200  # one readable line, not the 5,000 digits


def test_capacity_at_its_bound_and_with_leading_zeros_is_read():
    assert roster(ROSTER_YAML.replace("capacity: 2", f"capacity: {MAX_CAPACITY}", 1)).analysts["alice"].capacity == (
        MAX_CAPACITY
    )
    assert roster(ROSTER_YAML.replace("capacity: 2", "capacity: '007'", 1)).analysts["alice"].capacity == 7


# ---- 4. a day range missing its end ----------------------------------------------------------------


@pytest.mark.parametrize("days", ["Mon-", "Mon-,Wed", "Sat,Sun-"])
def test_a_day_range_missing_its_end_is_refused(days):
    with pytest.raises(ValueError, match="days must be like Mon-Fri"):
        Shift.parse(f"{days} 08:00-17:00 UTC")
    with pytest.raises(RosterError) as info:
        parse_roster(ROSTER_YAML.replace(ALICE_SHIFT, f"{days} 08:00-17:00 Europe/London"), "roster.yaml")
    assert info.value.field == "analysts[0].shifts[0]" and repr(days) in str(info.value)


# ---- 5. a case that changes hands after its resolve SLA: the next holder's SLA is tracked -------------

EARLY_AND_LATE = """\
analysts:
  - id: petra
    name: Petra
    capacity: 2
    shifts: ["Mon-Fri 08:00-17:00 America/Chicago"]
    skills: {topics: {Earnings: 4}}
    notify: https://hooks.example.com/petra
    token_env: FINSENTRY_TOKEN_PETRA
  - id: quinn
    name: Quinn
    capacity: 2
    shifts: ["Mon-Fri 17:00-24:00 America/Chicago"]
    skills: {topics: {Earnings: 4}}
    notify: https://hooks.example.com/quinn
    token_env: FINSENTRY_TOKEN_QUINN
"""
FRIDAY_1650_CHICAGO = datetime(2024, 3, 8, 22, 50, tzinfo=UTC)  # CST: 16:50
MIN = timedelta(minutes=1)


def _ticks(s, start, end, step=MIN):
    """Every event of a tick each `step` from `start` (exclusive) to `end` (inclusive), with its time."""
    out, at = [], start
    while at < end:
        at += step
        out += [(at, e) for e in s.tick(at)]
    return out


def _stranded_then_taken_by_quinn():
    s = Scheduler(roster(EARLY_AND_LATE), SchedulerPolicy())
    s.on_anomaly(anomaly("late", severity="critical"), FRIDAY_1650_CHICAGO)
    s.on_action(action("ack", "case-late", "petra", "p1"), FRIDAY_1650_CHICAGO + MIN)
    moved = s.tick(FRIDAY_1650_CHICAGO + 61 * MIN)  # petra went home at 17:00 with it; its SLA passed
    assert [(e["event"], e.get("analyst")) for e in moved][-1] == ("assigned", "quinn")
    s.on_action(action("ack", "case-late", "quinn", "q1"), FRIDAY_1650_CHICAGO + 62 * MIN)
    return s


def test_the_next_holder_of_a_case_past_its_resolve_sla_is_escalated_to_once_their_window_passes():
    s = _stranded_then_taken_by_quinn()
    taken = FRIDAY_1650_CHICAGO + 61 * MIN
    assert s.case("case-late")["resolve_due"] == (taken + timedelta(hours=1)).isoformat()
    stored = json.loads(json.dumps(s.to_dict()))  # a restarted worker keeps quinn's window
    s = Scheduler.from_dict(s.roster, SchedulerPolicy(), stored)
    assert s.to_dict() == stored and stored["cases"]["case-late"]["resolve_from"] == taken.isoformat()
    events = _ticks(s, FRIDAY_1650_CHICAGO + 62 * MIN, FRIDAY_1650_CHICAGO + 4 * 60 * MIN)
    escalated = [(at, e) for at, e in events if e["event"] == "escalated"]
    assert [(at, e["analyst"], e["notify"]["analyst"]) for at, e in escalated] == [
        (taken + timedelta(hours=1), "quinn", "quinn")
    ]
    assert s.case("case-late")["escalations"] == 2  # petra's breach, then quinn's


def test_new_evidence_keeps_the_next_holders_resolve_window():
    s = _stranded_then_taken_by_quinn()
    later = FRIDAY_1650_CHICAGO + 70 * MIN
    s.on_anomaly(anomaly("late", severity="critical", event="update", sample_ids=["late-n2"],
                         headlines=["more on it"]), later)
    assert s.case("case-late")["resolve_due"] == (FRIDAY_1650_CHICAGO + 121 * MIN).isoformat()
    assert [e for e in s.tick(later + MIN) if e["event"] == "escalated"] == []


def test_a_case_reassigned_past_its_resolve_sla_gives_the_colleague_a_window_of_their_own():
    s = Scheduler(roster(EARLY_AND_LATE.replace("17:00-24:00", "08:00-24:00")), SchedulerPolicy())
    start = FRIDAY_1650_CHICAGO - 2 * 60 * MIN  # 14:50: both on shift
    s.on_anomaly(anomaly("slow", severity="critical"), start)
    holder = s.case("case-slow")["analyst"]
    colleague = ({"petra", "quinn"} - {holder}).pop()
    s.on_action(action("ack", "case-slow", holder, "a1"), start + MIN)
    assert [e["analyst"] for e in s.tick(start + 61 * MIN) if e["event"] == "escalated"] == [holder]
    s.on_action(action("reassign", "case-slow", holder, "a2", to=colleague), start + 62 * MIN)
    s.on_action(action("ack", "case-slow", colleague, "a3"), start + 63 * MIN)
    events = _ticks(s, start + 63 * MIN, start + 3 * 60 * MIN)
    assert [(at, e["analyst"]) for at, e in events if e["event"] == "escalated"] == [(start + 122 * MIN, colleague)]


def test_a_case_returned_within_its_resolve_sla_keeps_its_deadline():
    s = Scheduler(roster(EARLY_AND_LATE), SchedulerPolicy())
    s.on_anomaly(anomaly("early", severity="critical"), FRIDAY_1650_CHICAGO)
    due = s.case("case-early")["resolve_due"]
    s.on_action(action("ack", "case-early", "petra", "e1"), FRIDAY_1650_CHICAGO + MIN)
    s.on_action(action("reassign", "case-early", "petra", "e2"), FRIDAY_1650_CHICAGO + 5 * MIN)
    assert s.case("case-early")["resolve_due"] == due
    assert "resolve_from" not in s.case("case-early")  # stored records gain no field they do not need


# ---- 6. unattended closes stay listed and stored ahead of routine ones ------------------------------

MONDAY_NOON = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


def _unattended_critical_then_routine_closes(s, routine):
    s.on_anomaly(anomaly("unseen", scope="topic:Credit", severity="critical"), MONDAY_NOON)  # nobody has Credit
    s.on_anomaly(anomaly("unseen", scope="topic:Credit", severity="critical", event="resolve"), MONDAY_NOON + MIN)
    for i in range(routine):
        s.on_anomaly(anomaly(f"info{i}", severity="info"), MONDAY_NOON + 2 * MIN + timedelta(seconds=i))


def test_an_unattended_critical_close_stays_on_the_review_list_after_many_routine_closes():
    s = Scheduler(roster(), SchedulerPolicy())
    _unattended_critical_then_routine_closes(s, 60)
    listed = s.machine_closed(20)
    assert len(listed) == 20
    assert listed[0]["case_id"] == "case-unseen" and listed[0]["outcome"] == "unattended"
    assert [c["case_id"] for c in listed[1:4]] == ["case-info59", "case-info58", "case-info57"]  # then newest


def test_pruning_by_count_forgets_routine_closes_before_an_unattended_one():
    s = Scheduler(roster(), SchedulerPolicy(retain_closed_count=10))
    _unattended_critical_then_routine_closes(s, 30)
    s.tick(MONDAY_NOON + 10 * MIN)
    assert s.case("case-unseen") is not None and s.case("case-unseen")["outcome"] == "unattended"
    assert s.case("case-info29") is not None and s.case("case-info20") is not None  # the newest 10 routine
    assert s.case("case-info19") is None  # ones, counted apart from the unattended close (review 2)
    s.tick(MONDAY_NOON + timedelta(days=3))  # the retention period still bounds every closed case
    assert s.case("case-unseen") is None


def test_an_analysts_outcome_named_like_unattended_is_counted_with_the_analysts_closes():
    s = Scheduler(roster(), SchedulerPolicy(retain_closed_count=1))
    s.on_anomaly(anomaly("earlier"), MONDAY_NOON)
    s.on_action(action("resolve", "case-earlier", s.case("case-earlier")["analyst"], "e1"), MONDAY_NOON + MIN)
    s.on_anomaly(anomaly("unseen", scope="topic:Credit", severity="critical"), MONDAY_NOON + 2 * MIN)
    s.on_anomaly(anomaly("unseen", scope="topic:Credit", severity="critical", event="resolve"), MONDAY_NOON + 3 * MIN)
    s.on_anomaly(anomaly("worked"), MONDAY_NOON + 4 * MIN)
    holder = s.case("case-worked")["analyst"]
    s.on_action(action("resolve", "case-worked", holder, "w1", outcome="unattended"), MONDAY_NOON + 5 * MIN)
    s.tick(MONDAY_NOON + 10 * MIN)
    # the analyst's newest close, whatever its outcome, and the one unattended close the machine made
    assert s.case("case-earlier") is None
    assert s.case("case-worked") is not None and s.case("case-unseen") is not None


# ---- 7. ties go to the analyst assigned least recently ---------------------------------------------

def earnings_team(names: tuple[str, ...], shift: str) -> str:
    """A roster of equal Earnings analysts (capacity 2) on one shift."""
    return "analysts:\n" + "".join(f"""\
  - id: {name}
    name: {name.title()}
    capacity: 2
    shifts: ["{shift}"]
    skills: {{topics: {{Earnings: 4}}}}
    notify: https://hooks.example.com/{name}
    token_env: FINSENTRY_TOKEN_{name.upper()}
""" for name in names)


EVEN_TRIO = earnings_team(("rowan", "sasha", "tomas"), "Mon-Sun 00:00-24:00 UTC")


@pytest.mark.parametrize("policy", ["optimal", "least_loaded", "round_robin"])
def test_cases_arriving_one_at_a_time_to_an_idle_team_go_round(policy):
    s = Scheduler(roster(EVEN_TRIO), SchedulerPolicy(assignment=policy))
    at, takers = MONDAY_NOON, []
    for i in range(9):
        events = s.on_anomaly(anomaly(f"one{i}"), at)
        taker = next(e["analyst"] for e in events if e["event"] == "assigned")
        takers.append(taker)
        s.on_action(action("resolve", f"case-one{i}", taker, f"done{i}"), at + MIN)
        at += 2 * MIN
    assert takers == ["rowan", "sasha", "tomas"] * 3


def test_the_tie_breaker_never_outweighs_a_real_difference_in_load():
    from scheduler.assignment import FreeAnalyst, WaitingCase
    from scheduler.config import Weights
    from scheduler.optimizer import optimal

    case = WaitingCase("case-x", 1, 4.0, 0.0, {"recent": 3, "rested": 3, "busier": 3}, 3, frozenset())
    # `rested` was assigned longest ago, but `recent`'s load cost is lower by the smallest step a load
    # cost can differ by (1/1000 against 1/999 of `balance`)
    free = [FreeAnalyst("recent", 0, 1000, last_assigned=9, stale=False),
            FreeAnalyst("rested", 0, 999, last_assigned=0, stale=False)]
    assert optimal([case], free, Weights()) == [("case-x", "recent")]
    free = [FreeAnalyst("recent", 0, 3, last_assigned=9, stale=False),
            FreeAnalyst("busier", 1, 3, last_assigned=0, stale=False)]
    assert optimal([case], free, Weights()) == [("case-x", "recent")]


# ---- 8. waiting() lists by urgency, and says it is not the order of service ---------------------------

SOLO = EVEN_TRIO.split("  - id: sasha")[0].replace("capacity: 2", "capacity: 1")


def test_the_queue_is_listed_by_urgency_and_does_not_claim_to_be_the_order_of_service():
    s = Scheduler(roster(SOLO), SchedulerPolicy(auto_resolve_below=None))
    s.on_anomaly(anomaly("busy", severity="info"), MONDAY_NOON)  # takes rowan's only slot
    s.on_anomaly(anomaly("breached", severity="critical"), MONDAY_NOON + MIN)
    s.tick(MONDAY_NOON + 12 * MIN)  # the critical missed its 10 min acknowledge SLA: escalated
    s.on_anomaly(anomaly("fresh", severity="warning"), MONDAY_NOON + 14 * MIN)
    listed = [c["case_id"] for c in s.waiting(MONDAY_NOON + 15 * MIN)]
    assert listed == ["case-breached", "case-fresh"]  # by priority
    events = s.on_action(action("resolve", "case-busy", "rowan", "b1"), MONDAY_NOON + 15 * MIN)
    assert [e["case_id"] for e in events if e["event"] == "assigned"] == ["case-fresh"]  # it can still make it
    assert "order it will be served" not in Scheduler.waiting.__doc__
    assert "not the order of service" in Scheduler.waiting.__doc__


# ---- review of ef8108e, 1. the retention count bounds each kind of close on its own -----------------


def _resolved_by_an_analyst(s, name, at):
    s.on_anomaly(anomaly(name), at)
    holder = s.case(f"case-{name}")["analyst"]
    s.on_action(action("ack", f"case-{name}", holder, f"{name}-ack"), at + MIN)
    s.on_action(action("resolve", f"case-{name}", holder, f"{name}-res", outcome="real"), at + 2 * MIN)
    return holder


def _unattended(s, name, at):
    s.on_anomaly(anomaly(name, scope="topic:Credit", severity="critical"), at)  # nobody has Credit
    s.on_anomaly(anomaly(name, scope="topic:Credit", severity="critical", event="resolve"), at + MIN)


def test_a_burst_of_unattended_or_routine_closes_does_not_push_out_a_case_an_analyst_just_resolved():
    s = Scheduler(roster(), SchedulerPolicy(retain_closed_count=3))
    for i in range(3):
        _unattended(s, f"unseen{i}", MONDAY_NOON - timedelta(hours=1) + 2 * i * MIN)
    holder = _resolved_by_an_analyst(s, "worked", MONDAY_NOON)
    s.tick(MONDAY_NOON + 3 * MIN)
    assert s.case("case-worked")["status"] == "resolved"
    assert s.on_action(action("resolve", "case-worked", holder, "worked-res"), MONDAY_NOON + 4 * MIN) == []
    labelled = s.on_action(
        action("label", "case-worked", holder, "fix", labels=[{"id": "worked-n1", "sentiment": "negative"}]),
        MONDAY_NOON + 5 * MIN,
    )
    assert [e["event"] for e in labelled] == ["labelled"]
    update = anomaly("worked", event="update", sample_ids=["worked-n2"], headlines=["more"])
    assert s.on_anomaly(update, MONDAY_NOON + 6 * MIN) == []  # no second case for the same anomaly
    for i in range(5):
        s.on_anomaly(anomaly(f"info{i}", severity="info"), MONDAY_NOON + 7 * MIN + timedelta(seconds=i))
    s.tick(MONDAY_NOON + 8 * MIN)
    assert s.case("case-worked")["status"] == "resolved"
    listed = {c["case_id"] for c in s.machine_closed()}
    assert listed == {"case-unseen0", "case-unseen1", "case-unseen2", "case-info2", "case-info3", "case-info4"}


def test_each_kind_of_close_keeps_its_newest_retain_closed_count_and_forgets_the_rest():
    s = Scheduler(roster(), SchedulerPolicy(retain_closed_count=2))
    at = MONDAY_NOON
    for i in range(3):
        _resolved_by_an_analyst(s, f"worked{i}", at)
        _unattended(s, f"unseen{i}", at + 3 * MIN)
        s.on_anomaly(anomaly(f"info{i}", severity="info"), at + 5 * MIN)
        at += 6 * MIN
    s.tick(at)
    kept = {cid for kind in ("worked", "unseen", "info") for i in range(3) if s.case(cid := f"case-{kind}{i}")}
    assert kept == {f"case-{kind}{i}" for kind in ("worked", "unseen", "info") for i in (1, 2)}
    with pytest.raises(ActionError) as info:  # its action ids went with it
        s.on_action(action("resolve", "case-worked0", "alice", "worked0-res"), at + MIN)
    assert info.value.status == 404


# ---- review of ef8108e, 2. the resolve window restarts when the next holder takes the case --------------

PAIR_UTC = earnings_team(("xavi", "yara"), "Mon-Fri 08:00-17:00 UTC")
MONDAY_1630 = datetime(2024, 3, 4, 16, 30, tzinfo=UTC)
TUESDAY_0800 = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("how", ["stranded at 17:30", "handed back at 17:20", "never held"])
def test_a_case_taken_after_a_night_in_the_pool_gets_its_resolve_window_from_the_taking(how):
    s = Scheduler(roster(PAIR_UTC), SchedulerPolicy())
    if how == "never held":
        at = MONDAY_1630 + 2 * 60 * MIN
        s.on_anomaly(anomaly("late", severity="critical"), at)  # nobody on shift
        events = []
    else:
        s.on_anomaly(anomaly("late", severity="critical"), MONDAY_1630)
        first = s.case("case-late")["analyst"]
        at = MONDAY_1630 + 2 * MIN
        s.on_action(action("ack", "case-late", first, "k1"), at)
        events = _ticks(s, at, MONDAY_1630 + 50 * MIN)
        at = MONDAY_1630 + 50 * MIN  # 17:20: gone home, its resolve SLA (17:30) not passed yet
        if how == "handed back at 17:20":  # from home; nobody on shift to take it
            s.on_action(action("reassign", "case-late", first, "k2"), at)
    events += _ticks(s, at, TUESDAY_0800)
    stranded = [at for at, e in events if e["event"] == "waiting" and "off shift" in e["reason"]]
    assert stranded == ([MONDAY_1630 + 60 * MIN] if how.startswith("stranded") else [])
    taken = [(at, e["analyst"]) for at, e in events if e["event"] == "assigned"]
    assert [at for at, _ in taken] == [TUESDAY_0800]
    holder = taken[0][1]
    s.on_action(action("ack", "case-late", holder, "k3"), TUESDAY_0800)
    case = s.case("case-late")
    events = _ticks(s, TUESDAY_0800, TUESDAY_0800 + 2 * 60 * MIN)
    assert [(at, e["analyst"]) for at, e in events if e["event"] == "escalated"] == [(TUESDAY_0800 + 60 * MIN, holder)]
    assert case["resolve_from"] == TUESDAY_0800.isoformat()
    assert case["resolve_due"] == (TUESDAY_0800 + 60 * MIN).isoformat()


# ---- review of ef8108e, 3. a stored case with fields of a later version still reads ------------------


def test_a_case_stored_by_a_later_version_reads_with_the_fields_it_does_not_know_ignored():
    s = Scheduler(roster(), SchedulerPolicy())
    s.on_anomaly(anomaly("kept"), MONDAY_NOON)
    stored = json.loads(json.dumps(s.to_dict()))
    record = stored["cases"]["case-kept"]
    future = {**record, "handover_note": "a field of a later release", "resolve_paused_at": None}
    assert Case.from_dict(future).to_dict() == record
    restored = Scheduler.from_dict(s.roster, SchedulerPolicy(), {**stored, "cases": {"case-kept": future}})
    assert restored.to_dict() == stored
    assert restored.on_action(action("ack", "case-kept", record["analyst"], "a1"), MONDAY_NOON + MIN)


def test_the_upgrade_notes_say_resolve_from_blocks_a_rollback():
    operations = (Path(__file__).parents[2] / "docs" / "OPERATIONS.md").read_text()
    upgrading = operations.split("### Upgrading", 1)[1].split("\n### ", 1)[0]
    assert "`resolve_from`" in upgrading
