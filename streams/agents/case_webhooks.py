"""Case webhooks: tell an analyst, on their roster `notify` URL, that a case was given to them,
escalated, or taken off them.

The scheduler puts the target in the event (`notify`), so this agent runs on whichever worker owns
each `cases.events` partition, away from the scheduler's single writer: a slow receiver never
delays assignment. It signs with the analyst's own secret (roster `notify_secret_file`), so one
analyst's receiver cannot forge notifications to another's; an analyst without one gets the
shared FINSENTRY_CASE_WEBHOOK_SECRET_FILE. It reads the roster through its own watcher, so an edit
reaches it without taking the scheduler's reload. Payloads are Alertmanager v4 with one alert, signed and
retried by `alerts.delivery.deliver` (streams/webhooks.py counts and dead-letters); at most `MAX_IN_FLIGHT` deliveries run at once (the agent
waits for a slot, holding back only this consumer). A delivery that exhausts its retries goes to
the alerts dead-letter topic and is counted. A case event is acknowledged only once its webhook is
delivered or dead-lettered, so one in flight when its worker stops is delivered by the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import cache
from typing import Any

from alerts.delivery import DeliveryResult
from alerts.payload import ZERO_TIME, Alert, build_payload
from alerts.receivers import Receiver
from scheduler import RosterWatcher
from streams import failures, metrics, webhooks
from streams.app import app, case_events_topic, settings
from streams.errors import RecordFault, dead_letter_fault, record_fault, send_dead_letter
from streams.usage import config_exit

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 8
SUMMARIES = {
    "assigned": "{case_id} ({severity}, {scope}) is assigned to you",
    "escalated": "{case_id} ({severity}, {scope}) escalated: {reason}",
    "waiting": "{case_id} ({scope}) was taken off you: {reason}",
    "updated": "{case_id} ({scope}) is now {severity}, with tighter deadlines: {reason}",
}


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


def secret_for(analyst_id: str) -> bytes | None:
    """The analyst's own secret from the roster in force, else the shared one, else None (not notified)."""
    watcher = roster_watcher()
    if watcher is not None:
        watcher.poll()
        analyst = watcher.roster.analysts.get(analyst_id)
        if analyst is not None and analyst.notify_secret is not None:
            return analyst.notify_secret
    return webhook_secret()


STAGE = "case-webhooks"
_slots = asyncio.Semaphore(MAX_IN_FLIGHT)
_tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


def case_payload(event: dict[str, Any]) -> dict[str, Any]:
    """One firing alert per case event, named `case_<event>`, labelled by case and analyst."""
    analyst = event["notify"]["analyst"]
    labels = {"alertname": f"case_{event['event']}", "case_id": event["case_id"], "analyst": analyst,
              "scope": event["scope"], "severity": event["severity"], "anomaly_id": event["anomaly_id"]}
    summary = SUMMARIES.get(event["event"], "{case_id}: {event}").format(**{"reason": "", **event})
    alert = Alert("firing", labels, {"summary": summary, "reason": event.get("reason", "")}, event["at"], ZERO_TIME,
                  "", f"{event['case_id']}/{event['event']}/{event['at']}")
    return build_payload(f"analyst-{analyst}", {"case_id": event["case_id"]}, [alert], "")


async def send(receiver: Receiver, payload: dict[str, Any], event: Any) -> None:
    """Deliver, or dead-letter, then acknowledge the case event: only then may a commit pass it, so a
    worker that stops first leaves it to the next, which delivers it again (same body, so the same
    X-Finsentry-Notification-Id for the receiver to drop a repeat)."""
    try:
        result = await webhooks.attempt(receiver, payload)
    except Exception as exc:
        # dead-lettered and acknowledged, not a crash of every worker that reads it in turn
        log.exception("case webhook to %s failed", receiver.name)
        result = DeliveryResult.not_attempted(f"{type(exc).__name__}: {exc}", receiver.name, receiver.url, "",
                                              payload, time.time())
    if result.outcome != "delivered":
        await webhooks.dead_letter(result, "case webhook")
    event.ack()


def _settle(task: asyncio.Task[None]) -> None:
    _tasks.discard(task)
    _slots.release()
    if not task.cancelled() and task.exception() is not None:  # the dead letter could not be written
        failures.agent_failed(STAGE, task.exception(), settings.crash_exit_delay_seconds)


@app.agent(case_events_topic, name="case-webhooks")
async def notify_analysts(stream: Any) -> None:
    # Acknowledged by hand: an event is done when its webhook is delivered or dead-lettered, in the
    # background, not when the loop moves on (the consumer never commits past an unacknowledged one).
    async for event in stream.noack().events():
        value = event.value
        if isinstance(value, dict) and not isinstance(value.get("notify"), dict):
            event.ack()
            continue  # most case events notify no one; counted are those that notify someone
        metrics.RECORDS_IN.labels(STAGE).inc()
        if not isinstance(value, dict):  # a foreign producer's bytes or JSON: the scheduler writes objects
            await send_dead_letter(STAGE, "wrong_type", "a case event must be a JSON object", event.message.value,
                                   event.message)
            event.ack()
            continue
        try:
            with record_fault():  # built here, not in the delivery task, where a bad event was only logged
                secret = secret_for(str(value["notify"].get("analyst")))
                if secret is not None:  # else not notified by webhook (logged at start)
                    target = value["notify"]
                    receiver = Receiver(name=f"analyst-{target['analyst']}", url=target["target"], secret=secret)
                    payload = case_payload(value)
        except RecordFault as fault:
            await dead_letter_fault(STAGE, fault, event.message.value, event.message)
            event.ack()
            continue
        metrics.RECORDS_OUT.labels(STAGE).inc()  # handed to delivery: its outcome is in the webhook metrics
        if secret is None:
            event.ack()
            continue
        await _slots.acquire()
        task = asyncio.ensure_future(send(receiver, payload, event))
        _tasks.add(task)
        task.add_done_callback(_settle)


@app.task
async def announce() -> None:
    if webhook_secret() is None:
        log.warning("case webhooks: FINSENTRY_CASE_WEBHOOK_SECRET_FILE unset: only analysts with a roster "
                    "notify_secret_file are notified by webhook")
