"""Case webhooks: tell an analyst, on their roster `notify` URL, that a case is theirs (assigned,
escalated, updated) and, when it stops being theirs, that it no longer is.

Each case an analyst holds is one Alertmanager alert for them: `alertname: case_assigned` with labels
`case_id`, `analyst`, `scope` and `anomaly_id`, the same on every event of the case while it is theirs,
so the same `fingerprint` (Alertmanager's hash of the labels, `alerts.payload.fingerprint`). It fires
when the case is assigned to them, and fires again (same startsAt) when it is escalated or its severity
raised; it is resolved, with endsAt, when the case leaves them by any way the scheduler has: taken off
them (`waiting`: handed back, handed on, off shift, off the roster, over a lowered capacity),
reassigned to someone else (`assigned` to another), escalated away (an `escalated` followed by the
case waiting or going to someone else), resolved. What happened is the `event` annotation, never a
label, and the severity is an annotation too: a label would make a new alert of every change.

Which analysts' alerts are firing for a case is kept in the `case-webhook-alerts` table, keyed like
`cases.events` (by case id), as each receiver was last told (an entry is written once its delivery is
delivered or dead-lettered), and forgotten once the case is closed and everyone told. Some events do
not name whom the case left (a direct reassignment names only the new holder; a `waiting` after an
escalation names no one; an analyst removed from the roster has no `notify` left): the table does.
Each entry records the position (partition, offset) in `cases.events` of the event it reflects, and
an entry is never overwritten by an earlier event's outcome: an event replayed after a restart (the
consumer commits only past acknowledged events, but one analyst's entry may already reflect a later
one) changes, and sends, nothing for an analyst whose entry is at or past it. `closed` stays set
until an event puts the case back in play (`REOPENS`).

The scheduler puts the target in the events that fire (`notify`), so this agent runs on whichever
worker owns each `cases.events` partition, away from the scheduler's single writer: a slow receiver
never delays assignment. A resolve goes to the URL the alert fired to. It signs with the analyst's
own secret (roster `notify_secret_file`), so one analyst's receiver cannot forge notifications to
another's; an analyst without one gets the shared FINSENTRY_CASE_WEBHOOK_SECRET_FILE. It reads the
roster through its own watcher, so an edit reaches it without taking the scheduler's reload.
Payloads are Alertmanager v4 with one alert, signed and retried by `alerts.delivery.deliver`
(streams/webhooks.py counts and dead-letters).

Order and fairness: one analyst's notifications of one case go out one at a time, in the order of
the case's events (a retried `assigned` is never overtaken by its resolve), and each one's entry is
written in that order too; each receiver holds at most `webhooks.PER_RECEIVER` delivery slots and
all receivers `MAX_IN_FLIGHT`, so a dead endpoint delays only its own analyst. At most
`MAX_PENDING_PER_RECEIVER` notifications wait for (or are in) delivery to one receiver; a further
firing one is dead-lettered when its turn in its lane comes, never sent, and a further resolve is
never dropped: its entry stays open with a `resolve` mark, for the timer to send it once the
receiver has room. A firing notification that fails its delivery round goes to the alerts
dead-letter topic and is counted. A resolve that fails a round (not refused for good) stays in its
entry, which stays open with a `resolve` mark, and is tried again by a timer with backoff
(`RESOLVE_RETRY_SECONDS`, doubled each round) or by the case's next event that resolves it once the
mark is due, for `RESOLVE_ROUNDS` rounds in all, then dead-lettered. A case event is acknowledged
only once its webhooks are delivered, dead-lettered or (a failed resolve) marked for another round,
and the table written, so one in flight when its worker stops is delivered by the next, which finds
in the table what each receiver was told.

Rebalances: Kafka's (eager) rebalance takes every partition from every worker, and Faust seeks the
ones it gives back to their committed offsets, so every event not yet acknowledged is replayed by
the partition's owner after it. Work planned before a rebalance began therefore writes nothing,
changes nothing in memory and acknowledges nothing once it has (the owner's replay does it), and
on revocation the revoked cases' deliveries are stopped and what was planned for them forgotten: a
worker that lost a partition never writes a stale row into the table's changelog.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import faust

from alerts.delivery import DeliveryResult
from alerts.pages import page_url
from alerts.payload import ZERO_TIME, Alert, build_payload, ended_now, fingerprint
from alerts.receivers import Receiver
from alerts.records import iso
from scheduler import RosterWatcher
from streams import failures, metrics, webhooks
from streams.app import app, case_events_topic, settings
from streams.errors import RecordFault, dead_letter_fault, record_fault, send_dead_letter
from streams.failures import guarded_timer
from streams.notify_state import external_url
from streams.ownership import key_partition, owns_recovered
from streams.tables import DurableTable
from streams.usage import config_exit

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 32  # deliveries at once, all receivers; each receiver at most webhooks.PER_RECEIVER
MAX_PENDING_PER_RECEIVER = 50  # notifications waiting for or in delivery to one receiver; more are dead-lettered
RESOLVE_ROUNDS = 6  # delivery rounds of one resolve (the first and its retries) before it is dead-lettered
RESOLVE_RETRY_SECONDS = 60.0  # after a resolve's first failed round; doubled after each, at most RESOLVE_RETRY_MAX
RESOLVE_RETRY_MAX = 3600.0
RETRY_TICK_SECONDS = 15.0  # how often the timer looks for failed resolves due for another round
ALERTNAME = "case_assigned"  # the alert "this case is assigned to you": firing while it is, resolved after
SUMMARIES = {
    "assigned": "{case_id} ({severity}, {scope}) is assigned to you",
    "escalated": "{case_id} ({severity}, {scope}) escalated: {reason}",
    "waiting": "{case_id} ({scope}) was taken off you: {reason}",
    "updated": "{case_id} ({scope}) is now {severity}, with tighter deadlines: {reason}",
    "resolved": "{case_id} ({scope}) is resolved",
    "auto_resolved": "{case_id} ({scope}) was closed by the machine: {reason}",
}
HOLDS = frozenset({"assigned", "escalated", "updated", "acknowledged"})  # the event's analyst (if any) holds it after
LEAVES = frozenset({"waiting", "resolved", "auto_resolved"})  # nobody holds the case after it
CLOSES = frozenset({"resolved", "auto_resolved"})
FIRES = frozenset({"assigned", "escalated", "updated"})  # with `notify`: the holder's alert fires (again)
REOPENS = frozenset({"created", "reopened", "assigned", "waiting", "escalated"})  # a closed case is in play again
Position = tuple[int, int] | None  # (partition, offset) of a case event in cases.events; None: unknown


@cache
def webhook_secret() -> bytes | None:
    """The shared secret, read once: when the worker starts (streams/worker.py `configure`), not at import."""
    path = settings.case_webhook_secret_file
    if path is None:
        return None
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise config_exit("case_webhook_secret_file (FINSENTRY_CASE_WEBHOOK_SECRET_FILE): "
                          f"cannot read {path} ({exc.strerror})") from None
    if not secret:
        raise config_exit(f"case_webhook_secret_file: {path} is empty; put the shared secret in it")
    return secret.encode()


@cache
def roster_watcher() -> RosterWatcher | None:
    """This agent's view of the roster; the scheduler validated the file at start (streams/case_state.py)."""
    return RosterWatcher(settings.roster) if settings.roster is not None else None


