"""A case is one Alertmanager alert per analyst: `firing` while the case is theirs (assigned, escalated,
severity raised: the same labels, so the same fingerprint, and the same startsAt), `resolved` with an
endsAt when it leaves them, whichever way it leaves (streams/agents/case_webhooks.py).

Before, every event was a new firing alert (`case_<event>`, endsAt 0001-01-01, a made-up fingerprint),
so a receiver keyed by fingerprint opened an incident nothing resolved and "taken off you" opened
another; each event went out in its own task, so a retried `assigned` reached the receiver after the
`waiting` that ended it; and 8 deliveries to one dead endpoint held every analyst's notifications.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from alerts.delivery import DeliveryResult
from alerts.payload import ZERO_TIME, fingerprint
from alerts.receivers import Receiver
from scheduler import Scheduler, SchedulerPolicy, parse_roster
from streams import webhooks
from streams.agents import case_webhooks
from streams.agents.case_webhooks import ALERTNAME, plan
from streams.ownership import key_partition
from tests.waiting import until

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
HOOKS = "https://hooks.example.test"


def analyst(name: str, capacity: int = 2) -> str:
    return f"""\
  - id: {name}
    name: {name.title()}
    capacity: {capacity}
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Earnings: 5}}}}
    notify: {HOOKS}/{name}
    token_env: LIFECYCLE_TOKEN_{name.upper()}
