"""Notify: anomaly events -> Alertmanager-style grouping -> signed webhooks (and Alertmanager).

Grouping and throttling need one coordinator, so every anomaly event and every silence change is
routed onto the single-partition internal topic `alerts.notify`; the worker that owns its one
partition runs the `Dispatcher` and keeps its state, with the silences and an outbox of due
notifications, in a changelog-backed table under one key. A restarted or newly elected
coordinator resumes from that state: groups keep their timers, and notifications that were due but
not yet delivered are delivered then.

Deliveries never hold up the stream: a timer hands due notifications to background tasks, at most
`MAX_IN_FLIGHT` at once; the rest wait in the durable outbox. A delivery that exhausts its retries
goes to `alerts.deadletter` and is counted; only then does it leave the outbox (at-least-once:
receivers de-duplicate retries by the X-Finsentry-Notification-Id header).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import faust
import httpx
from faust.types import TP

from alerts import pages
from alerts.alertmanager import AlertmanagerError, push_alerts
from alerts.delivery import deliver
from alerts.dispatch import Dispatcher, Notification
from alerts.payload import Alert, alert_from_event
from alerts.receivers import AlertingConfig, ConfigError, load_config
from alerts.records import AnomalyEvent, iso_utc
from alerts.silences import MAX_SILENCES, Silence, SilenceError, filter_matchers, silence_from_v2
from streams import metrics
from streams.app import alerts_deadletter_topic, anomalies_topic, app, settings
from streams.errors import RecordFault, dead_letter_fault, record_fault, send_dead_letter
from streams.tables import DurableTable
from streams.usage import config_exit

log = logging.getLogger(__name__)
STAGE = "notify"
NOTIFY_TOPIC = "alerts.notify"
STATE_KEY = "coordinator"
CONFIG_SILENCE_PREFIX = "config-"
TICK_SECONDS = 1.0
MAX_IN_FLIGHT = 8
ALERTMANAGER_REPUSH_SECONDS = 60.0  # well inside Alertmanager's default 5 m resolve_timeout
MAX_SILENCE_BODY = 16 * 1024


def alerting_config() -> AlertingConfig:
    if settings.receivers is None:
        return AlertingConfig(receivers=())
    try:
        return load_config(settings.receivers)
    except ConfigError as exc:
        raise config_exit(f"receivers (FINSENTRY_RECEIVERS): {exc}") from None


ALERTING = alerting_config()

notify_topic = app.topic(NOTIFY_TOPIC, partitions=1, internal=True)
coordinator_state: DurableTable = app.Table("notify-coordinator", default=None, partitions=1, use_partitioner=True,
                                            schema=faust.Schema(key_serializer="json", value_serializer="json"))

# The record behind each alert's generatorURL (alerts/pages.py, served by streams/anomaly_page.py).
anomaly_pages: DurableTable = app.Table("notify-anomalies", default=None, partitions=1, use_partitioner=True,
                                        schema=faust.Schema(key_serializer="json", value_serializer="json"))


@dataclass
class CoordinatorState:
    """Everything the coordinator must not forget across a restart; JSON in the table."""

    dispatcher: Dispatcher
    outbox: dict[str, dict] = field(default_factory=dict)  # id -> {receiver, payload}: due, not yet settled
    alertmanager: dict[str, dict] = field(default_factory=dict)  # fingerprint -> alert JSON to (re-)push
    pushed_at: float = float("-inf")

    def to_dict(self) -> dict:
        return {"dispatcher": self.dispatcher.to_dict(), "outbox": self.outbox, "alertmanager": self.alertmanager,
                "pushed_at": None if self.pushed_at == float("-inf") else self.pushed_at}

    @classmethod
    def from_dict(cls, d: dict | None, config: AlertingConfig) -> CoordinatorState:
        if d is None:
            state = cls(Dispatcher(config.receivers, external_url=config.external_url))
        else:
            pushed_at = float("-inf") if d["pushed_at"] is None else d["pushed_at"]
            state = cls(Dispatcher.from_dict(d["dispatcher"], config.receivers, config.external_url),
                        d["outbox"], d["alertmanager"], pushed_at)
        # Silences from the file are owned by the file: replaced on every load, under stable ids.
        items = {k: s for k, s in state.dispatcher.silences.items.items() if not k.startswith(CONFIG_SILENCE_PREFIX)}
        for i, silence in enumerate(config.silences):
            items[f"{CONFIG_SILENCE_PREFIX}{i}"] = replace(silence, id=f"{CONFIG_SILENCE_PREFIX}{i}")
        state.dispatcher.silences.items = items
        return state


def load() -> CoordinatorState:
    return CoordinatorState.from_dict(coordinator_state.get(STATE_KEY), ALERTING)


async def save(state: CoordinatorState) -> None:
    """Write the state and wait until the broker has it (streams/tables.py says why)."""
    coordinator_state[STATE_KEY] = state.to_dict()
    await coordinator_state.written()


def is_coordinator() -> bool:
    return TP(NOTIFY_TOPIC, 0) in app.assignor.assigned_actives()


def generator_url(event: AnomalyEvent) -> str:
    """The anomaly's page on a worker: under the receivers file's external_url, else this worker's URL."""
    base = ALERTING.external_url or str(app.conf.canonical_url)
    return f"{base.rstrip('/')}/anomalies/{event.anomaly_id}"


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
            state.alertmanager[fp] = {**previous, "status": "resolved", "endsAt": iso_utc(now)}
    state.alertmanager[alert.fingerprint] = alert.to_json()


