"""Notify: anomaly events -> Alertmanager-style grouping -> signed webhooks (and Alertmanager).

Grouping and throttling need one coordinator, so every anomaly event and every silence change is
routed onto the single-partition internal topic `alerts.notify`; the worker that owns its one
partition runs the `Dispatcher` and keeps its state, with the silences and an outbox of due
notifications, in a changelog-backed table under one key. A restarted or newly elected
coordinator resumes from that state: groups keep their timers, and notifications that were due but
not yet delivered are delivered then.

Deliveries never hold up the stream: a timer hands due notifications to background tasks, at most
`MAX_IN_FLIGHT` at once; the rest wait in the durable outbox (alerts/outbox.py: one at a time per
receiver group, in order, a few slots per receiver). A failed delivery round stays in the outbox for
another round a group_interval later (or at the receiver's Retry-After); only a notification refused
for good, refused (401, 404, 408, 425, 429) for `outbox.REFUSED_ROUNDS` rounds, or a day old goes to
`alerts.deadletter`, and its resolved alerts go out again in a notification of their own. At-least-once:
receivers de-duplicate retries and re-sends by the X-Finsentry-Notification-Id header, which is the
outbox item's id.

The state is one record, which Kafka refuses past 1 MiB: a silence that would take it past
`silences.RECORD_BOUND` is refused (here and at the API, 409), and a state over it sheds its expired
silences before it is saved, with an error logged, so silences never crowd out the outbox.

Every load-modify-save of the coordinator's state holds `state_lock`: the agent, the timer and the
delivery tasks interleave at their awaits, and a save from an older load would undo another's work
(a group's sent marks, an outbox item settled).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from alerts import outbox, pages
from alerts.alertmanager import AlertmanagerError, push_alerts
from alerts.delivery import DeliveryResult
from alerts.dispatch import Notification
from alerts.payload import Alert, alert_from_event, ended_now
from alerts.records import AnomalyEvent
from alerts.silences import RECORD_BOUND, Silence, check_room, stored_bytes
from streams import metrics, webhooks
from streams.app import anomalies_topic, app, notify_topic, settings
from streams.errors import RecordFault, dead_letter_fault, record_fault, send_dead_letter
from streams.failures import guarded_timer
from streams.notify_state import CoordinatorState, alerting, anomaly_pages, external_url, is_coordinator, load, save

OVERSIZE_LOG_SECONDS = 60.0  # an oversized state is logged at most this often
_oversize_logged_at = float("-inf")

log = logging.getLogger(__name__)
STAGE = "notify"
TICK_SECONDS = 1.0
MAX_IN_FLIGHT = 8
ALERTMANAGER_REPUSH_SECONDS = 60.0  # well inside Alertmanager's default 5 m resolve_timeout


def track_for_alertmanager(state: CoordinatorState, alert: Alert, now: float) -> None:
    """Keep the alert to (re-)push, by fingerprint. In Alertmanager a new label set (an escalation)
    is a new alert, so the same anomaly's previous label set is pushed once more as resolved now,
    instead of lingering there as firing until its resolve_timeout."""
    for fp, previous in list(state.alertmanager.items()):
        if fp == alert.fingerprint or Alert.from_json(previous).key != alert.key:
            continue
        if previous["labels"] == alert.labels:  # kept under its anomaly id by an older version
            del state.alertmanager[fp]
        elif previous["status"] == "firing":
            state.alertmanager[fp] = ended_now(previous, now)
    state.alertmanager[alert.fingerprint] = alert.to_json()


def apply(state: CoordinatorState, command: dict, now: float) -> list[str]:
    """One `alerts.notify` command: an anomaly event, a new silence, or a silence to expire. Returns the
    receivers a silence kept the alert from, for the caller to count once the state is saved."""
    silenced: list[str] = []
    if "anomaly" in command:
        anomaly = AnomalyEvent.from_json(command["anomaly"])
        alert = alert_from_event(anomaly, pages.page_url(external_url(), anomaly.anomaly_id))
        if not state.dispatcher.ingest(alert, now):
            return []  # a replay of an ended episode: not counted again, nor re-pushed as firing after its resolve
        silenced = [receiver.name for receiver in alerting().receivers
                    if receiver.wants(alert.labels) and state.dispatcher.silences.match(alert.labels, now) is not None]
        if settings.alertmanager_url:
            track_for_alertmanager(state, alert, now)
            state.pushed_at = float("-inf")  # a change is pushed on the next tick, not at the next re-push
    elif "silence" in command:
        silence = Silence.from_dict(command["silence"])
        check_room(state.dispatcher.silences, silence, stored_bytes(state.to_dict()))  # SilencesFull: dead-lettered
        state.dispatcher.silences.add(silence, now)
    elif "expire" in command:  # expires one in force; removes one already expired
        state.dispatcher.silences.end(command["expire"], float(command.get("at", now)))
    else:
        raise ValueError(f"unknown notify command with keys {sorted(command)}")
    return silenced


@app.agent(anomalies_topic, name="notify-route")
async def route(stream) -> None:
    """Check each anomaly event where it entered, then hand it to the single coordinator."""
    async for event in stream.events():
        metrics.RECORDS_IN.labels(STAGE).inc()
        try:
            AnomalyEvent.from_json(event.value)
        except ValueError as exc:  # a foreign producer on alerts.anomalies
            await send_dead_letter(STAGE, "wrong_type", f"not an anomaly event: {exc}", event.message.value,
                                   event.message)
            continue
        await notify_topic.send(key=event.key, value={"anomaly": event.value})


state_lock = asyncio.Lock()


async def store(state: CoordinatorState, now: float) -> None:
    """`save`, with the record's size checked first: over RECORD_BOUND, the expired silences (kept for
    listing only) are dropped so the outbox keeps its room, and an error is logged (new silences are
    refused meanwhile: `check_room`)."""
    global _oversize_logged_at
    size = stored_bytes(state.to_dict())
    if size > RECORD_BOUND:
        if state.dispatcher.silences.drop_expired(now):
            size = stored_bytes(state.to_dict())
        if now - _oversize_logged_at >= OVERSIZE_LOG_SECONDS:
            _oversize_logged_at = now
            log.error("notify: the coordinator's state is %d KiB (%d in the outbox, %d silences), over %d KiB of "
                      "Kafka's 1 MiB record limit; expired silences dropped, new silences refused until it shrinks",
                      size // 1024, len(state.outbox), len(state.dispatcher.silences.items), RECORD_BOUND // 1024)
    await save(state)


@app.agent(notify_topic, name="notify")
async def coordinate(stream) -> None:
    async for event in stream.events():
        if not isinstance(event.value, dict):  # only a foreign producer writes anything else here
            await send_dead_letter(STAGE, "wrong_type", "a notify command must be a JSON object", event.message.value,
                                   event.message)
            continue
        async with state_lock:
            try:
                with record_fault():
                    state = load()
                    now = time.time()
                    silenced = apply(state, event.value, now)
                    page = None
                    if "anomaly" in event.value:
                        anomaly = AnomalyEvent.from_json(event.value["anomaly"])
                        page = pages.record(anomaly_pages.get(anomaly.anomaly_id), anomaly, now)
            except RecordFault as fault:
                await dead_letter_fault(STAGE, fault, event.message.value, event.message)
                continue
            if page is not None:
                anomaly_pages[anomaly.anomaly_id] = page
                await anomaly_pages.written()
            await store(state, now)
        for receiver in silenced:  # after the save: a replay after a failed one would count it twice
            metrics.WEBHOOK_DELIVERIES.labels(receiver, metrics.SILENCED).inc()


_in_flight: dict[str, asyncio.Task] = {}


def spawn(key: str, work: Coroutine[Any, Any, None]) -> None:
    """Run `work` in the background, once per key; failures are logged and retried by a later tick."""
    task = asyncio.ensure_future(work)
    _in_flight[key] = task

    def done(finished: asyncio.Task) -> None:
        _in_flight.pop(key, None)
        if not finished.cancelled() and finished.exception() is not None:
            log.error("notify: background %s failed: %r", key, finished.exception())

    task.add_done_callback(done)


async def deliver_and_settle(outbox_id: str, notification: Notification) -> None:
    """One delivery round; then the item leaves the outbox (delivered, or dead-lettered when given up)
    or waits there for the next round. A worker that stopped coordinating leaves it to the new one."""
    receiver = notification.receiver
    result = await webhooks.attempt(receiver, notification.payload, notification_id=outbox_id)
    if not is_coordinator():
        return
    async with state_lock:
        state = load()
        item = state.outbox.get(outbox_id)
        if item is None:
            return
        now = time.time()
        if result.outcome == "delivered":
            del state.outbox[outbox_id]
        elif outbox.retry(state.outbox, outbox_id, result.refused, now, receiver.group_interval,
                          soft=result.soft_refused, not_before=result.retry_at):
            if result.soft_refused:
                log.warning("notify: webhook to %s refused %d round(s) in a row (%s); giving it up",
                            receiver.name, item.get("refusals", 0), result.last_error)
            await webhooks.dead_letter(result, "notify: webhook")
            del state.outbox[outbox_id]
            if item.get("carry") is not None:  # its resolves are not lost with it
                log.warning("notify: the resolved alerts of the notification given up for %s go out again alone (%s)",
                            receiver.name, item["carry"])
        else:
            metrics.WEBHOOK_DELIVERIES.labels(receiver.name, metrics.FAILED).inc()
            refused = (f"; refused {item.get('refusals', 0)} of at most {outbox.REFUSED_ROUNDS} rounds"
                       if result.soft_refused else "")
            log.warning("notify: webhook to %s failed after %d attempt(s) (%s%s); trying again in %.0fs",
                        receiver.name, result.attempts, result.last_error, refused,
                        max(receiver.group_interval, (result.retry_at or 0.0) - now))
        await store(state, now)


async def push_and_settle(alerts: list[dict]) -> None:
    assert settings.alertmanager_url is not None
    try:
        await push_alerts(webhooks.client(), settings.alertmanager_url, [Alert.from_json(a) for a in alerts])
    except AlertmanagerError as exc:
        metrics.ALERTMANAGER_PUSHES.labels("error").inc()
        log.warning("notify: %s; retrying in %.0fs", exc, ALERTMANAGER_REPUSH_SECONDS)
        return
    metrics.ALERTMANAGER_PUSHES.labels("ok").inc()
    if is_coordinator():
        async with state_lock:
            state = load()
            pushed = {a["fingerprint"] for a in alerts if a["status"] == "resolved"}
            state.alertmanager = {fp: a for fp, a in state.alertmanager.items()
                                  if fp not in pushed or a["status"] != "resolved"}  # unless it fired again since
            await store(state, time.time())


@app.timer(interval=TICK_SECONDS)
@guarded_timer("notify-flush", settings.crash_exit_delay_seconds)
async def flush() -> None:
    """Move due notifications into the outbox and start deliveries for the outbox, within limits."""
    if not is_coordinator():
        return
    async with state_lock:
        now = time.time()
        state = load()
        due = state.dispatcher.due(now)
        for notification in due:
            outbox.enqueue(state.outbox, uuid.uuid4().hex, outbox.queued(notification.receiver.name,
                                                                         notification.payload, now))
        receivers = {r.name: r for r in alerting().receivers}
        orphans = [outbox_id for outbox_id, item in state.outbox.items() if item["receiver"] not in receivers]
        for outbox_id in orphans:  # its notifications can go nowhere now: kept as evidence, counted
            item = state.outbox.pop(outbox_id)
            await webhooks.dead_letter(DeliveryResult.not_attempted("receiver removed from the receivers file",
                                                                    item["receiver"], "", outbox_id, item["payload"], now),
                                       "notify: webhook")
        push = bool(state.alertmanager) and now - state.pushed_at >= ALERTMANAGER_REPUSH_SECONDS
        if push:
            state.pushed_at = now
        pruned = state.dispatcher.silences.prune(now)  # silences expired past their retention leave the state
        starting = outbox.startable(state.outbox, _in_flight, now, MAX_IN_FLIGHT)  # marked started: saved first
        if due or orphans or push or pruned or starting:
            await store(state, now)
    for outbox_id in starting:
        item = state.outbox[outbox_id]
        spawn(outbox_id, deliver_and_settle(outbox_id, Notification(receivers[item["receiver"]], item["payload"])))
    if push and "alertmanager" not in _in_flight:
        spawn("alertmanager", push_and_settle(list(state.alertmanager.values())))


PAGE_RETENTION_SECONDS = 30 * 86400.0  # a resolved anomaly's page is kept this long after its last event


@app.timer(interval=3600.0)
@guarded_timer("notify-prune-pages", settings.crash_exit_delay_seconds)
async def prune_pages() -> None:
    """Forget the pages of anomalies resolved longer than PAGE_RETENTION_SECONDS ago (their links 404)."""
    if not is_coordinator():
        return
    old = pages.expired(list(anomaly_pages.items()), time.time() - PAGE_RETENTION_SECONDS)
    for key in old:
        del anomaly_pages[key]
    if old:
        await anomaly_pages.written()
        log.info("notify: forgot %d anomaly page(s) resolved over %.0f days ago", len(old), PAGE_RETENTION_SECONDS / 86400)


@app.task
async def announce() -> None:
    if not alerting().receivers:
        log.warning("notify: no receivers file (FINSENTRY_RECEIVERS unset): anomalies are not sent to webhooks")
    else:
        log.info("notify: %d webhook receiver(s): %s", len(alerting().receivers),
                 ", ".join(r.name for r in alerting().receivers))