"""


def roster(*analysts: str):
    return parse_roster("analysts:\n" + "".join(analysts), "roster.yaml")


def anomaly(aid: str, severity: str = "warning", event: str = "open") -> dict[str, Any]:
    return {"anomaly_id": aid, "event": event, "scope": "topic:Earnings", "severity": severity, "kind": "negative_surge",
            "score": 4.0, "sample_ids": [f"{aid}-1"], "headlines": [f"headline {aid}"]}


def case_event(kind: str, who: str | None, at: datetime, notify: bool = True, **extra: Any) -> dict[str, Any]:
    event = {"event": kind, "case_id": "case-q1", "anomaly_id": "q1", "at": at.isoformat(), "priority": 4.0,
             "severity": "warning", "scope": "topic:Earnings", "kind": "negative_surge", **extra}
    if who is not None:
        event["analyst"] = who
        if notify:
            event["notify"] = {"target": f"{HOOKS}/{who}", "analyst": who}
    return event


class Receivers:
    """What each analyst's receiver holds, fed the notifications `plan` makes of the scheduler's events,
    with its state kept as the agent's table would (every notification told)."""

    def __init__(self, targets: Callable[[str], str | None] = lambda who: f"{HOOKS}/{who}") -> None:
        self.state: dict[str, dict] = {}
        self.alerts: dict[tuple[str, str], dict] = {}  # (case, analyst) -> the alert last received
        self.sent: list[tuple[str, str, dict]] = []  # (target, analyst, alert)
        self.targets = targets

    def feed(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            after, notices = plan(self.state.get(event["case_id"]), event, self.targets)
            if after is not None:
                self.state[event["case_id"]] = after
            for notice in notices:
                [alert] = notice.payload["alerts"]
                key = (event["case_id"], notice.analyst)
                if key in self.alerts:  # one alert from its first firing to its resolve, and after
                    assert alert["fingerprint"] == self.alerts[key]["fingerprint"]
                    assert notice.payload["groupKey"] == f'{{}}/analyst-{notice.analyst}:{{case_id="{event["case_id"]}"}}'
                self.alerts[key] = alert
                self.sent.append((notice.target, notice.analyst, alert))

    def firing(self, case_id: str) -> set[str]:
        return {who for (case, who), alert in self.alerts.items() if case == case_id and alert["status"] == "firing"}

    def resolved(self, case_id: str) -> set[str]:
        return {who for (case, who), alert in self.alerts.items() if case == case_id and alert["status"] == "resolved"}


def holder(sched: Scheduler, case_id: str) -> set[str]:
    case = sched.case(case_id)
    assert case is not None
    return {case["analyst"]} if case["status"] in ("assigned", "acknowledged") else set()


def test_a_case_is_one_alert_for_its_analyst_firing_while_theirs_and_resolved_when_taken_off() -> None:
    events = [case_event("assigned", "wren", NOW),
              case_event("updated", "wren", NOW + timedelta(minutes=1), reason="severity warning -> critical",
                         severity="critical"),
              case_event("escalated", "wren", NOW + timedelta(minutes=2), reason="not resolved within the 1:00:00 SLA"),
              case_event("waiting", "wren", NOW + timedelta(minutes=3, microseconds=456789), reason="handed back by wren")]
    rx = Receivers()
    rx.feed(events)
    alerts = [alert for _, _, alert in rx.sent]
    assert [a["status"] for a in alerts] == ["firing", "firing", "firing", "resolved"]
    assert [a["annotations"]["event"] for a in alerts] == ["assigned", "updated", "escalated", "waiting"]
    labels = {"alertname": ALERTNAME, "case_id": "case-q1", "analyst": "wren", "scope": "topic:Earnings",
              "anomaly_id": "q1"}
    assert all(a["labels"] == labels for a in alerts)  # the severity is an annotation: it changes
    assert [a["annotations"]["severity"] for a in alerts] == ["warning", "critical", "warning", "warning"]
    # Alertmanager's fingerprint of those labels (alerts/payload.py), the same on each
    assert {a["fingerprint"] for a in alerts} == {fingerprint(labels)}
    assert re.fullmatch(r"[0-9a-f]{16}", alerts[0]["fingerprint"])
    # Alertmanager's times: RFC 3339, milliseconds, Z; it started when the case became wren's
    assert {a["startsAt"] for a in alerts} == {"2024-03-04T10:00:00.000Z"}
    assert [a["endsAt"] for a in alerts] == [ZERO_TIME] * 3 + ["2024-03-04T10:03:00.456Z"]
    assert "taken off you: handed back by wren" in alerts[-1]["annotations"]["summary"]


def test_a_case_reassigned_to_someone_else_resolves_the_alert_of_the_one_it_left() -> None:
    sched = Scheduler(roster(analyst("wren"), analyst("ash")), SchedulerPolicy())
    rx = Receivers()
    rx.feed(sched.on_anomaly(anomaly("q1"), NOW))
    [first] = holder(sched, "case-q1")
    other = ({"wren", "ash"} - {first}).pop()
    events = sched.on_action({"action": "reassign", "case_id": "case-q1", "analyst": first, "action_id": "r1",
                              "to": other}, NOW + timedelta(minutes=1))
    assert [e["event"] for e in events] == ["assigned"]  # the event names only the new holder
    rx.feed(events)
    assert rx.firing("case-q1") == {other} and rx.resolved("case-q1") == {first}
    target, _, ended = next(s for s in rx.sent if s[1] == first and s[2]["status"] == "resolved")
    assert target == f"{HOOKS}/{first}" and ended["endsAt"] == "2024-03-04T10:01:00.000Z"
    assert f"now with {other}" in ended["annotations"]["summary"] and ended["annotations"]["event"] == "assigned"


@pytest.mark.parametrize("way", ["hand back", "hand off", "ack breach", "off the roster", "capacity lowered",
                                 "resolve", "ack then resolve breach"])
def test_every_way_a_case_leaves_its_holder_resolves_their_alert(way: str) -> None:
    policy = SchedulerPolicy(handoff_after=0.5 if way == "hand off" else None)
    team = [analyst("wren"), analyst("ash"), analyst("fern")]
    sched = Scheduler(roster(*team), policy)
    rx = Receivers(lambda who: None)  # nothing from the roster: what the events and the state say
    rx.feed(sched.on_anomaly(anomaly("q1"), NOW))
    rx.feed(sched.on_anomaly(anomaly("q2"), NOW))
    [first] = holder(sched, "case-q1")
    assert rx.firing("case-q1") == {first}
    later = NOW + timedelta(minutes=1)
    if way == "hand back":
        rx.feed(sched.on_action({"action": "reassign", "case_id": "case-q1", "analyst": first, "action_id": "x"}, later))
    elif way == "hand off":
        rx.feed(sched.tick(NOW + timedelta(minutes=16)))
    elif way == "ack breach":
        rx.feed(sched.tick(NOW + timedelta(minutes=31)))
    elif way == "off the roster":
        rx.feed(sched.set_roster(roster(*[a for a in team if f"id: {first}\n" not in a]), later))
    elif way == "capacity lowered":
        for aid in ("q3", "q4", "q5", "q6"):  # everyone at capacity
            rx.feed(sched.on_anomaly(anomaly(aid), NOW))
        assert all(len(sched.cases_for(who)) == 2 for who in ("wren", "ash", "fern"))
        rx.feed(sched.set_roster(roster(*[analyst(first, 1) if f"id: {first}\n" in a else a for a in team]), later))
        assert len(sched.cases_for(first)) == 1
    elif way == "resolve":
        rx.feed(sched.on_action({"action": "resolve", "case_id": "case-q1", "analyst": first, "action_id": "x"}, later))
    else:
        rx.feed(sched.on_action({"action": "ack", "case_id": "case-q1", "analyst": first, "action_id": "x"}, later))
        rx.feed(sched.tick(NOW + timedelta(hours=4, minutes=1)))
    cases = sorted({key[0] for key in rx.alerts})
    for case_id in cases:  # the receivers agree with the scheduler: exactly the holder's alert fires
        assert rx.firing(case_id) == holder(sched, case_id), (way, case_id, sched.case(case_id))
    if way != "ack then resolve breach":  # held on: escalated to its holder, still firing
        assert first in rx.resolved("case-q1") or holder(sched, "case-q1") == {first}, way
    assert all(target == f"{HOOKS}/{who}" for target, who, _ in rx.sent)  # a resolve goes where it fired
    assert all((a["status"] == "resolved") == (a["endsAt"] != ZERO_TIME) for _, _, a in rx.sent)


def test_an_escalation_that_takes_the_case_away_is_resolved_by_the_waiting_after_it() -> None:
    """`escalated` names its holder; the `waiting` that follows, when nobody else is free, names no one."""
    rx = Receivers(lambda who: None)
    rx.feed([case_event("assigned", "wren", NOW),
             case_event("escalated", "wren", NOW + timedelta(minutes=31), reason="not acknowledged by wren within 0:30:00"),
             case_event("waiting", None, NOW + timedelta(minutes=31), reason="not acknowledged by wren within 0:30:00")])
    assert rx.firing("case-q1") == set() and rx.resolved("case-q1") == {"wren"}
    assert [a["status"] for _, _, a in rx.sent] == ["firing", "firing", "resolved"]


def test_a_resolve_without_state_goes_to_the_analysts_roster_url() -> None:
    """A case assigned before this state was kept: the `resolved` event (which carries no `notify`) still
    ends the analyst's alert, at the URL the roster has for them."""
    rx = Receivers(lambda who: f"{HOOKS}/{who}" if who == "wren" else None)
    rx.feed([case_event("resolved", "wren", NOW, notify=False, outcome="fixed")])
    [(target, who, alert)] = rx.sent
    assert (target, who, alert["status"], alert["annotations"]["event"]) == (f"{HOOKS}/wren", "wren", "resolved", "resolved")
    assert rx.state["case-q1"]["closed"]


# ---- the agent: order, per-receiver slots, restarts ----------------------------------------------

class Table(dict):
    """Stands in for the agent's Faust table; `written()` returns at once."""

    async def written(self) -> None:
        return None


class Endpoints:
    """The analysts' receivers behind `webhooks.attempt`: each call recorded when it starts and when it
    is received; a receiver in `hold` keeps its calls open until its gate opens; one in `refusing`
    answers every call with that status (a round that failed)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict]] = []
        self.received: list[tuple[str, dict]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.open = Counter[str]()
        self.peak = Counter[str]()
        self.refusing: dict[str, int] = {}

    async def attempt(self, receiver: Receiver, payload: dict, notification_id: str | None = None) -> DeliveryResult:
        self.started.append((receiver.name, payload))
        self.open[receiver.name] += 1
        self.peak[receiver.name] = max(self.peak[receiver.name], self.open[receiver.name])
        try:
            gate = self.gates.get(receiver.name)
            if gate is not None:
                await gate.wait()
                self.gates.pop(receiver.name, None)  # one blip: the retry within this round goes through
            status = self.refusing.get(receiver.name)
            if status is not None:
                return DeliveryResult("failed", 1, status, f"HTTP {status}", receiver.name, receiver.url, "n", 0.0, 0.0,
                                      payload)
            self.received.append((receiver.name, payload))
        finally:
            self.open[receiver.name] -= 1
        return DeliveryResult("delivered", 2 if gate else 1, 200, "", receiver.name, receiver.url, "n", 0.0, 0.0, payload)

    def statuses(self, name: str) -> list[tuple[str, str]]:
        return [(p["alerts"][0]["annotations"]["event"], p["alerts"][0]["status"]) for n, p in self.received if n == name]


def fresh_agent(monkeypatch: pytest.MonkeyPatch, table: Table, endpoints: Endpoints, limit: int = 32) -> list[int]:
    """The agent's module state as a worker starts it, over `table`; returns the offsets acknowledged."""
    monkeypatch.setattr(case_webhooks, "alerts_table", table)
    monkeypatch.setattr(case_webhooks, "_slots", webhooks.ReceiverSlots(limit))
    monkeypatch.setattr(case_webhooks, "_lanes", case_webhooks.Lanes())
    monkeypatch.setattr(case_webhooks, "_planned", {})
    monkeypatch.setattr(case_webhooks, "_pending", Counter())
    monkeypatch.setattr(case_webhooks, "_waiting", Counter())
    monkeypatch.setattr(case_webhooks, "_tasks", set())
    monkeypatch.setattr(case_webhooks, "_case_tasks", {})
    monkeypatch.setattr(case_webhooks, "_retrying", set())
    monkeypatch.setattr(case_webhooks, "_indexed_at", None)
    monkeypatch.setattr(case_webhooks, "secret_for", lambda who: b"lifecycle-secret")
    monkeypatch.setattr(case_webhooks, "target_for", lambda who: f"{HOOKS}/{who}")
    monkeypatch.setattr(case_webhooks.webhooks, "attempt", endpoints.attempt)
    return []


def record(value: dict, offset: int, acked: list[int]) -> SimpleNamespace:
    message = SimpleNamespace(value=b"", key=value["case_id"].encode(), topic="cases.events", partition=0, offset=offset)
    return SimpleNamespace(value=value, message=message, ack=lambda: acked.append(offset))


def test_a_retried_assignment_reaches_the_receiver_before_the_resolve_that_ends_it(monkeypatch) -> None:
    """The review's s5: the receiver's first answer to `assigned` is a blip (retried); the `waiting`
    five seconds later must not overtake it, or the receiver ends with a firing alert for a case not theirs."""
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, Table(), endpoints)

    async def run() -> None:
        endpoints.gates["analyst-wren"] = asyncio.Event()
        await case_webhooks.handle(record(case_event("assigned", "wren", NOW), 0, acked))
        await case_webhooks.handle(record(case_event("waiting", "wren", NOW + timedelta(seconds=5),
                                                     reason="reassigned"), 1, acked))
        await until(lambda: len(endpoints.started) == 1, "the assignment's delivery to start")
        assert acked == []
        endpoints.gates["analyst-wren"].set()  # the retry goes through
        await until(lambda: sorted(acked) == [0, 1], "both events acknowledged")

    asyncio.run(run())
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("waiting", "resolved")]
    assert [name for name, _ in endpoints.started] == ["analyst-wren", "analyst-wren"]  # one at a time, in order