def receiver_name(analyst_id: str) -> str:
    """The `receiver` label of an analyst's deliveries in finsentry_webhook_deliveries_total."""
    return f"analyst-{analyst_id}"


def analyst_receivers() -> tuple[str, ...]:
    """The receivers of the roster's analysts notified by webhook (a `notify` URL and a secret to sign
    with), whose delivery series must exist at 0 before their first delivery: `increase()` cannot see a
    series born at 1, so their first dead letter would page no one. Exposed at start-up
    (streams/worker.py) and by `poll_roster` when a reload adds one."""
    watcher = roster_watcher()
    if watcher is None:
        return ()
    return tuple(receiver_name(analyst_id) for analyst_id, analyst in watcher.roster.analysts.items()
                 if analyst.notify and (analyst.notify_secret is not None or webhook_secret() is not None))


def poll_roster() -> None:
    """Reload the roster if its file changed; the analysts it adds get their delivery series at 0."""
    watcher = roster_watcher()
    if watcher is not None and watcher.poll() is not None:
        metrics.expose_receivers(analyst_receivers())


def _roster_analyst(analyst_id: str) -> Any:
    watcher = roster_watcher()
    if watcher is None:
        return None
    poll_roster()
    return watcher.roster.analysts.get(analyst_id)


def secret_for(analyst_id: str) -> bytes | None:
    """The analyst's own secret from the roster in force, else the shared one, else None (not notified)."""
    analyst = _roster_analyst(analyst_id)
    if analyst is not None and analyst.notify_secret is not None:
        return analyst.notify_secret
    return webhook_secret()


