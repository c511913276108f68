"""Schedule: anomalies and analyst actions -> the `Scheduler` -> `cases.events` (and label feedback).

Assignment needs one coordinator, so anomaly events, `cases.actions` and the clock are all routed
onto the single-partition internal topic `scheduler.inbox`; the worker that owns its one partition
is the only writer. It keeps the scheduler's state in a changelog-backed table, one record per case
and a head record (scheduler/storage.py), so a restarted or newly elected writer resumes exactly
where the last one stopped. Timer ticks go through the inbox too (only the owner sends them), so
there is never a second writer.

Each input's changes are saved first as a journal in the head record (the case records it changed
and the records it produces), then the case records are written and the records sent, then the
journal is cleared. A writer that dies in between leaves the journal for the next one to finish
first, so a restart neither loses an event nor decides anything twice (a case is never re-assigned
by a replay); events may repeat, identical, which is at-least-once.

An action is applied only with a valid signature (streams/action_signing.py): the writer checks it,
so neither `cases.actions` nor the inbox can be used to act on cases without the API's secret.
Dropped actions are counted in `finsentry_case_actions_rejected_total{reason}`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from scheduler import ActionError, AnomalyError, Scheduler, storage
from scheduler.cases import Evidence, sla_start
from scheduler.feedback import feedback_records
from scheduler.roster import Roster
from scheduler.workload import workload
from streams import metrics
from streams.action_signing import action_secret, refusal
from streams.app import (
    INBOX_TOPIC,
    anomalies_topic,
    app,
    case_actions_topic,
    case_events_topic,
    feedback_topic,
    inbox_topic,
    settings,
)
from streams.case_state import (
    CASE_PREFIX,
    POLICY,
    STATE_KEY,
    is_owner,
    load,
    roster_watcher,
    settle,
    state_table,
    stored_cases,
    stored_head,
)
from streams.deadletter import INVALID_ANOMALY, REJECTED_ACTION
from streams.errors import RecordFault, dead_letter_fault, record_fault, send_dead_letter
from streams.failures import guarded_timer
from streams.loaded_model import model_topics

log = logging.getLogger(__name__)
STAGE = "scheduler"


# ---- the single writer ---------------------------------------------------------------------------

# The load gauges as this worker last published them: per-analyst series, per gauge (an analyst who
# leaves the roster must lose theirs, or their last count and utilisation stay on the dashboards forever),
# and the waiting and over-SLA counts; None while it publishes none.
Gauges = tuple[dict[str, float], dict[str, float], float, float]
_shown: Gauges | None = None
# What `withdraw_gauges` took off when the rebalance in progress revoked scheduler.inbox: put back if the
# same rebalance gives it back, until the next inbox record publishes afresh.
_withdrawn: Gauges | None = None


def publish_gauges(sched: Scheduler, now: datetime) -> None:
    load_now = workload(sched.to_dict(), sched.roster, POLICY, now)
    show((dict(load_now.open_by_analyst), dict(load_now.utilisation), load_now.waiting, load_now.over_sla))


def show(gauges: Gauges) -> None:
    global _shown
    was = _shown or ({}, {}, 0.0, 0.0)
    for gauge, values, before in ((metrics.CASES_OPEN, gauges[0], was[0]),
                                  (metrics.ANALYST_UTILISATION, gauges[1], was[1])):
        for analyst in before.keys() - values.keys():
            gauge.remove(analyst)
        for analyst, value in values.items():
            gauge.labels(analyst).set(value)
    metrics.CASES_WAITING.set(gauges[2])
    metrics.CASES_OVER_SLA.set(gauges[3])
    _shown = gauges


def withdraw_gauges() -> Gauges | None:
    """Take every load series off /metrics: this worker no longer owns the scheduler, and rules and
    dashboards take max() across workers, so a value left here would outvote the new owner's (a
    FinsentryCasesOverSLA firing until this worker restarts). Returns what was shown."""
    global _shown
    was, _shown = _shown, None
    if was is not None:
        for gauge, values in ((metrics.CASES_OPEN, was[0]), (metrics.ANALYST_UTILISATION, was[1])):
            for analyst in values:
                gauge.remove(analyst)
    metrics.CASES_WAITING.withdraw()
    metrics.CASES_OVER_SLA.withdraw()
    return was


@app.on_partitions_revoked.connect
async def on_partitions_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
    global _withdrawn
    if any(tp.topic == INBOX_TOPIC for tp in revoked):
        _withdrawn = withdraw_gauges()


@app.on_partitions_assigned.connect
async def on_partitions_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
    """Kafka's eager rebalance revokes every partition and then assigns. The worker given scheduler.inbox
    shows what it withdrew, if it had it before (nobody wrote in between), and sends the inbox a tick:
    its writer publishes from the recovered state as soon as it runs, not a tick interval later."""
    global _withdrawn
    withdrawn, _withdrawn = _withdrawn, None
    if not any(tp.topic == INBOX_TOPIC for tp in assigned):
        withdraw_gauges()  # none to take off, unless a record in hand at the revocation published after it
        return
    if withdrawn is not None and _shown is None:
        show(withdrawn)
    # Buffered, not awaited: a rebalance must not wait on the producer. Lost, the timer's next tick does it.
    inbox_topic.send_soon(key=STATE_KEY.encode(), value={"tick": True})


def outgoing(sched: Scheduler, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records an input produces, in order: its case events and any label feedback."""
    records = []
    for event in events:
        records.append({"topic": "events", "key": event["case_id"], "value": event})
        case = sched.case(event["case_id"])
        if event["event"] in ("resolved", "labelled") and case is not None:
            records += [{"topic": "feedback", "key": r["id"], "value": r} for r in feedback_records(event, case)]
    return records