def test_a_dead_endpoint_delays_only_its_own_analyst(monkeypatch) -> None:
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, Table(), endpoints, limit=4)

    async def run() -> None:
        endpoints.gates["analyst-wren"] = asyncio.Event()  # down: every delivery hangs until its max_elapsed
        for n in range(6):  # more of wren's cases than there are delivery slots in all
            value = {**case_event("assigned", "wren", NOW), "case_id": f"case-d{n}", "anomaly_id": f"d{n}"}
            await case_webhooks.handle(record(value, n, acked))
        await case_webhooks.handle(record(case_event("assigned", "ash", NOW), 6, acked))
        await until(lambda: endpoints.statuses("analyst-ash") == [("assigned", "firing")], "ash's notification")
        assert 6 in acked and not set(range(6)) & set(acked)
        assert endpoints.peak["analyst-wren"] == webhooks.PER_RECEIVER
        endpoints.gates["analyst-wren"].set()
        await until(lambda: len(acked) == 7, "wren's, once the endpoint is back")

    asyncio.run(run())


def test_after_a_restart_the_next_worker_resolves_the_alert_of_the_analyst_the_case_left(monkeypatch) -> None:
    """A direct reassignment names only the new holder: the old one is in the table, which a restarted
    worker reads; a resolve that was in flight when the first worker stopped is sent by the next."""
    table = Table()
    endpoints = Endpoints()
    first = fresh_agent(monkeypatch, table, endpoints)
    assigned = case_event("assigned", "wren", NOW)
    reassigned = case_event("assigned", "ash", NOW + timedelta(minutes=2), reason="reassigned by wren")

    async def stops_mid_delivery() -> None:
        await case_webhooks.handle(record(assigned, 0, first))
        await until(lambda: first == [0], "the assignment delivered")
        endpoints.gates["analyst-wren"] = asyncio.Event()  # down when the case leaves wren
        await case_webhooks.handle(record(reassigned, 1, first))
        await until(lambda: endpoints.statuses("analyst-ash") == [("assigned", "firing")], "ash's notification")
        for task in list(case_webhooks._tasks):  # the worker stops
            task.cancel()
        await asyncio.gather(*case_webhooks._tasks, return_exceptions=True)

    asyncio.run(stops_mid_delivery())
    assert first == [0] and endpoints.statuses("analyst-wren") == [("assigned", "firing")]

    endpoints.gates.clear()
    second = fresh_agent(monkeypatch, table, endpoints)  # the next worker: the same table, nothing in memory

    async def replays() -> None:
        await case_webhooks.handle(record(reassigned, 1, second))  # from the last committed offset
        await until(lambda: second == [1], "the replayed event acknowledged")

    asyncio.run(replays())
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("assigned", "resolved")]
    assert endpoints.statuses("analyst-ash")[-1] == ("assigned", "firing")
    ash = [p["alerts"][0] for n, p in endpoints.received if n == "analyst-ash"]
    assert ash[0] == ash[-1]  # sent again unchanged: the same body, the same notification id
    assert table[b"case-q1"]["alerts"]["wren"]["open"] is False


