"""The scheduler's state as table records (scheduler/storage.py): one per case and a small head, so
no record grows with the number of cases, and closed cases are bounded by count as well as age."""

from __future__ import annotations

import json
from datetime import timedelta

from scheduler_fixtures import MONDAY_10, anomaly, roster

from scheduler import Scheduler, SchedulerPolicy, storage


def busy_scheduler(cases: int, policy: SchedulerPolicy | None = None) -> Scheduler:
    sched = Scheduler(roster(), policy or SchedulerPolicy(auto_resolve_below="critical"))
    for n in range(cases):  # below critical: the machine resolves each one, so all are closed
        sched.on_anomaly(anomaly(f"a{n}", outcome="o" * 2000), MONDAY_10 + timedelta(seconds=n))
    return sched


def test_split_and_join_give_back_the_same_scheduler() -> None:
    sched = busy_scheduler(5, SchedulerPolicy())
    sched.on_action({"action": "ack", "case_id": "case-a0", "analyst": "alice", "action_id": "x1"}, MONDAY_10)
    head, records = storage.split(sched.to_dict())
    assert set(records) == {f"case-a{n}" for n in range(5)} and "cases" not in head
    assert records["case-a0"]["actions"] == ["x1"]
    again = Scheduler(roster(), SchedulerPolicy(), json.loads(json.dumps(storage.join(head, records))))
    assert again.to_dict() == json.loads(json.dumps(sched.to_dict()))
    # Records read back from the changelog (JSON) equal fresh ones: an idle tick rewrites nothing.
    assert storage.changes(json.loads(json.dumps(records)), storage.split(again.to_dict())[1]) == {}


def test_no_record_grows_with_the_number_of_cases() -> None:
    head, records = storage.split(busy_scheduler(300).to_dict())
    sizes = [len(json.dumps(r)) for r in records.values()]
    assert len(records) == 300 and max(sizes) < 8 * 1024 and len(json.dumps(head)) < 1024


def test_changes_name_new_changed_and_removed_cases_only() -> None:
    old = {"a": {"case": {"s": 1}, "actions": []}, "b": {"case": {"s": 1}, "actions": []}}
    new = {"a": {"case": {"s": 1}, "actions": []}, "c": {"case": {"s": 2}, "actions": []}}
    assert storage.changes(old, new) == {"c": new["c"], "b": None}
    assert storage.journalled(old, {"cases": {"b": None, "c": new["c"]}, "outbox": []}) == new


def test_closed_cases_are_bounded_by_count_as_well_as_age() -> None:
    sched = busy_scheduler(30, SchedulerPolicy(auto_resolve_below="critical", retain_closed_count=10))
    assert len(sched.to_dict()["cases"]) == 30  # pruned on the clock
    sched.tick(MONDAY_10 + timedelta(minutes=1))
    kept = sched.to_dict()["cases"]
    assert sorted(kept) == sorted(f"case-a{n}" for n in range(20, 30))  # the ten closed last
    sched.tick(MONDAY_10 + timedelta(days=3))
    assert sched.to_dict()["cases"] == {}  # and none past the age limit