def target_for(analyst_id: str) -> str | None:
    """The analyst's `notify` URL in the roster in force (events that take a case off carry none)."""
    analyst = _roster_analyst(analyst_id)
    return analyst.notify if analyst is not None and analyst.notify else None


# ---- the alert of a case for an analyst (pure) ---------------------------------------------------

def _summary(event: dict[str, Any], analyst: str, status: str, holder: str | None) -> str:
    fields = {"reason": "", **event}
    kind = event["event"]
    if status == "resolved" and kind not in LEAVES:  # it went to someone else, or out of the queue
        taken = f"{{case_id}} ({{scope}}) was taken off you: now with {holder}" if holder else SUMMARIES["waiting"]
        return (taken + (" ({reason})" if holder and fields["reason"] else "")).format(**fields)
    if kind == "resolved" and event.get("analyst") not in (None, analyst):
        return (SUMMARIES["resolved"] + " by {analyst}").format(**fields)
    return SUMMARIES.get(kind, "{case_id}: {event}").format(**fields)


def alert_payload(event: dict[str, Any], analyst: str, status: str, starts_at: str,
                  holder: str | None = None, external_url: str = "") -> dict[str, Any]:
    """The payload of `analyst`'s alert for the event's case: `firing`, or `resolved` at the event's time.
    `starts_at` is when the case became theirs (Alertmanager's time format); `holder` whom it went to;
    `external_url` the deployment's URL, under which generatorURL opens the anomaly's page (a browser:
    the console's page of the case), as an anomaly's alert does."""
    labels = {"alertname": ALERTNAME, "case_id": event["case_id"], "analyst": analyst, "scope": event["scope"],
              "anomaly_id": event["anomaly_id"]}
    annotations = {"summary": _summary(event, analyst, status, holder), "event": event["event"],
                   "reason": event.get("reason", ""), "severity": event["severity"]}
    link = page_url(external_url, event["anomaly_id"])
    alert = Alert("firing", labels, annotations, starts_at, ZERO_TIME, link, fingerprint(labels))
    if status == "resolved":
        alert = Alert.from_json(ended_now(alert.to_json(), datetime.fromisoformat(event["at"]).timestamp()))
    return build_payload(f"analyst-{analyst}", {"case_id": event["case_id"]}, [alert], external_url)


def _time(event: dict[str, Any]) -> str:
    return iso(datetime.fromisoformat(event["at"]))


def case_payload(event: dict[str, Any], external_url: str = "") -> dict[str, Any]:
    """One event's payload for its `notify` analyst, on its own: firing, or resolved for an event that
    takes the case off them, started at the event's time (`plan` keeps the time the case became theirs)."""
    status = "resolved" if event["event"] in LEAVES else "firing"
    return alert_payload(event, event["notify"]["analyst"], status, _time(event), external_url=external_url)


@dataclass(frozen=True)
class Notice:
    """One notification to send: `analyst`'s alert of the case, and what their entry becomes once sent."""

    analyst: str
    target: str
    entry: dict[str, Any]  # {target, startsAt, open, partition, offset}
    payload: dict[str, Any]
    tries: int = 0  # failed delivery rounds of this resolve before this one


def _reflects(entry: dict[str, Any], position: Position) -> bool:
    """The entry already reflects the event at `position`, or a later one: a replayed event."""
    return (position is not None and entry.get("partition") == position[0]
            and entry.get("offset", -1) >= position[1])


def _later(entry: dict[str, Any], than: dict[str, Any]) -> bool:
    """`entry` reflects a later event of the case than `than` does."""
    return ("offset" in entry and entry.get("partition") == than.get("partition")
            and entry["offset"] > than.get("offset", -1))


def _entry(target: str, starts_at: str, is_open: bool, position: Position) -> dict[str, Any]:
    entry = {"target": target, "startsAt": starts_at, "open": is_open}
    return entry if position is None else {**entry, "partition": position[0], "offset": position[1]}