def apply(state: CoordinatorState, command: dict, now: float) -> None:
    """One `alerts.notify` command: an anomaly event, a new silence, or a silence to expire."""
    if "anomaly" in command:
        anomaly = AnomalyEvent.from_json(command["anomaly"])
        alert = alert_from_event(anomaly, generator_url(anomaly))
        for receiver in ALERTING.receivers:
            if receiver.wants(alert.labels) and state.dispatcher.silences.match(alert.labels, now) is not None:
                metrics.WEBHOOK_DELIVERIES.labels(receiver.name, "silenced").inc()
        state.dispatcher.ingest(alert, now)
        if settings.alertmanager_url:
            track_for_alertmanager(state, alert, now)
            state.pushed_at = float("-inf")  # a change is pushed on the next tick, not at the next re-push
    elif "silence" in command:
        state.dispatcher.silences.add(Silence.from_dict(command["silence"]))
    elif "expire" in command:
        state.dispatcher.silences.expire(command["expire"], float(command.get("at", now)))
    else:
        raise ValueError(f"unknown notify command with keys {sorted(command)}")


@app.agent(anomalies_topic, name="notify-route")
async def route(stream) -> None:
    """Check each anomaly event where it entered, then hand it to the single coordinator."""
    async for event in stream.events():
        metrics.RECORDS_IN.labels(STAGE).inc()
        try:
            AnomalyEvent.from_json(event.value)
        except TypeError as exc:  # a foreign producer on alerts.anomalies
            await send_dead_letter(STAGE, "wrong_type", f"not an anomaly event: {exc}",
                                   json.dumps(event.value, default=str), event.message)
            continue
        await notify_topic.send(key=event.key, value={"anomaly": event.value})


@app.agent(notify_topic, name="notify")
async def coordinate(stream) -> None:
    async for event in stream.events():
        try:
            with record_fault():
                state = load()
                now = time.time()
                apply(state, event.value, now)
                page = None
                if "anomaly" in event.value:
                    anomaly = AnomalyEvent.from_json(event.value["anomaly"])
                    page = pages.record(anomaly_pages.get(anomaly.anomaly_id), anomaly, now)
        except RecordFault as fault:
            await dead_letter_fault(STAGE, fault, json.dumps(event.value, default=str), event.message)
            continue
        if page is not None:
            anomaly_pages[anomaly.anomaly_id] = page
            await anomaly_pages.written()
        await save(state)


