"""Invariants under random rosters, arrivals and actions, for every assignment policy."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scheduler_fixtures import MONDAY_10

from scheduler import ActionError, Analyst, Roster, Scheduler, SchedulerPolicy, Shift

SCOPES = ("topic:Earnings", "topic:Macro", "ticker:AAPL", "ticker:XOM")
SHIFTS = ("Mon-Sun 00:00-24:00 UTC", "Mon-Fri 08:00-17:00 Europe/London", "Mon-Fri 22:00-06:00 Asia/Tokyo")

analysts = st.builds(
    lambda i, cap, skills, shift: Analyst(
        id=f"a{i}",
        name=f"a{i}",
        capacity=cap,
        skills=skills,
        shifts=(Shift.parse(shift),),
        notify=f"https://hooks.example.com/a{i}",
        token_env="T",
    ),
    st.integers(0, 3),
    st.integers(1, 3),
    st.dictionaries(st.sampled_from((*SCOPES, "sector:Technology")), st.integers(1, 5), min_size=1, max_size=3),
    st.sampled_from(SHIFTS),
)
rosters = st.lists(analysts, min_size=1, max_size=4, unique_by=lambda a: a.id).map(
    lambda xs: Roster({a.id: a for a in xs}, {"AAPL": "Technology"})
)
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("anomaly"),
            st.integers(0, 9),
            st.sampled_from(SCOPES),
            st.sampled_from(("info", "warning", "critical")),
            st.sampled_from(("open", "update", "resolve")),
        ),
        st.tuples(
            st.just("action"),
            st.integers(0, 9),
            st.integers(0, 3),
            st.sampled_from(("ack", "resolve", "reassign", "label")),
            st.one_of(st.none(), st.integers(0, 3)),
        ),
        st.tuples(st.just("tick"), st.integers(1, 240)),
        st.tuples(st.just("roster"), rosters),
    ),
    max_size=30,
)


class Checker:
    """Replays the event stream to check what no single state snapshot can show."""

    def __init__(self, s: Scheduler):
        self.s, self.holder, self.opened = s, {}, set()

    def events(self, events, now):
        roster = self.s.roster
        for e in events:
            cid = e["case_id"]
            if e["event"] == "assigned":
                a = roster.analysts[e["analyst"]]
                assert a.on_shift(now), f"{cid} assigned to {a.id} off shift"
                assert roster.skill_level(a, e["scope"]) > 0, f"{cid} assigned to {a.id} without the skill"
                previous = self.holder.get(cid)
                assert previous is None or e.get("reason") == f"reassigned by {previous}", f"{cid} assigned twice"
                assert e["notify"]["target"] == a.notify
                self.holder[cid] = a.id
            elif e["event"] in ("waiting", "resolved", "auto_resolved") or (
                e["event"] == "escalated" and "not acknowledged" in e.get("reason", "")
            ):
                self.holder[cid] = None
        self.state()

    def state(self):
        roster = self.s.roster
        for aid, a in roster.analysts.items():
            assert len(self.s.cases_for(aid)) <= a.capacity
        for cid in self.opened:
            case = self.s.case(cid)
            assert case is not None, f"{cid} lost"
            held = case["status"] in ("assigned", "acknowledged")
            assert held == (self.holder.get(cid) is not None) and (not held or case["analyst"] == self.holder[cid])
            assert not held or case["analyst"] in roster.analysts


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(roster=rosters, steps=steps, assignment=st.sampled_from(("optimal", "round_robin", "least_loaded")))
def test_invariants_hold_and_every_case_ends_resolved_or_waiting(roster, steps, assignment):
    s = Scheduler(roster, SchedulerPolicy(assignment=assignment))
    check = Checker(s)
    now, n = MONDAY_10, 0
    for step in steps:
        n += 1
        if step[0] == "anomaly":
            _, i, scope, severity, event = step
            anomaly = {"anomaly_id": f"n{i}", "kind": "surge", "scope": scope, "severity": severity, "event": event}
            events = s.on_anomaly(anomaly, now)
            if s.case(f"case-n{i}") is not None:
                check.opened.add(f"case-n{i}")
        elif step[0] == "action":
            _, i, who, kind, to = step
            act = {"action": kind, "case_id": f"case-n{i}", "analyst": f"a{who}", "action_id": f"x{n}"}
            if kind == "reassign" and to is not None:
                act["to"] = f"a{to}"
            if kind == "label":
                act["labels"] = [{"id": "s1"}]
            try:
                events = s.on_action(act, now)
            except ActionError as exc:
                assert exc.status in (403, 404, 409)
                events = []
        elif step[0] == "tick":
            now += timedelta(minutes=step[1])
            events = s.tick(now)
        else:
            events = s.set_roster(step[1], now)
        check.events(events, now)

    # Drain: analysts work off everything they hold; the rest can only be waiting for want of anyone.
    for _ in range(20):
        for aid in s.roster.analysts:
            for case in s.cases_for(aid):
                for kind in ("ack", "resolve") if case["status"] == "assigned" else ("resolve",):
                    n += 1
                    act = {"action": kind, "case_id": case["case_id"], "analyst": aid, "action_id": f"x{n}"}
                    check.events(s.on_action(act, now), now)
        now += timedelta(minutes=1)
        check.events(s.tick(now), now)
    for cid in check.opened:
        case = s.case(cid)
        assert case["status"] in ("resolved", "auto_resolved", "waiting")
        if case["status"] == "waiting":
            able = [a for a in s.roster.analysts.values() if a.on_shift(now) and s.roster.skill_level(a, case["scope"])]
            assert not able, f"{cid} waits although {able[0].id} could take it"


@settings(max_examples=30, deadline=None)
@given(roster=rosters, steps=steps)
def test_restored_state_behaves_identically(roster, steps):
    """Snapshot half-way through a random run; the restored copy must produce the same events."""
    import json

    def apply(s, step, now, n):
        if step[0] == "anomaly":
            _, i, scope, severity, event = step
            return s.on_anomaly({"anomaly_id": f"n{i}", "scope": scope, "severity": severity, "event": event}, now)
        if step[0] == "action":
            _, i, who, kind, to = step
            act = {
                "action": kind,
                "case_id": f"case-n{i}",
                "analyst": f"a{who}",
                "action_id": f"x{n}",
                "to": None if to is None else f"a{to}",
                "labels": [{"id": "s1"}],
            }
            try:
                return s.on_action(act, now)
            except ActionError as exc:
                return [exc.status]
        if step[0] == "tick":
            return s.tick(now)
        return s.set_roster(step[1], now)

    half = len(steps) // 2
    s = Scheduler(roster, SchedulerPolicy())
    for n, step in enumerate(steps[:half]):
        apply(s, step, MONDAY_10 + timedelta(minutes=7 * n), n)
    restored = Scheduler(s.roster, SchedulerPolicy(), json.loads(json.dumps(s.to_dict())))
    for n, step in enumerate(steps[half:], start=half):
        at = MONDAY_10 + timedelta(minutes=7 * n)
        assert apply(restored, step, at, n) == apply(s, step, at, n)
    assert restored.to_dict() == s.to_dict()