def count_events(sched: Scheduler, events: list[dict[str, Any]]) -> None:
    for event in events:
        metrics.CASES.labels(event["event"]).inc()
        case = sched.case(event["case_id"])
        if event["event"] == "acknowledged" and case is not None:  # from its reopening, if it was reopened
            metrics.ACK_SECONDS.observe((datetime.fromisoformat(event["at"]) - sla_start(case)).total_seconds())
    metrics.RECORDS_OUT.labels(STAGE).inc(len(events))


async def save(head: dict[str, Any], journal: dict[str, Any]) -> None:
    """The head with this input's journal (its case records and outgoing records): one changelog record,
    the commit point. It returns once the broker has it, so nothing is applied or sent before it is safe."""
    state_table[STATE_KEY] = {**head, "journal": journal}
    await state_table.written()


async def finish(head: dict[str, Any], journal: dict[str, Any]) -> None:
    """Write the journal's case records, send its records and wait for the broker, then clear it.
    Repeating this after a crash rewrites the same records and resends the same events."""
    for case_id, record in journal["cases"].items():
        key = CASE_PREFIX + case_id
        if record is not None:
            state_table[key] = record
        elif key in state_table:
            del state_table[key]
    topics = {"events": case_events_topic, "feedback": feedback_topic}
    futures = [await topics[r["topic"]].send(key=r["key"].encode(), value=r["value"]) for r in journal["outbox"]]
    await asyncio.gather(*futures)
    state_table[STATE_KEY] = head
    await state_table.written()