class TimedTransport(httpx.AsyncHTTPTransport):
    """Times every webhook HTTP request, retries included, whatever its outcome."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return await super().handle_async_request(request)
        finally:
            metrics.WEBHOOK_SECONDS.observe(time.perf_counter() - started)


_client: httpx.AsyncClient | None = None
_in_flight: dict[str, asyncio.Task] = {}


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(transport=TimedTransport())
    return _client


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
    receiver = notification.receiver
    result = await deliver(client(), receiver, notification.payload, now_fn=time.time)
    if result.attempts > 1:
        metrics.WEBHOOK_DELIVERIES.labels(receiver.name, "retried").inc(result.attempts - 1)
    if result.outcome == "delivered":
        metrics.WEBHOOK_DELIVERIES.labels(receiver.name, "delivered").inc()
    else:
        log.error("notify: webhook to %s failed after %d attempt(s): %s", receiver.name, result.attempts,
                  result.last_error)
        await (await alerts_deadletter_topic.send(key=receiver.name.encode(), value=result.deadletter()))
        metrics.WEBHOOK_DELIVERIES.labels(receiver.name, "deadletter").inc()
    if is_coordinator():
        state = load()
        state.outbox.pop(outbox_id, None)
        await save(state)


async def push_and_settle(alerts: list[dict]) -> None:
    assert settings.alertmanager_url is not None
    try:
        await push_alerts(client(), settings.alertmanager_url, [Alert.from_json(a) for a in alerts])
    except AlertmanagerError as exc:
        metrics.ALERTMANAGER_PUSHES.labels("error").inc()
        log.warning("notify: %s; retrying in %.0fs", exc, ALERTMANAGER_REPUSH_SECONDS)
        return
    metrics.ALERTMANAGER_PUSHES.labels("ok").inc()
    if is_coordinator():
        state = load()
        pushed = {a["fingerprint"] for a in alerts if a["status"] == "resolved"}
        state.alertmanager = {fp: a for fp, a in state.alertmanager.items()
                              if fp not in pushed or a["status"] != "resolved"}  # unless it fired again since
        await save(state)


@app.timer(interval=TICK_SECONDS)
async def flush() -> None:
    """Move due notifications into the outbox and start deliveries for the outbox, within limits."""
    if not is_coordinator():
        return
    now = time.time()
    state = load()
    due = state.dispatcher.due(now)
    for notification in due:
        state.outbox[uuid.uuid4().hex] = {"receiver": notification.receiver.name, "payload": notification.payload}
    receivers = {r.name: r for r in ALERTING.receivers}
    orphans = [outbox_id for outbox_id, item in state.outbox.items() if item["receiver"] not in receivers]
    for outbox_id in orphans:
        log.warning("notify: receiver %s left the config; dropping its queued notification",
                    state.outbox.pop(outbox_id)["receiver"])
    push = bool(state.alertmanager) and now - state.pushed_at >= ALERTMANAGER_REPUSH_SECONDS
    if push:
        state.pushed_at = now
    if due or orphans or push:
        await save(state)
    for outbox_id, item in state.outbox.items():
        if outbox_id not in _in_flight and len(_in_flight) < MAX_IN_FLIGHT:
            notification = Notification(receivers[item["receiver"]], item["payload"])
            spawn(outbox_id, deliver_and_settle(outbox_id, notification))
    if push and "alertmanager" not in _in_flight:
        spawn("alertmanager", push_and_settle(list(state.alertmanager.values())))


PAGE_RETENTION_SECONDS = 30 * 86400.0  # a resolved anomaly's page is kept this long after its last event


@app.timer(interval=3600.0)
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
    if not ALERTING.receivers:
        log.warning("notify: no receivers file (FINSENTRY_RECEIVERS unset): anomalies are not sent to webhooks")
    else:
        log.info("notify: %d webhook receiver(s): %s", len(ALERTING.receivers),
                 ", ".join(r.name for r in ALERTING.receivers))


async def read_capped(request: Any, limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes (declared or actual)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = b""
    async for chunk in request.content.iter_chunked(4096):
        body += chunk
        if len(body) > limit:
            return None
    return body


class BadRequest(ValueError):
    """A client error; the message says what is wrong in the client's terms."""