def plan(state: dict[str, Any] | None, event: dict[str, Any],
         target_of: Callable[[str], str | None] = lambda analyst: None,
         position: Position = None, now: float = math.inf,
         external_url: str = "") -> tuple[dict[str, Any] | None, list[Notice]]:
    """What a case event means for the analysts' alerts of its case: the case's next state and the
    notifications to send. `state` is {"alerts": {analyst: {target, startsAt, open, partition, offset,
    resolve?}}, "closed"}: whose alert is firing, and where, as of which event (`position`, the event's
    place in cases.events: an analyst whose entry is at or past it was told already, and is left as it
    is). Every analyst whose alert is open and who does not hold the case after the event gets it
    resolved (a resolve that failed before, `resolve`, is sent again as it was once its `next_at` is
    past at `now`, else left to the timer, its entry as it is); the holder's fires
    when the event carries their `notify`. `target_of` finds an analyst's URL for an event that takes a
    case off someone this state does not know (a case assigned before this state was kept, or
    forgotten after it closed). `closed` stays set until an event puts the case back in play.
    `external_url`: the links' base (`alert_payload`)."""
    kind = event["event"]
    closed = kind in CLOSES or (bool((state or {}).get("closed")) and kind not in REOPENS)
    alerts = dict((state or {}).get("alerts", {}))
    if kind in HOLDS:
        holder = event.get("analyst")
    elif kind in LEAVES:
        holder = None
    else:  # created, labelled, reopened...: nobody's holding changes
        return (None if state is None else {**state, "alerts": alerts, "closed": closed}), []
    notices: list[Notice] = []
    for analyst, entry in sorted(alerts.items()):
        if analyst != holder and entry["open"] and not _reflects(entry, position):
            failed = entry.get("resolve")
            if failed is not None and failed["next_at"] > now:
                continue  # its backoff holds for the case's events too: the timer sends it when due
            ended = _entry(entry["target"], entry["startsAt"], False, position)
            alerts[analyst] = ended
            notices.append(Notice(analyst, entry["target"], ended, failed["payload"], failed["tries"]) if failed else
                           Notice(analyst, entry["target"], ended,
                                  alert_payload(event, analyst, "resolved", entry["startsAt"], holder, external_url)))
    notify = event.get("notify")
    named = event.get("analyst")
    if kind in FIRES and holder is not None and isinstance(notify, dict) and notify.get("analyst") == holder:
        entry = alerts.get(holder)
        if entry is None or not _reflects(entry, position):
            starts = entry["startsAt"] if entry is not None and entry["open"] else _time(event)
            opened = _entry(notify["target"], starts, True, position)
            alerts[holder] = opened
            notices.append(Notice(holder, notify["target"], opened, alert_payload(event, holder, "firing", starts, external_url=external_url)))
    elif kind in LEAVES and isinstance(named, str) and named not in alerts:
        mine = isinstance(notify, dict) and notify.get("analyst") == named
        target = notify.get("target") if mine else target_of(named)
        if target:
            ended = _entry(target, _time(event), False, position)
            alerts[named] = ended
            notices.append(Notice(named, target, ended, alert_payload(event, named, "resolved", _time(event),
                                                                             external_url=external_url)))
    return {"alerts": alerts, "closed": closed}, notices


def retrying(state: dict[str, Any]) -> bool:
    """Some analyst's resolve failed and waits for another round."""
    return any("resolve" in entry for entry in state.get("alerts", {}).values())


def due_resolves(state: dict[str, Any], now: float, ready: Callable[[str], bool] = lambda analyst: True,
                 ) -> tuple[dict[str, Any], list[Notice]]:
    """The failed resolves of `state` due for another round at `now` (of the analysts `ready` for one),
    as `plan` makes notifications: the same payload again, each entry as it will be once delivered."""
    alerts = dict(state.get("alerts", {}))
    notices = []
    for analyst, entry in sorted(alerts.items()):
        failed = entry.get("resolve")
        if entry["open"] and failed is not None and failed["next_at"] <= now and ready(analyst):
            ended = {**{k: v for k, v in entry.items() if k != "resolve"}, "open": False}
            alerts[analyst] = ended
            notices.append(Notice(analyst, entry["target"], ended, failed["payload"], failed["tries"]))
    return {**state, "alerts": alerts}, notices


