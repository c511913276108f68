"""The scheduler's load gauges are published only by the worker that owns `scheduler.inbox`.

Rules and dashboards take max() across workers: a worker that lost the partition and kept its last
values outvoted the new owner (FinsentryCasesOverSLA fired until it restarted). Revocation takes the
series off /metrics; the same rebalance giving the partition back shows them again, and otherwise the
next inbox record the worker handles as owner publishes them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from faust.types import TP
from prometheus_client import REGISTRY, generate_latest

from scheduler import Scheduler, SchedulerPolicy, parse_roster
from scheduler.tokens import hash_token
from streams.agents import schedule
from streams.app import INBOX_TOPIC, app

NOW = datetime(2031, 5, 6, 9, 30, tzinfo=UTC)
ROSTER = parse_roster(f"""\
analysts:
  - id: quillon
    name: Quillon
    capacity: 1
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Earnings: 5}}}}
    notify: https://hooks.example.invalid/quillon
    token_hash: {hash_token("quillon-token-for-tests", n=16)}
""")
INBOX = TP(INBOX_TOPIC, 0)
OTHER = TP("elsewhere.topic", 3)


def busy_scheduler() -> Scheduler:
    """One case held by quillon, one waiting, both past their acknowledge SLA an hour later."""
    sched = Scheduler(ROSTER, SchedulerPolicy())
    for aid in ("zq-1", "zq-2"):
        sched.on_anomaly({"anomaly_id": aid, "scope": "topic:Earnings", "severity": "critical",
                          "kind": "negative_surge", "sample_ids": [f"{aid}-s"], "headlines": [f"headline {aid}"]}, NOW)
    return sched


def shown() -> dict[str, float | None]:
    return {"open": REGISTRY.get_sample_value("finsentry_cases_open", {"analyst": "quillon"}),
            "utilisation": REGISTRY.get_sample_value("finsentry_analyst_utilisation_ratio", {"analyst": "quillon"}),
            "waiting": REGISTRY.get_sample_value("finsentry_cases_waiting"),
            "over_sla": REGISTRY.get_sample_value("finsentry_cases_over_sla")}


class Inbox:
    """scheduler.inbox, keeping what is sent to it."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send_soon(self, key: object = None, value: object = None) -> None:
        self.sent.append(value)


@pytest.fixture(autouse=True)
def inbox(monkeypatch: pytest.MonkeyPatch) -> Inbox:
    topic = Inbox()
    monkeypatch.setattr(schedule, "inbox_topic", topic)
    return topic


def rebalance(revoked: set[TP], assigned: set[TP] | None) -> None:
    """Faust's signals, as a rebalance sends them (every receiver connected to them runs)."""
    async def run() -> None:
        await app.on_partitions_revoked.send(revoked)
        if assigned is not None:
            await app.on_partitions_assigned.send(assigned)
    asyncio.run(run())


def published(later: timedelta = timedelta(hours=1)) -> dict[str, float | None]:
    schedule.publish_gauges(busy_scheduler(), NOW + later)
    values = shown()
    assert values == {"open": 1.0, "utilisation": 1.0, "waiting": 1.0, "over_sla": 2.0}
    return values


def test_losing_the_inbox_partition_takes_the_load_series_off() -> None:
    published()
    rebalance({INBOX, OTHER}, {OTHER})
    assert shown() == {"open": None, "utilisation": None, "waiting": None, "over_sla": None}
    samples = [line for line in generate_latest(REGISTRY).decode().splitlines() if not line.startswith("#")]
    assert not [line for line in samples if line.startswith(("finsentry_cases_over_sla", "finsentry_cases_waiting"))]


def test_the_next_inbox_record_publishes_them_again(inbox: Inbox) -> None:
    published()
    rebalance({INBOX}, set())
    assert shown()["over_sla"] is None and inbox.sent == []
    rebalance(set(), {INBOX})  # given it in a later rebalance: nothing shown until it handles a record,
    assert shown()["over_sla"] is None
    assert inbox.sent == [{"tick": True}]  # which it sends itself, for its writer once the state is recovered
    assert published() == shown()


def test_a_worker_given_the_inbox_at_start_up_asks_for_its_first_publication(inbox: Inbox) -> None:
    rebalance(set(), {OTHER, INBOX})
    assert inbox.sent == [{"tick": True}]
    rebalance({OTHER, INBOX}, {OTHER})
    assert inbox.sent == [{"tick": True}]


def test_a_rebalance_that_gives_the_inbox_back_keeps_them() -> None:
    before = published()
    rebalance({INBOX, OTHER}, {INBOX})
    assert shown() == before


def test_a_record_in_hand_at_the_revocation_cannot_leave_them_behind() -> None:
    published()
    rebalance({INBOX, OTHER}, None)
    published()  # the writer finished a record after the revocation
    rebalance(set(), {OTHER})
    assert shown() == {"open": None, "utilisation": None, "waiting": None, "over_sla": None}


def test_other_partitions_revoked_leave_them() -> None:
    before = published()
    rebalance({OTHER}, None)
    assert shown() == before
    rebalance({INBOX}, set())  # leave no series behind for other tests