def json_object(body: bytes, shape: str = "") -> dict[str, Any]:
    """A request body as a JSON object, or BadRequest saying why not (`shape` hints at the form)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadRequest("body is not JSON: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object" + (f": {shape}" if shape else ""))
    return data


def silence_from_body(body: bytes, now: float) -> Silence:
    """Validate an Alertmanager API v2 `postableSilence` before it is queued, so the client hears
    about mistakes; a silence from the receivers file cannot be replaced through the API."""
    data = json_object(body, "{matchers: [{name, value, isRegex, isEqual?}], startsAt, endsAt, createdBy, comment}")
    try:
        silence = silence_from_v2(data, now)
    except SilenceError as exc:
        raise BadRequest(str(exc)) from None
    if silence.id.startswith(CONFIG_SILENCE_PREFIX):
        raise BadRequest(f"id: silences {CONFIG_SILENCE_PREFIX}* come from the receivers file; change them there")
    return silence


def operator_token() -> bytes | None:
    if settings.operator_token_file is None:
        return None
    try:
        token = settings.operator_token_file.read_text().strip()
    except OSError:
        log.error("notify: cannot read FINSENTRY_OPERATOR_TOKEN_FILE %s", settings.operator_token_file)
        return None
    return token.encode() or None


def operator_refusal(view: faust.web.View, request: Any) -> Any | None:
    """None when the request carries the operator's bearer token; else the 401 (none) or 403 (wrong)."""
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return view.json({"code": 401, "message": "operator bearer token required (Authorization: Bearer ...)"},
                         status=401, headers={"WWW-Authenticate": 'Bearer realm="finsentry"'})
    expected = operator_token()
    if expected is None or not hmac.compare_digest(given.strip().encode(), expected):
        return view.json({"code": 403, "message": "wrong operator token" if expected else
                          "no operator token configured on this worker (FINSENTRY_OPERATOR_TOKEN_FILE)"}, status=403)
    return None


@app.page("/api/v2/silences")
class SilencesView(faust.web.View):
    """Alertmanager's API v2 for silences, so `amtool --alertmanager.url=<worker>` works.

    A new silence travels on `alerts.notify` like anomalies, so any worker takes it; reads go to
    the coordinator, which holds them."""

    async def get(self, request: Any) -> Any:
        refusal = operator_refusal(self, request)
        return refusal if refusal is not None else await self.listed(request)

    @app.table_route(table=coordinator_state, exact_key=STATE_KEY)
    async def listed(self, request: Any) -> Any:
        try:
            wanted = filter_matchers(request.query.getall("filter", []))
        except (SilenceError, ValueError) as exc:
            return self.json({"code": 400, "message": str(exc)}, status=400)
        now = time.time()
        silences = [s for s in load().dispatcher.silences.list(now)
                    if all(m in s.matchers for m in wanted)]
        return self.json([s.to_v2(now) for s in silences])

    async def post(self, request: Any) -> Any:
        refusal = operator_refusal(self, request)
        if refusal is not None:
            return refusal
        body = await read_capped(request, MAX_SILENCE_BODY)
        if body is None:
            return self.json({"code": 413, "message": f"body over {MAX_SILENCE_BODY} bytes"}, status=413)
        try:
            silence = silence_from_body(body, time.time())
        except BadRequest as exc:
            return self.json({"code": 400, "message": str(exc)}, status=400)
        if load().dispatcher.silences.full(silence.id):
            return self.json({"code": 409, "message": f"{MAX_SILENCES} silences are held already; expire or delete "
                              "some first"}, status=409)
        await notify_topic.send(key=b"silence", value={"silence": silence.to_dict()})
        return self.json({"silenceID": silence.id})


@app.page("/api/v2/silence/{silence_id}")
class SilenceView(faust.web.View):
    async def get(self, request: Any, silence_id: str) -> Any:
        refusal = operator_refusal(self, request)
        return refusal if refusal is not None else await self.one(request, silence_id)

    @app.table_route(table=coordinator_state, exact_key=STATE_KEY)
    async def one(self, request: Any, silence_id: str) -> Any:
        silence = load().dispatcher.silences.items.get(silence_id)
        if silence is None:
            return self.json({"code": 404, "message": f"no silence {silence_id!r}"}, status=404)
        return self.json(silence.to_v2(time.time()))

    async def delete(self, request: Any, silence_id: str) -> Any:
        refusal = operator_refusal(self, request)
        return refusal if refusal is not None else await self.expired(request, silence_id)

    @app.table_route(table=coordinator_state, exact_key=STATE_KEY)
    async def expired(self, request: Any, silence_id: str) -> Any:
        silence = load().dispatcher.silences.items.get(silence_id)
        if silence is None:
            return self.json({"code": 404, "message": f"no silence {silence_id!r}"}, status=404)
        if silence_id.startswith(CONFIG_SILENCE_PREFIX):
            return self.json({"code": 400, "message": "this silence comes from the receivers file; remove it there"},
                             status=400)
        await notify_topic.send(key=b"silence", value={"expire": silence_id, "at": time.time()})
        return self.json({})