def retry_in(tries: int) -> float:
    """Seconds before the next round of a resolve that failed `tries` rounds."""
    return min(RESOLVE_RETRY_MAX, RESOLVE_RETRY_SECONDS * 2 ** (tries - 1))


# ---- delivery ---------------------------------------------------------------------------------

class Lanes:
    """One queue per key: its work runs one at a time, in the order submitted; keys run concurrently."""

    def __init__(self) -> None:
        self._tails: dict[Hashable, asyncio.Task[None]] = {}

    def submit(self, key: Hashable, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        previous = self._tails.get(key)

        async def in_turn() -> None:
            if previous is not None:
                try:
                    await asyncio.wait([previous])  # its outcome is its own (a failure stops the worker)
                except asyncio.CancelledError:
                    work.close()  # stopped before its turn: never started
                    raise
            await work

        task = asyncio.ensure_future(in_turn())
        self._tails[key] = task
        task.add_done_callback(lambda done: self._tails.pop(key) if self._tails.get(key) is done else None)
        return task

    def __len__(self) -> int:
        return len(self._tails)


STAGE = "case-webhooks"
# What each analyst's receiver was told of each case, by case id (the `cases.events` key, so the same
# partition): written as each delivery ends, never back to an earlier event's outcome, so a replay
# after a restart resends only what was not told.
alerts_table: DurableTable = app.Table("case-webhook-alerts", default=None, partitions=settings.partitions,
                                       use_partitioner=True, key_type=bytes,
                                       schema=faust.Schema(key_serializer="raw", value_serializer="json"))
_slots = webhooks.ReceiverSlots(MAX_IN_FLIGHT)
_lanes = Lanes()
_planned: dict[str, dict[str, Any]] = {}  # a case's state with its notifications still in flight
_pending: Counter[str] = Counter()  # notifications in flight, by case
_waiting: Counter[str] = Counter()  # notifications queued for or in delivery, by receiver
_tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
_case_tasks: dict[str, set[asyncio.Task[None]]] = {}  # each case's delivery and acknowledgement tasks
_retrying: set[bytes] = set()  # keys of the rows with a `resolve` mark: what the timer looks at
_indexed_at: int | None = None  # the rebalance after which `_retrying` was built from the whole table


def _generation() -> int:
    """Which rebalance this worker's work is planned in: every rebalance takes every partition (Kafka's
    eager protocol) and replays what was not acknowledged, so work of an earlier one is void."""
    return int(app.rebalancing_count)


def _current(generation: int) -> bool:
    """No rebalance has begun since work of `generation` was planned: this worker still owns the case's
    partition as it did then (after a revocation, a rebalance has begun)."""
    return _generation() == generation


def _state(case_id: str) -> dict[str, Any] | None:
    return _planned.get(case_id) or alerts_table.get(case_id.encode())


def _position(message: Any) -> Position:
    partition, offset = getattr(message, "partition", None), getattr(message, "offset", None)
    return (partition, offset) if isinstance(partition, int) and isinstance(offset, int) else None


def _receiver(analyst: str, target: str) -> Receiver | None:
    secret = secret_for(analyst)  # None: not notified by webhook (logged at start)
    return Receiver(name=receiver_name(analyst), url=target, secret=secret) if secret is not None else None


def _full(receiver: Receiver | None) -> bool:
    return receiver is not None and _waiting[receiver.name] >= MAX_PENDING_PER_RECEIVER


async def deliver(receiver: Receiver, payload: dict[str, Any]) -> DeliveryResult:
    """One delivery round in the receiver's slot; a sender that raises is a failure not attempted."""
    try:
        async with _slots.hold(receiver.name):
            return await webhooks.attempt(receiver, payload)
    except Exception as exc:
        # dead-lettered and acknowledged, not a crash of every worker that reads it in turn
        log.exception("case webhook to %s failed", receiver.name)
        return DeliveryResult.not_attempted(f"{type(exc).__name__}: {exc}", receiver.name, receiver.url, "",
                                            payload, time.time())


async def failed(notice: Notice, result: DeliveryResult) -> dict[str, Any]:
    """After a round that was not delivered: the entry as the receiver now stands. A resolve that may get
    through later (a round attempted and not refused for good, fewer than RESOLVE_ROUNDS) stays open,
    marked for another round; anything else is dead-lettered (a raise here is a failed write of the
    dead letter, which stops the worker before the event is acknowledged)."""
    tries = notice.tries + 1
    if not notice.entry["open"] and result.attempts > 0 and not result.refused and tries < RESOLVE_ROUNDS:
        now = time.time()
        next_at = max(now + retry_in(tries), result.retry_at or 0.0)
        metrics.WEBHOOK_DELIVERIES.labels(result.receiver, metrics.FAILED).inc()
        log.warning("case webhook: resolve to %s failed (round %d of at most %d: %s); trying again in %.0fs",
                    result.receiver, tries, RESOLVE_ROUNDS, result.last_error, next_at - now)
        return {**notice.entry, "open": True, "resolve": {"payload": notice.payload, "tries": tries, "next_at": next_at}}
    await webhooks.dead_letter(result, "case webhook")
    return notice.entry


def deferred(notice: Notice, receiver: Receiver) -> dict[str, Any]:
    """A resolve for a receiver already holding MAX_PENDING_PER_RECEIVER notifications: never dropped
    (the receiver would show the case firing for good), its entry stays open with a `resolve` mark,
    for the timer to send it when due and the receiver has room; no round is counted."""
    delay = retry_in(max(1, notice.tries))
    log.info("case webhook: %s already has %d notifications waiting (MAX_PENDING_PER_RECEIVER); a resolve "
             "is sent in %.0fs", receiver.name, MAX_PENDING_PER_RECEIVER, delay)
    return {**notice.entry, "open": True,
            "resolve": {"payload": notice.payload, "tries": notice.tries, "next_at": time.time() + delay}}


def _index(key: bytes, row: dict[str, Any] | None) -> None:
    if row is not None and retrying(row):
        _retrying.add(key)
    else:
        _retrying.discard(key)


def _write(case_id: str, notice: Notice, entry: dict[str, Any], generation: int) -> None:
    """The analyst's entry as the receiver was told, unless it already reflects a later event; nothing
    when a rebalance has begun since the notice was planned (the partition's owner replays it)."""
    if not _current(generation):
        return
    key = case_id.encode()
    row = alerts_table.get(key) or {"alerts": {}}
    current = row["alerts"].get(notice.analyst)
    if current is not None and _later(current, entry):
        return
    row = {**row, "alerts": {**row["alerts"], notice.analyst: entry}}
    alerts_table[key] = row
    _index(key, row)
    planned = _planned.get(case_id)
    if entry is not notice.entry and planned is not None and planned["alerts"].get(notice.analyst) is notice.entry:
        planned["alerts"][notice.analyst] = entry  # a failed resolve, retried by the case's next event too


def _settle_row(case_id: str, closed: bool, generation: int) -> bool:
    """Once nothing of the case is in flight: forget a closed case unless a resolve waits for another
    round (then its row says `closed`, for the timer to forget it after). True if the table changed;
    nothing when a rebalance has begun since `generation`."""
    if not _current(generation):
        return False
    key = case_id.encode()
    row = alerts_table.get(key)
    if row is None:
        return False
    if closed and not retrying(row):
        del alerts_table[key]
        _retrying.discard(key)
        return True
    if bool(row.get("closed")) != closed:
        alerts_table[key] = {**row, "closed": closed}
        return True
    return False


async def tell(case_id: str, notice: Notice, receiver: Receiver | None, overflow: bool = False,
               generation: int = 0) -> None:
    """One notification in its lane's turn (none without a secret to sign it; queued `overflow`, its
    receiver over MAX_PENDING_PER_RECEIVER then, it is judged again now: still full, a firing one is
    dead-lettered unsent and a resolve `deferred`; with room, it is counted there and sent), then its
    entry as the receiver now knows it; once the case's last notification is out, a closed case is
    forgotten. Work of an earlier rebalance stops before the table."""
    entry = notice.entry
    if overflow and receiver is not None and not _full(receiver):  # room in its turn: counted while it is out
        overflow = False
        _waiting[receiver.name] += 1
        try:
            entry = await _send(notice, receiver)
        finally:
            _release(receiver.name, None)
    elif receiver is not None:
        if overflow and not notice.entry["open"]:
            entry = deferred(notice, receiver)
        elif overflow:
            entry = await failed(notice, DeliveryResult.not_attempted(
                f"{receiver.name} already has {MAX_PENDING_PER_RECEIVER} notifications waiting "
                f"(MAX_PENDING_PER_RECEIVER): not queued", receiver.name, receiver.url, "", notice.payload, time.time()))
        else:
            entry = await _send(notice, receiver)
    if not _current(generation):
        return  # the case's state here was forgotten on revocation; the partition's owner replays the event
    _write(case_id, notice, entry, generation)
    _pending[case_id] -= 1
    if _pending[case_id] <= 0:
        del _pending[case_id]
        _settle_row(case_id, bool(_planned.pop(case_id, {}).get("closed")), generation)


async def _send(notice: Notice, receiver: Receiver) -> dict[str, Any]:
    """Deliver one notification; its entry as the receiver now knows it (`failed`'s when not delivered)."""
    result = await deliver(receiver, notice.payload)
    return notice.entry if result.outcome == "delivered" else await failed(notice, result)


def _release(name: str, _: asyncio.Task[None] | None) -> None:
    _waiting[name] -= 1
    if _waiting[name] <= 0:
        del _waiting[name]


def _submit(case_id: str, after: dict[str, Any], notices: list[Notice],
            receivers: dict[str, Receiver | None], generation: int) -> list[asyncio.Task[None]]:
    """Queue each notification behind the earlier ones of its analyst and case. One for a receiver
    already holding MAX_PENDING_PER_RECEIVER is not counted there yet: in its turn it is judged
    again (`tell`), sent if there is room, else a firing one is dead-lettered (counted) and a resolve
    deferred to the timer; so no entry is ever written past a notification of its lane in flight."""
    _planned[case_id] = after
    _pending[case_id] += len(notices)
    tasks = []
    for notice in notices:
        receiver = receivers[notice.analyst]
        overflow = _full(receiver)
        task = _lanes.submit((notice.analyst, case_id), tell(case_id, notice, receiver, overflow, generation))
        if receiver is not None and not overflow:
            _waiting[receiver.name] += 1  # until its task ends, however it ends (stopped before its turn too)
            task.add_done_callback(functools.partial(_release, receiver.name))
        tasks.append(_spawn(task, case_id))
    return tasks


async def acknowledge(event: Any, tasks: list[asyncio.Task[None]], generation: int) -> None:
    """Acknowledge the case event once its notifications are out and the table written: only then may a
    commit pass it, so a worker that stops first leaves it to the next, which sends again what the table
    does not show as told (the same body, so the same X-Finsentry-Notification-Id). Never once a
    rebalance has begun since it was planned: the partition's owner replays it."""
    await asyncio.wait(tasks)
    if all(not task.cancelled() and task.exception() is None for task in tasks) and _current(generation):
        await alerts_table.written()
        if _current(generation):
            event.ack()


def _settle(case_id: str, task: asyncio.Task[None]) -> None:
    _tasks.discard(task)
    mine = _case_tasks.get(case_id)
    if mine is not None:
        mine.discard(task)
        if not mine:
            del _case_tasks[case_id]
    if not task.cancelled() and task.exception() is not None:  # a dead letter or the table could not be written
        failures.agent_failed(STAGE, task.exception(), settings.crash_exit_delay_seconds)


def _spawn(task: asyncio.Task[None], case_id: str) -> asyncio.Task[None]:
    _tasks.add(task)
    _case_tasks.setdefault(case_id, set()).add(task)
    task.add_done_callback(functools.partial(_settle, case_id))
    return task


def forget(partitions: set[int]) -> int:
    """`cases.events` partitions this worker no longer owns: stop their cases' deliveries (each releases
    its receiver's count as it ends) and forget what was planned and in flight for them; their next
    owner replays every event not acknowledged. Returns the cases forgotten."""
    cases = {case_id for case_id in (*_planned, *_pending, *_case_tasks) if key_partition(case_id.encode()) in partitions}
    for case_id in cases:
        for task in _case_tasks.pop(case_id, set()):
            task.cancel()
        _planned.pop(case_id, None)
        _pending.pop(case_id, None)
    return len(cases)


@app.on_partitions_revoked.connect
async def on_partitions_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
    forgotten = forget({tp.partition for tp in revoked if tp.topic == settings.topic_case_events})
    if forgotten:
        log.info("case webhooks: partitions revoked; stopped the notifications of %d cases (their next owner "
                 "replays them)", forgotten)


async def handle(event: Any) -> None:
    """One case event: plan its notifications against what the case's receivers were told, queue each
    behind the earlier ones of its analyst and case, and acknowledge the event once they are out."""
    value = event.value
    if not isinstance(value, dict):  # a foreign producer's bytes or JSON: the scheduler writes objects
        metrics.RECORDS_IN.labels(STAGE).inc()
        await send_dead_letter(STAGE, "wrong_type", "a case event must be a JSON object", event.message.value,
                               event.message)
        event.ack()
        return
    generation = _generation()
    try:
        with record_fault():  # built here, not in the delivery task, where a bad event was only logged
            case_id = value["case_id"]
            after, notices = plan(_state(case_id), value, target_for, _position(event.message), time.time(),
                                  external_url())
            receivers = {notice.analyst: _receiver(notice.analyst, notice.target) for notice in notices}
    except RecordFault as fault:
        metrics.RECORDS_IN.labels(STAGE).inc()
        await dead_letter_fault(STAGE, fault, event.message.value, event.message)
        event.ack()
        return
    if not notices:  # most case events notify no one; counted are those that notify someone
        if after is not None and case_id in _pending:
            _planned[case_id] = after
        elif after is not None and _settle_row(case_id, after["closed"], generation):
            await alerts_table.written()
        if _current(generation):  # never once a rebalance has begun: the partition's owner replays it
            event.ack()
        return
    metrics.RECORDS_IN.labels(STAGE).inc()
    metrics.RECORDS_OUT.labels(STAGE).inc()  # handed to delivery: its outcome is in the webhook metrics
    tasks = _submit(case_id, after, notices, receivers, generation)
    _spawn(asyncio.ensure_future(acknowledge(event, tasks, generation)), case_id)


def _owned(key: bytes) -> bool:
    """This worker is the active, recovered owner of the case's partition (the table's is the same)."""
    return owns_recovered(settings.topic_case_events, key_partition(key))


def _retry_keys() -> list[bytes]:
    """The keys of the rows with a `resolve` mark: `_retrying`, as this worker writes rows, built from the
    whole table once after each rebalance (rows recovered from the changelog); the cheap test first."""
    global _indexed_at
    if _indexed_at != _generation():
        _retrying.clear()
        _retrying.update(key for key, row in alerts_table.items() if row is not None and retrying(row))
        _indexed_at = _generation()
    return sorted(_retrying)


def retry_resolves(now: float, owned: Callable[[bytes], bool] = _owned) -> int:
    """Start another round of each failed resolve due at `now`, of the cases this worker owns with
    nothing in flight (a case in flight is settled first; its next event may retry them too), unless
    its receiver is full (left for a later tick). Returns the resolves started."""
    if app.rebalancing or app.in_recovery:  # the table is being recovered: nothing is owned yet
        return 0
    generation = _generation()
    started = 0
    for key in _retry_keys():
        row = alerts_table.get(key)
        if row is None or not retrying(row):
            _retrying.discard(key)
            continue
        case_id = key.decode()
        if case_id in _pending or not owned(key):
            continue
        receivers = {analyst: _receiver(analyst, entry["target"]) for analyst, entry in row["alerts"].items()
                     if "resolve" in entry}
        after, notices = due_resolves(row, now, lambda analyst, receivers=receivers: not _full(receivers[analyst]))
        if notices:
            _submit(case_id, after, notices, receivers, generation)
            started += len(notices)
    return started


@app.timer(interval=RETRY_TICK_SECONDS)
@guarded_timer("case-webhooks-retry", settings.crash_exit_delay_seconds)
async def retry_failed_resolves() -> None:
    poll_roster()  # an analyst added to the roster has their series at 0 before a case reaches them
    retry_resolves(time.time())


@app.agent(case_events_topic, name="case-webhooks")
async def notify_analysts(stream: Any) -> None:
    # Acknowledged by hand: an event is done when its webhooks are delivered or dead-lettered, in the
    # background, not when the loop moves on (the consumer never commits past an unacknowledged one).
    async for event in stream.noack().events():
        await handle(event)


@app.task
async def announce() -> None:
    if webhook_secret() is None:
        log.warning("case webhooks: FINSENTRY_CASE_WEBHOOK_SECRET_FILE unset: only analysts with a roster "
                    "notify_secret_file are notified by webhook")