def test_a_closed_case_is_forgotten_once_everyone_is_told(monkeypatch) -> None:
    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)

    async def run() -> None:
        await case_webhooks.handle(record(case_event("assigned", "wren", NOW), 0, acked))
        await case_webhooks.handle(record(case_event("acknowledged", "wren", NOW, notify=False), 1, acked))
        await case_webhooks.handle(record(case_event("resolved", "wren", NOW + timedelta(hours=1), notify=False,
                                                     outcome="fixed"), 2, acked))
        await until(lambda: sorted(acked) == [0, 1, 2], "the events acknowledged")

    asyncio.run(run())
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("resolved", "resolved")]
    assert table == {} and case_webhooks._planned == {} and not case_webhooks._pending


def dead_letters(monkeypatch: pytest.MonkeyPatch) -> list[DeliveryResult]:
    """The deliveries the agent dead-letters, instead of the alerts dead-letter topic."""
    dead: list[DeliveryResult] = []

    async def dead_letter(result: DeliveryResult, what: str) -> None:
        dead.append(result)

    monkeypatch.setattr(case_webhooks.webhooks, "dead_letter", dead_letter)
    return dead


def test_a_replayed_event_sends_nothing_to_an_analyst_whose_entry_already_reflects_a_later_one(monkeypatch) -> None:
    """The review's scenario 1: ash's firing (event 1) is delivered and written while wren's (event 0)
    is still in flight, so neither is acknowledged; the next worker replays both against a table that
    already holds event 1's outcome for ash. Before, event 0 was planned against it: ash got a false
    resolve, then event 1's firing again with the notification id a de-duplicating receiver drops,
    and ended resolved while holding the case."""
    table = Table()
    endpoints = Endpoints()
    first = fresh_agent(monkeypatch, table, endpoints)
    assigned = case_event("assigned", "wren", NOW)
    reassigned = case_event("assigned", "ash", NOW + timedelta(minutes=1), reason="reassigned by wren")

    async def stops_with_wren_in_flight() -> None:
        endpoints.gates["analyst-wren"] = asyncio.Event()
        await case_webhooks.handle(record(assigned, 0, first))
        await case_webhooks.handle(record(reassigned, 1, first))
        await until(lambda: "ash" in table.get(b"case-q1", {}).get("alerts", {}), "ash's entry written")
        for task in list(case_webhooks._tasks):  # the worker stops
            task.cancel()
        await asyncio.gather(*case_webhooks._tasks, return_exceptions=True)

    asyncio.run(stops_with_wren_in_flight())
    assert first == [] and endpoints.statuses("analyst-ash") == [("assigned", "firing")]

    endpoints.gates.clear()
    second = fresh_agent(monkeypatch, table, endpoints)

    async def replays() -> None:
        await case_webhooks.handle(record(assigned, 0, second))
        await case_webhooks.handle(record(reassigned, 1, second))
        await until(lambda: sorted(second) == [0, 1], "both replayed events acknowledged")

    asyncio.run(replays())
    assert endpoints.statuses("analyst-ash") == [("assigned", "firing")]  # told once, never resolved
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("assigned", "resolved")]
    alerts = table[b"case-q1"]["alerts"]
    assert (alerts["ash"]["open"], alerts["wren"]["open"]) == (True, False)
    assert (alerts["ash"]["offset"], alerts["wren"]["offset"]) == (1, 1)  # each as of the event it reflects
    # and the same replay once everything was told changes nothing at all
    third = fresh_agent(monkeypatch, table, endpoints)
    before = len(endpoints.started)

    async def replays_again() -> None:
        await case_webhooks.handle(record(assigned, 0, third))
        await case_webhooks.handle(record(reassigned, 1, third))
        await until(lambda: sorted(third) == [0, 1], "the events acknowledged")

    asyncio.run(replays_again())
    assert len(endpoints.started) == before and table[b"case-q1"]["alerts"] == alerts