def apply(sched: Scheduler, command: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """One inbox command; raises AnomalyError/ActionError for input the scheduler refuses."""
    if "anomaly" in command:
        return sched.on_anomaly(command["anomaly"], now)
    if "action" in command:
        return sched.on_action(command["action"], now)
    if "tick" in command:  # the tick also holds the state to the roster in force (an edit made while down)
        watcher = roster_watcher()
        changed = watcher.poll() if watcher is not None else None
        if changed is not None:
            warn_unknown_topics(changed)
        events = sched.set_roster(changed, now) if changed is not None else []
        return events + sched.tick(now)
    raise ValueError(f"unknown scheduler command with keys {sorted(command)}")


def forged(action: Any, action_id: Any) -> str | None:
    """Why an action has no valid signature (counted, logged, and the waiting request told), or None:
    only the API and console sign, so anyone else writing to the topics cannot act on cases."""
    reason = refusal(action, action_secret()) if isinstance(action, dict) else None
    if reason is None:
        return None
    metrics.CASE_ACTIONS_REJECTED.labels(reason).inc()
    log.warning("scheduler: dropped a case action (%s) for case %r", reason, action.get("case_id"))
    settle(action_id, ActionError(500, "the action's signature was refused; see the worker log"))
    return reason


@app.agent(inbox_topic, name="scheduler")
async def write(stream: Any) -> None:
    async for event in stream.events():
        command, message = event.value, event.message
        if not isinstance(command, dict):  # only a foreign producer writes anything else here
            await send_dead_letter(STAGE, "wrong_type", "a scheduler inbox record must be a JSON object", message.value,
                                   message)
            continue
        action = command.get("action")
        action_id = action.get("action_id") if isinstance(action, dict) else None
        head, journal = stored_head()
        if journal is not None:  # the last writer saved an input's journal but died before finishing it
            await finish(head, journal)
        try:
            with record_fault():  # the signature check too: a record must never crash the writer
                reason = forged(action, action_id)
                if reason is None:
                    sched, now = load(), datetime.now(UTC)
                    try:
                        events = apply(sched, command, now)
                        error = None
                    except (AnomalyError, ActionError) as exc:
                        events, error = [], exc
                    if error is None:  # a tick may prune cases without an event: that is a change to save too
                        next_head, cases = storage.split(sched.to_dict())
                        next_journal = {"cases": storage.changes(stored_cases(), cases),
                                        "outbox": outgoing(sched, events)}
        except RecordFault as fault:
            settle(action_id, ActionError(500, "internal error; see the worker log"))
            await dead_letter_fault(STAGE, fault, message.value, message)
            continue
        if reason is not None:  # kept as evidence, with the other refusals
            await send_dead_letter(STAGE, REJECTED_ACTION, f"case action not applied: {reason}", message.value, message)
            continue
        if error is not None:
            if isinstance(error, ActionError):
                settle(action_id, error)
            reason = INVALID_ANOMALY if isinstance(error, AnomalyError) else REJECTED_ACTION
            status = f" ({error.status})" if isinstance(error, ActionError) else ""
            await send_dead_letter(STAGE, reason, f"{error}{status}", message.value, message)
            continue
        if next_journal["cases"] or events:
            await save(next_head, next_journal)
            await finish(next_head, next_journal)
            count_events(sched, events)
        settle(action_id, events)
        if is_owner():  # a record finished during a rebalance that took the inbox away must not show it again
            publish_gauges(sched, now)


# ---- routes into the inbox -----------------------------------------------------------------------

@app.agent(anomalies_topic, name="scheduler-anomalies")
async def route_anomalies(stream: Any) -> None:
    """Check anomalies where they enter, so a bad one is dead-lettered with its real origin."""
    async for event in stream.events():
        metrics.RECORDS_IN.labels(STAGE).inc()
        value = event.value
        try:
            with record_fault():  # the door's own failure is this record's too, not the worker's
                try:
                    Evidence.from_anomaly(value if isinstance(value, dict) else {})
                    refused = None
                except AnomalyError as exc:
                    refused = exc
        except RecordFault as fault:
            await dead_letter_fault(STAGE, fault, event.message.value, event.message)
            continue
        if refused is not None:
            await send_dead_letter(STAGE, INVALID_ANOMALY, str(refused), event.message.value, event.message)
            continue
        await inbox_topic.send(key=STATE_KEY.encode(), value={"anomaly": value})


@app.agent(case_actions_topic, name="scheduler-actions")
async def route_actions(stream: Any) -> None:
    async for event in stream.events():
        metrics.RECORDS_IN.labels(STAGE).inc()
        value = event.value
        if not isinstance(value, dict):
            await send_dead_letter(STAGE, "wrong_type", "a case action must be a JSON object",
                                   event.message.value, event.message)
            continue
        await inbox_topic.send(key=STATE_KEY.encode(), value={"action": value})


@app.timer(interval=settings.scheduler_tick_seconds)
@guarded_timer("scheduler-tick", settings.crash_exit_delay_seconds)
async def tick() -> None:
    """SLA escalations, shift starts and roster reloads happen on the clock, via the one writer."""
    if is_owner():
        await inbox_topic.send(key=STATE_KEY.encode(), value={"tick": True})


@app.task
async def announce() -> None:
    watcher = roster_watcher()
    if watcher is None:
        log.warning("scheduler: no roster (FINSENTRY_ROSTER unset): anomalies become cases that wait for analysts")
    else:
        log.info("scheduler: roster %s with %d analyst(s)", watcher.path, len(watcher.roster.analysts))
        warn_unknown_topics(watcher.roster)


def warn_unknown_topics(roster: Roster) -> None:
    """Say which topic skills name no topic of the running model: they match no case."""
    topics = model_topics(settings)
    if unknown := roster.unknown_topics(topics):
        log.warning("scheduler: roster topic skill(s) %s name no topic of the model, so they match no case; "
                    "the model's topics: %s", "; ".join(unknown), ", ".join(sorted(topics)))