def test_a_receiver_over_its_cap_has_its_new_firing_notifications_dead_lettered_and_nobody_waits(monkeypatch) -> None:
    """Before, MAX_PENDING waiting case events were shared by every analyst and the agent waited on them,
    so one dead endpoint's backlog eventually held up every analyst on the partition. A resolve over
    the cap is never dead-lettered (the receiver would show the case firing for good): it goes to the
    timer, in its lane's turn, after the firing it ends."""
    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)
    dead = dead_letters(monkeypatch)
    monkeypatch.setattr(case_webhooks, "MAX_PENDING_PER_RECEIVER", 2)

    def wrens(n: int) -> dict[str, Any]:
        return {**case_event("assigned", "wren", NOW), "case_id": f"case-d{n}", "anomaly_id": f"d{n}"}

    async def run() -> None:
        endpoints.gates["analyst-wren"] = asyncio.Event()  # down
        await case_webhooks.handle(record(wrens(0), 0, acked))
        await case_webhooks.handle(record(wrens(1), 1, acked))
        # wren's cap reached: nothing more is queued for wren, and nothing waits for the two in flight
        handed_back = {**case_event("waiting", "wren", NOW + timedelta(minutes=1), reason="handed back by wren"),
                       "case_id": "case-d0", "anomaly_id": "d0"}
        await asyncio.wait_for(case_webhooks.handle(record(handed_back, 2, acked)), 1.0)
        await asyncio.wait_for(case_webhooks.handle(record(wrens(3), 3, acked)), 1.0)
        await asyncio.wait_for(case_webhooks.handle(record(case_event("assigned", "ash", NOW), 4, acked)), 1.0)
        await until(lambda: sorted(acked) == [3, 4], "the events of the dead-lettered firing and of ash acknowledged")
        assert endpoints.statuses("analyst-ash") == [("assigned", "firing")]
        assert "wren" not in table.get(b"case-d0", {}).get("alerts", {})  # the resolve waits for the firing's turn
        endpoints.gates["analyst-wren"].set()
        await until(lambda: sorted(acked) == [0, 1, 2, 3, 4], "wren's first two, once the endpoint is back")
        # In its turn the receiver had room again: the resolve went out then (it was deferred to the
        # timer, a minute late, because the cap was judged when it was queued).
        assert "resolve" not in table[b"case-d0"]["alerts"]["wren"]
        assert case_webhooks.retry_resolves(time.time() + 3600, lambda key: True) == 0

    asyncio.run(run())
    assert [(r.receiver, r.attempts) for r in dead] == [("analyst-wren", 0)]
    assert all("analyst-wren" in r.last_error and "MAX_PENDING_PER_RECEIVER" in r.last_error
               and "2 notifications waiting" in r.last_error for r in dead)
    assert [r.payload["alerts"][0]["annotations"]["event"] for r in dead] == ["assigned"]
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing")] * 2 + [("waiting", "resolved")]
    assert [p["alerts"][0]["labels"]["case_id"] for n, p in endpoints.received if n == "analyst-wren"][-1] == "case-d0"
    assert table[b"case-d0"]["alerts"]["wren"] == {"target": f"{HOOKS}/wren", "startsAt": "2024-03-04T10:00:00.000Z",
                                                   "open": False, "partition": 0, "offset": 2}
    assert not case_webhooks._waiting and not case_webhooks._pending


def test_a_resolve_whose_turn_finds_its_receiver_full_goes_to_the_timer_not_the_dead_letters(monkeypatch) -> None:
    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)
    dead = dead_letters(monkeypatch)
    monkeypatch.setattr(case_webhooks, "MAX_PENDING_PER_RECEIVER", 2)

    def wrens(kind: str, n: int, minutes: int = 0, **extra: str) -> dict[str, Any]:
        return {**case_event(kind, "wren", NOW + timedelta(minutes=minutes), **extra), "case_id": f"case-d{n}",
                "anomaly_id": f"d{n}"}

    async def run() -> None:
        await case_webhooks.handle(record(wrens("assigned", 9), 0, acked))
        await until(lambda: acked == [0], "case d9's assignment delivered")
        endpoints.gates["analyst-wren"] = asyncio.Event()  # down, and then full
        await case_webhooks.handle(record(wrens("assigned", 0), 1, acked))
        await case_webhooks.handle(record(wrens("assigned", 1), 2, acked))
        left = wrens("waiting", 9, 1, reason="handed back by wren")
        await asyncio.wait_for(case_webhooks.handle(record(left, 3, acked)), 1.0)
        await until(lambda: 3 in acked, "the resolve's event acknowledged, its resolve kept for the timer")
        entry = table[b"case-d9"]["alerts"]["wren"]
        assert entry["open"] is True and entry["resolve"]["tries"] == 0  # no round spent
        endpoints.gates["analyst-wren"].set()
        await until(lambda: sorted(acked) == [0, 1, 2, 3], "the firings, once the endpoint is back")
        assert case_webhooks.retry_resolves(entry["resolve"]["next_at"], lambda key: True) == 1
        await until(lambda: "resolve" not in table[b"case-d9"]["alerts"]["wren"], "the timer's round delivered")

    asyncio.run(run())
    assert dead == []
    assert endpoints.statuses("analyst-wren")[-1] == ("waiting", "resolved")


def test_an_update_after_a_machine_close_keeps_the_case_closed_and_forgotten(monkeypatch) -> None:
    """The review's scenario 2: new evidence on a machine-closed case (an `updated` naming no one),
    while the resolve of the analyst it left was still in flight, made the case open again in the
    agent's state, and its entry stayed in the table for good."""
    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)

    async def run() -> None:
        await case_webhooks.handle(record(case_event("assigned", "wren", NOW), 0, acked))
        await until(lambda: acked == [0], "the assignment")
        endpoints.gates["analyst-wren"] = asyncio.Event()  # the resolve is slow
        await case_webhooks.handle(record(case_event("waiting", "wren", NOW + timedelta(minutes=1),
                                                     reason="handed back by wren"), 1, acked))
        await case_webhooks.handle(record(case_event("auto_resolved", None, NOW + timedelta(minutes=2),
                                                     reason="monitor resolved it"), 2, acked))
        await case_webhooks.handle(record(case_event("updated", None, NOW + timedelta(minutes=3),
                                                     reason="new evidence"), 3, acked))
        endpoints.gates["analyst-wren"].set()
        await until(lambda: sorted(acked) == [0, 1, 2, 3], "the events acknowledged")

    asyncio.run(run())
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("waiting", "resolved")]
    assert table == {} and case_webhooks._planned == {}


def test_closed_stays_set_until_an_event_puts_the_case_back_in_play() -> None:
    state, _ = plan(None, case_event("auto_resolved", None, NOW))
    assert state == {"alerts": {}, "closed": True}
    for kind in ("updated", "labelled", "acknowledged"):
        after, notices = plan(state, case_event(kind, None, NOW))
        assert after is not None and after["closed"] and notices == [], kind
    for kind in ("reopened", "waiting", "assigned"):
        after, _ = plan(state, case_event(kind, "wren" if kind == "assigned" else None, NOW))
        assert after is not None and not after["closed"], kind


def test_a_failed_resolve_is_retried_later_and_dead_lettered_only_after_its_rounds(monkeypatch) -> None:
    """Before, one failed round of a resolve (a 401, a timeout) dead-lettered it and wrote the entry
    closed, so it was never sent again and the receiver showed the case firing for good."""
    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)
    dead = dead_letters(monkeypatch)
    key = b"case-q1"

    async def run() -> None:
        await case_webhooks.handle(record(case_event("assigned", "wren", NOW), 0, acked))
        await until(lambda: acked == [0], "the assignment")
        endpoints.refusing["analyst-wren"] = 401
        await case_webhooks.handle(record(case_event("resolved", "wren", NOW + timedelta(hours=1), notify=False,
                                                     outcome="fixed"), 1, acked))
        await until(lambda: acked == [0, 1], "the resolve's event acknowledged once its failure is recorded")
        entry = table[key]["alerts"]["wren"]
        assert entry["open"] is True and entry["resolve"]["tries"] == 1 and table[key]["closed"] is True
        payload = entry["resolve"]["payload"]
        later = entry["resolve"]["next_at"]
        assert later - time.time() == pytest.approx(case_webhooks.RESOLVE_RETRY_SECONDS, abs=5)
        owned = lambda key: True  # this worker owns every partition
        assert case_webhooks.retry_resolves(later - 1, owned) == 0  # not due yet
        for tries in range(2, case_webhooks.RESOLVE_ROUNDS):  # the timer's rounds, each failing
            assert case_webhooks.retry_resolves(table[key]["alerts"]["wren"]["resolve"]["next_at"], owned) == 1
            await until(lambda tries=tries: table[key]["alerts"]["wren"]["resolve"]["tries"] == tries,
                        f"round {tries} failed")
            assert not dead
        assert case_webhooks.retry_resolves(table[key]["alerts"]["wren"]["resolve"]["next_at"], owned) == 1
        await until(lambda: key not in table, "the case forgotten once its last round is dead-lettered")
        [result] = dead
        assert result.payload == payload and result.status == 401

    asyncio.run(run())
    sent = [p for n, p in endpoints.started if n == "analyst-wren"]
    assert len(sent) == 1 + case_webhooks.RESOLVE_ROUNDS and all(p == sent[1] for p in sent[1:])  # the same resolve
    assert not case_webhooks._pending and not case_webhooks._planned


def test_a_failed_resolve_goes_out_with_the_cases_next_event_or_the_timer(monkeypatch) -> None:
    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)
    dead = dead_letters(monkeypatch)
    key = b"case-q1"

    async def run() -> None:
        await case_webhooks.handle(record(case_event("assigned", "wren", NOW), 0, acked))
        await until(lambda: acked == [0], "the assignment")
        endpoints.refusing["analyst-wren"] = 503
        await case_webhooks.handle(record(case_event("assigned", "ash", NOW + timedelta(minutes=1)), 1, acked))
        await until(lambda: acked == [0, 1], "the events acknowledged")
        assert table[key]["alerts"]["wren"]["resolve"]["tries"] == 1
        del endpoints.refusing["analyst-wren"]
        # the case's next event that resolves wren's alert sends the failed resolve again, as it was,
        # once it is due (before, at once: a busy case spent its 6 rounds in a fraction of a second)
        await case_webhooks.handle(record(case_event("updated", "ash", NOW + timedelta(minutes=2)), 2, acked))
        await until(lambda: acked == [0, 1, 2], "the update acknowledged")
        assert endpoints.statuses("analyst-wren") == [("assigned", "firing")]  # not due: not sent
        assert table[key]["alerts"]["wren"]["resolve"]["tries"] == 1
        table[key]["alerts"]["wren"]["resolve"]["next_at"] = time.time() - 1  # its backoff has passed
        await case_webhooks.handle(record(case_event("escalated", "ash", NOW + timedelta(minutes=3)), 3, acked))
        await until(lambda: acked == [0, 1, 2, 3], "the escalation acknowledged")
        assert table[key]["alerts"]["wren"] == {"target": f"{HOOKS}/wren", "startsAt": "2024-03-04T10:00:00.000Z",
                                                "open": False, "partition": 0, "offset": 3}
        # a resolve that fails once more is sent by the timer, when due, and not before
        endpoints.refusing["analyst-ash"] = 401
        await case_webhooks.handle(record(case_event("waiting", "ash", NOW + timedelta(minutes=4),
                                                     reason="handed back by ash"), 4, acked))
        await until(lambda: acked == [0, 1, 2, 3, 4], "the hand-back acknowledged")
        del endpoints.refusing["analyst-ash"]
        due = table[key]["alerts"]["ash"]["resolve"]["next_at"]
        assert case_webhooks.retry_resolves(due - 1, lambda key: True) == 0
        assert case_webhooks.retry_resolves(due, lambda key: False) == 0  # another worker's partition
        assert case_webhooks.retry_resolves(due, lambda key: True) == 1
        await until(lambda: "resolve" not in table[key]["alerts"]["ash"], "the timer's round delivered")

    asyncio.run(run())
    assert not dead
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("assigned", "resolved")]
    wren = [p["alerts"][0] for n, p in endpoints.received if n == "analyst-wren"]
    assert wren[-1]["endsAt"] == "2024-03-04T10:01:00.000Z"  # when the case left wren, not the retry's event
    assert endpoints.statuses("analyst-ash") == [("assigned", "firing"), ("updated", "firing"), ("escalated", "firing"),
                                                 ("waiting", "resolved")]
    assert table[key]["alerts"]["ash"]["open"] is False


def test_a_case_events_next_event_leaves_a_failed_resolve_to_its_backoff() -> None:
    """The review's burn_rounds: a busy case (new evidence every few seconds) sent a failed resolve again
    with each event, so its 6 rounds were spent in a fraction of a second, not over half an hour."""
    state, _ = plan(None, case_event("assigned", "wren", NOW), position=(0, 0))
    mark = {"payload": {"resolve": "as it was"}, "tries": 1, "next_at": 1000.0}
    state = {**state, "alerts": {"wren": {**state["alerts"]["wren"], "resolve": mark}}}
    event = case_event("updated", "ash", NOW + timedelta(minutes=1), notify=False)
    after, notices = plan(state, event, position=(0, 5), now=999.0)
    assert notices == [] and after["alerts"]["wren"] == state["alerts"]["wren"]  # not due: left to the timer
    after, [notice] = plan(state, event, position=(0, 5), now=1000.0)
    assert (notice.analyst, notice.payload, notice.tries) == ("wren", mark["payload"], 1)
    assert after["alerts"]["wren"]["open"] is False and "resolve" not in after["alerts"]["wren"]


def test_a_notification_sent_in_its_turn_after_an_overflow_counts_against_the_cap(monkeypatch) -> None:
    # Re-judged in its turn and sent, it was not counted: the cap let more in than it says.
    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)
    monkeypatch.setattr(case_webhooks, "MAX_PENDING_PER_RECEIVER", 1)
    counted: list[int] = []
    real_deliver = case_webhooks.deliver

    async def deliver(receiver, payload):
        counted.append(case_webhooks._waiting.get(receiver.name, 0))
        return await real_deliver(receiver, payload)

    monkeypatch.setattr(case_webhooks, "deliver", deliver)

    async def run() -> None:
        endpoints.gates["analyst-wren"] = asyncio.Event()
        await case_webhooks.handle(record(case_event("assigned", "wren", NOW), 0, acked))
        escalated = case_event("escalated", "wren", NOW + timedelta(minutes=1), reason="not acknowledged")
        await case_webhooks.handle(record(escalated, 1, acked))  # over the cap when queued
        endpoints.gates["analyst-wren"].set()
        await until(lambda: sorted(acked) == [0, 1], "both delivered")

    asyncio.run(run())
    assert counted == [1, 1] and not case_webhooks._waiting
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("escalated", "firing")]


def test_an_overflowed_notification_never_writes_its_entry_past_one_still_in_flight(monkeypatch) -> None:
    """The review's overflow_replay: wren's `assigned` in flight, her receiver at its cap, so the
    `escalated` after it was dead-lettered at once and her entry written at its offset; the worker
    stopped before the `assigned` was delivered, and the next owner skipped both events (the entry
    "reflected" them): wren never heard the case was hers."""
    table = Table()
    endpoints = Endpoints()
    first = fresh_agent(monkeypatch, table, endpoints)
    dead = dead_letters(monkeypatch)
    monkeypatch.setattr(case_webhooks, "MAX_PENDING_PER_RECEIVER", 1)
    assigned = case_event("assigned", "wren", NOW)
    escalated = case_event("escalated", "wren", NOW + timedelta(minutes=1), reason="not acknowledged")

    async def stops_with_the_assignment_in_flight() -> None:
        endpoints.gates["analyst-wren"] = asyncio.Event()
        await case_webhooks.handle(record(assigned, 0, first))
        await case_webhooks.handle(record(escalated, 1, first))  # over the cap: in the lane, after the assignment
        await until(lambda: len(endpoints.started) == 1, "the assignment's delivery to start")
        for _ in range(20):
            await asyncio.sleep(0)
        assert table == {} and dead == [] and first == []  # nothing written past the assignment in flight
        for task in list(case_webhooks._tasks):  # the worker stops
            task.cancel()
        await asyncio.gather(*case_webhooks._tasks, return_exceptions=True)

    asyncio.run(stops_with_the_assignment_in_flight())
    endpoints.gates.clear()
    second = fresh_agent(monkeypatch, table, endpoints)

    async def replays() -> None:
        await case_webhooks.handle(record(assigned, 0, second))
        await case_webhooks.handle(record(escalated, 1, second))
        await until(lambda: sorted(second) == [0, 1], "both replayed events acknowledged")

    asyncio.run(replays())
    # was: nothing at all; the escalation, over the cap when queued, had room in its turn
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("escalated", "firing")]
    assert dead == []
    assert table[b"case-q1"]["alerts"]["wren"]["offset"] == 1


def test_work_planned_before_a_rebalance_writes_and_acknowledges_nothing(monkeypatch) -> None:
    """The review's twoworkers: a delivery still running on a worker that lost the partition wrote its
    stale row into the changelog after the new owner's newer ones, so a later owner recovered a table
    without ash's open alert and never resolved it."""
    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)
    monkeypatch.setattr(case_webhooks.app, "rebalancing_count", 7)

    async def run() -> None:
        endpoints.gates["analyst-wren"] = asyncio.Event()  # a slow delivery
        await case_webhooks.handle(record(case_event("assigned", "wren", NOW), 0, acked))
        await until(lambda: len(endpoints.started) == 1, "the delivery to start")
        case_webhooks.app.rebalancing_count = 8  # a rebalance begins (the partition's revocation is next)
        endpoints.gates["analyst-wren"].set()
        await until(lambda: not case_webhooks._tasks, "the delivery and its acknowledgement to end")
        assert table == {} and acked == []  # was: the row written and the event acknowledged
        assert case_webhooks._pending == {"case-q1": 1} and "case-q1" in case_webhooks._planned  # left for forget()

    asyncio.run(run())


def test_a_revoked_partitions_cases_are_stopped_and_forgotten_and_replayed_by_their_owner(monkeypatch) -> None:
    from faust.types import TP

    table = Table()
    endpoints = Endpoints()
    acked = fresh_agent(monkeypatch, table, endpoints)
    monkeypatch.setattr(case_webhooks.app, "rebalancing_count", 3)
    topic = case_webhooks.settings.topic_case_events
    mine = key_partition(b"case-q1")
    other = {**case_event("assigned", "ash", NOW), "case_id": "case-other"}
    assert key_partition(b"case-other") != mine or pytest.skip("both cases in one partition")
    assigned = case_event("assigned", "wren", NOW)

    async def run() -> None:
        endpoints.gates["analyst-wren"] = asyncio.Event()
        endpoints.gates["analyst-ash"] = asyncio.Event()
        await case_webhooks.handle(record(assigned, 0, acked))
        await case_webhooks.handle(record(case_event("waiting", "wren", NOW + timedelta(minutes=1)), 1, acked))
        await case_webhooks.handle(record(other, 2, acked))
        await until(lambda: len(endpoints.started) == 2, "both deliveries to start")
        case_webhooks.app.rebalancing_count = 4
        await case_webhooks.on_partitions_revoked(case_webhooks.app, {TP(topic, mine), TP("other.topic", 0)})
        assert "case-q1" not in case_webhooks._case_tasks  # forgotten at once; the cancelled tasks end later
        assert "case-q1" not in case_webhooks._planned and "case-q1" not in case_webhooks._pending
        await until(lambda: "analyst-wren" not in case_webhooks._waiting, "the cancelled deliveries to release wren")
        assert "case-other" in case_webhooks._pending
        endpoints.gates["analyst-wren"].set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert table == {} and acked == []
        # the partition given back to this worker: its owner replays the events from the committed offset
        await case_webhooks.handle(record(assigned, 0, acked))
        await case_webhooks.handle(record(case_event("waiting", "wren", NOW + timedelta(minutes=1)), 1, acked))
        await until(lambda: sorted(acked) == [0, 1], "the replayed events acknowledged")
        endpoints.gates["analyst-ash"].set()
        await until(lambda: not case_webhooks._tasks, "the other case's work to end")

    asyncio.run(run())
    assert endpoints.statuses("analyst-wren") == [("assigned", "firing"), ("waiting", "resolved")]
    assert acked == [0, 1]  # case-other's event was planned before the rebalance: its owner replays it
    assert b"case-other" not in table and table[b"case-q1"]["alerts"]["wren"]["open"] is False
    assert not case_webhooks._waiting


class CountingTable(Table):
    scans = 0

    def items(self):
        self.scans += 1
        return super().items()

    def keys(self):
        self.scans += 1
        return super().keys()


def test_the_retry_timer_neither_hashes_nor_scans_rows_without_a_retry_mark(monkeypatch) -> None:
    """The review's timer_cost: every tick hashed every row's key for ownership before looking for a
    `resolve` mark: 100k cases blocked the loop half a second every 15 s."""
    table = CountingTable({f"case-{n}".encode(): {"alerts": {"wren": {"target": "t", "startsAt": "s", "open": True}}}
                           for n in range(1000)})
    mark = {"payload": {}, "tries": 1, "next_at": 10.0}
    table[b"case-failed"] = {"alerts": {"wren": {"target": "t", "startsAt": "s", "open": True, "resolve": mark}}}
    fresh_agent(monkeypatch, table, Endpoints())
    asked: list[bytes] = []

    def owned(key: bytes) -> bool:
        asked.append(key)
        return False

    for _ in range(3):
        assert case_webhooks.retry_resolves(5.0, owned) == 0
    assert asked == [b"case-failed"] * 3  # was: 1001 keys each tick
    assert table.scans == 1  # the whole table once, then the rows with a mark
    table[b"case-recovered"] = {"alerts": {"ash": {"target": "t", "startsAt": "s", "open": True, "resolve": mark}}}
    monkeypatch.setattr(case_webhooks.app, "rebalancing_count", 1)  # rows recovered from the changelog
    assert case_webhooks.retry_resolves(5.0, owned) == 0
    assert asked[3:] == [b"case-failed", b"case-recovered"] and table.scans == 2
