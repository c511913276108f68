"""Monitor: scored stories -> per-scope windows, baselines and detectors -> `alerts.anomalies`.

`news.scored` is keyed by story id, but detection state is per scope (`topic:Earnings`,
`ticker:ACME`), so a fan-out agent re-keys each story once per scope onto the internal
`news.by-scope` topic. Every scope then lives on one partition, owned by one worker, whose
changelog-backed table holds that scope's `ScopeMonitor` state.

Time is event time throughout: a story's `published_at` closes its own scope's windows, and a
timer closes quiet scopes' windows at the newest `published_at` this worker has seen. Replays and
generated streams carry simulated timestamps, so wall time would close windows at the wrong moment.
A story moves event time no further than the Kafka timestamp of the record that carried it, though:
one source whose clock runs ahead would otherwise make every other source's stories late.
Event-time order across partitions is only as good as the pipeline keeps it: stories that arrive
more than `allowed_lateness` behind the watermark are ignored as late.

A redelivered story changes nothing (`ScopeMonitor.observe` ignores ids it has counted), and an
anomaly event is acknowledged by the broker before the state that produced it is written, so a
crash in between re-emits the same event (same anomaly id) rather than losing it. A batch's state
writes are acknowledged before the batch itself is, so a committed story is always in the state.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from dataclasses import asdict, dataclass

import faust

from alerts.config import MonitorConfig
from alerts.detectors import KINDS
from alerts.engine import AnomalyEvent, ScopeMonitor, Story, dormant, scopes_for
from alerts.records import finite_number, iso_utc, utf8_text, utf8_texts
from models.tickers import is_ticker
from streams import metrics
from streams.app import BY_SCOPE_TOPIC, anomalies_topic, app, by_scope_topic, scored_bytes, settings
from streams.errors import RecordFault, dead_letter_fault, record_fault, send_dead_letter
from streams.failures import guarded_timer
from streams.loaded_model import model_topics
from streams.ownership import key_partition, owns
from streams.settings import Settings
from streams.tables import DurableTable
from streams.validation import (
    MAX_FUTURE_SKEW,
    MAX_HEADLINE_CHARS,
    MAX_ID_CHARS,
    MAX_TICKERS,
    Rejection,
    model_style,
    model_text,
    parse_time,
    truncate_words,
)

log = logging.getLogger(__name__)
STAGE = "monitor"
TICK_SECONDS = 5.0
MONITOR_BATCH = 500  # by-scope events per batch; each scope's state is written once per batch
MONITOR_LINGER = 0.2  # seconds a batch waits to fill: adds at most this to alert latency
TOPIC_PREFIX = "topic:"
MAX_TOPIC_CHARS = 200  # a model topic is a short name; a foreign writer's long one would make a huge scope key
FANOUT_HOP = metrics.HOP_LATENCY.labels("monitor-fanout")
MONITOR_HOP = metrics.HOP_LATENCY.labels("monitor")


def monitor_config(s: Settings) -> MonitorConfig:
    overrides = {"window_seconds": s.monitor_window_seconds, "allowed_lateness": s.monitor_allowed_lateness,
                 "warmup_windows": s.monitor_warmup_windows}
    return MonitorConfig(**{name: value for name, value in overrides.items() if value is not None})


CONFIG = monitor_config(settings)

# JSON keys, like `news.by-scope`'s (streams/app.py): the changelog partition the timer writes to
# (use_partitioner) is the partition the scope's stories arrive on.
monitors: DurableTable = app.Table("monitor-scopes", default=None, partitions=settings.partitions, use_partitioner=True,
                                   schema=faust.Schema(key_serializer="json", value_serializer="json"))


@dataclass
class EventClock:
    """The newest event time this worker has seen (each story's `published_at`, but no later than its
    record's Kafka timestamp), and the watermark the timer last applied."""

    newest: float = float("-inf")
    applied: float = float("-inf")


clock = EventClock()


@dataclass
class LateLog:
    """Late stories, said in the worker's log: at once, then at most every `every` seconds, with how
    many came since and how far behind. The counter alone was the only sign that a whole replay of
    older news (a second `generate --to-kafka` into the same worker) had reached no detector."""

    every: float = 60.0
    count: int = 0
    behind: float = 0.0
    event_time: float = 0.0
    next_at: float = float("-inf")

    def late(self, published_at: float, event_time: float, now: float) -> None:
        """One late story (counted once per scope it counts in); times in Unix seconds, `now` wall time."""
        self.count += 1
        self.behind = max(self.behind, event_time - published_at)
        self.event_time = event_time
        self.flush(now)

    def flush(self, now: float) -> None:
        """Say the late stories not yet said, once `every` seconds have passed since the last line; the
        monitor's timer calls it too, so the tail of a replay that ends within the minute is said."""
        if not self.count or now < self.next_at:
            return
        log.warning("monitor: %d late %s (one count per scope) up to %.0f s behind event time %s: more than "
                    "the allowed lateness (FINSENTRY_MONITOR_ALLOWED_LATENESS=%.0f s), so they count in no window "
                    "and no detector sees them; a replay or backfill of news older than the windows its scopes have closed, or a "
                    "source whose clock or delivery runs late (docs/ALERTS.md, Lateness)", self.count,
                    "story" if self.count == 1 else "stories", self.behind,
                    iso_utc(self.event_time), CONFIG.allowed_lateness)
        self.count, self.behind, self.next_at = 0, 0.0, now + self.every


late_log = LateLog()
# The agent and the timer both load a scope's state, change it, await the broker and save it: without
# one lock the timer could save a state the agent had moved past, dropping the agent's stories and
# re-emitting its anomaly events (seen in the slow-receiver run: a story missing, an open event twice).
state_lock = asyncio.Lock()


# How far ahead of this worker's clock a story's publication time may be. Ingest clamps a time more
# than MAX_FUTURE_SKEW ahead of the record's Kafka timestamp, so a later one on news.scored or
# news.by-scope is a foreign record (twice the skew leaves room for the two machines' clocks). A time within the
# limit still moves event time no further than its record's Kafka timestamp (`clock_bound`): ingest lets a source
# whose clock runs fast through, and its stories would otherwise make every other source's stories late.
FUTURE_LIMIT = 2 * MAX_FUTURE_SKEW


def _time_rejection(published_at: float, now: float) -> Rejection | None:
    """Why a publication time (Unix seconds) may not reach the event clock, or None."""
    if 0 <= published_at <= now + FUTURE_LIMIT:
        return None
    return Rejection("bad_timestamp", f"published_at {published_at} is before 1970 or more than "
                                      f"{FUTURE_LIMIT:.0f} s ahead of this worker's clock")


def _score_rejection(score: float) -> Rejection | None:
    """Why a finite sentiment_score may not reach a scope, or None. The model's is p(positive) -
    p(negative) (schemas/news.scored.schema.json): one outside [-1, 1] is a foreign producer's, and
    counted it would make the scope's score variance infinite and its shift detector dead for good."""
    if -1.0 <= score <= 1.0:
        return None
    return Rejection("wrong_type", f"sentiment_score {float(score):.6g} is outside [-1, 1]")


def _bounds_rejection(story_id: str, topic: str | None) -> Rejection | None:
    """Why a story's id or topic is longer than ingest lets through, or None. A foreign writer's
    longer one could make a copy, a scope key or a dead letter the producer refuses (a
    180,000-character headline was 1 MB once JSON-escaped, and the worker stopped on it after every
    restart); the headline itself is cut to MAX_HEADLINE_CHARS instead, as ingest cuts it."""
    if len(story_id) > MAX_ID_CHARS:
        return Rejection("bad_id", f"id has {len(story_id)} characters; the limit is {MAX_ID_CHARS}")
    if topic is not None and len(topic) > MAX_TOPIC_CHARS:
        return Rejection("wrong_type", f"topic has {len(topic)} characters; the limit is {MAX_TOPIC_CHARS}")
    return None


def clock_bound(message: object, now: float) -> float:
    """How far a story carried by this record may move event time: the record's Kafka timestamp (Unix
    seconds), when it was produced; this worker's clock (`now`) for a record that has none."""
    timestamp = getattr(message, "timestamp", None)
    return timestamp if finite_number(timestamp) and timestamp > 0 else now


def probability(value: object) -> float | None:
    """A story's model confidence if it is one (a finite number in [0, 1]), else None: optional, not
    worth the story, and an anomaly event carrying a sample outside [0, 1] (a foreign scorer's 1.5, a
    percentage) is refused downstream (alerts/records.py), which would hold back a real surge's alert."""
    return float(value) if finite_number(value) and 0.0 <= float(value) <= 1.0 else None


def parse_scored(raw: bytes | None, now: float) -> tuple[Story, list[str]] | Rejection:
    """A `news.scored` value as the monitor's Story plus the scopes it counts in, or why not.

    The one check of a scored story's fields before they are counted: `by_scope_story` repeats it
    only against foreign producers on the internal topic. `now`: Unix seconds.
    """
    try:
        record = json.loads(raw) if raw is not None else None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return Rejection("invalid_json", f"not JSON: {exc}")
    if not isinstance(record, dict):
        return Rejection("not_object", "a news.scored value must be a JSON object")
    tickers = record.get("tickers") or []
    topic = record.get("topic")
    if not (isinstance(record.get("id"), str) and isinstance(record.get("headline"), str)
            and finite_number(record.get("sentiment_score")) and (topic is None or utf8_text(topic))
            and utf8_texts(tickers)):
        return Rejection("wrong_type", "needs id, headline (strings), sentiment_score (finite number), topic, "
                                       "tickers (list)")
    if rejected := _score_rejection(record["sentiment_score"]):
        return rejected
    try:
        published_at = parse_time(record.get("published_at")).timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        return Rejection("bad_timestamp", f"published_at: {exc}")
    if rejected := _time_rejection(published_at, now):
        return rejected
    if rejected := _bounds_rejection(record["id"], topic):
        return rejected
    tickers = [ticker for t in tickers if is_ticker(ticker := t.strip().upper())][:MAX_TICKERS]
    try:
        story = Story(record["id"], truncate_words(model_text(record), MAX_HEADLINE_CHARS), record.get("sentiment"),
                      float(record["sentiment_score"]), published_at,
                      probability(record.get("confidence")), topic,
                      "social" if model_style(record) == "social" else None)
    except ValueError as exc:
        return Rejection("wrong_type", str(exc))
    return story, scopes_for(topic, tickers)


@app.agent(scored_bytes, name="monitor-fanout")
async def fan_out(stream) -> None:
    async for event in stream.events():
        metrics.RECORDS_IN.labels(STAGE).inc()
        try:
            with record_fault():
                parsed = parse_scored(event.value, time.time())
                if not isinstance(parsed, Rejection):
                    story, scopes = parsed
                    value = scope_copy(story)
        except RecordFault as fault:
            await dead_letter_fault(STAGE, fault, event.value, event.message)
            continue
        if isinstance(parsed, Rejection):
            await send_dead_letter(STAGE, parsed.reason, parsed.message, event.value, event.message)
            continue
        copies = asyncio.gather(*[await by_scope_topic.send(key=scope, value=value) for scope in scopes])
        metrics.when_acknowledged(copies, functools.partial(fanned_out, event.message.timestamp))


def scope_copy(story: Story) -> dict:
    """A story's `news.by-scope` value: its fields, less `style` where it has none (newswire), so that
    a newswire story's copy is one a monitor from before styles reads too (docs/OPERATIONS.md)."""
    value = asdict(story)
    if value["style"] is None:
        del value["style"]
    return value


def fanned_out(read_at: float) -> None:
    """Time a story whose every copy the broker acknowledged; `read_at`: its scored record's timestamp."""
    FANOUT_HOP.observe(max(0.0, time.time() - read_at))


def rebuild(scope: str, state: dict | None, stories: list[tuple[Story, float]]) -> ScopeMonitor:
    """The scope's monitor from a saved state, with `stories` (each with the watermark it was observed
    at) counted since then, in order.

    How a record fault is undone: `observe` changes the state in steps (the story counted, due
    windows popped, then each one closed), so one that raises leaves it part-way. `observe` is
    deterministic, so counting again the stories that succeeded since the last save gives exactly the
    state they left, at no cost to a record that does not fail. Their anomaly events are already in
    the caller's hands, so the ones counting again returns are dropped.
    """
    scope_monitor = ScopeMonitor.from_dict(state, CONFIG) if state else ScopeMonitor.new(scope, CONFIG)
    for story, watermark in stories:
        scope_monitor.observe(story, watermark)
    return scope_monitor


async def publish(events: list[AnomalyEvent]) -> None:
    """Send events and wait for the broker's acknowledgement, before the caller saves state."""
    pending = [await anomalies_topic.send(key=e.scope.encode("utf-8"), value=e.to_json()) for e in events]
    await asyncio.gather(*pending)
    for e in events:
        metrics.ANOMALIES.labels(e.kind, e.severity, e.event).inc()
        log.info("anomaly %s %s %s in %s (score %.1f, %s)", e.event, e.anomaly_id, e.kind, e.scope, e.score, e.severity)
    metrics.RECORDS_OUT.labels(STAGE).inc(len(events))


# Topics with a negative-share series on /metrics, so the timer can remove those it no longer shows.
_shown_topics: set[str] = set()


def record_window(monitor: ScopeMonitor) -> str | None:
    """Per-topic negative share of the last closed window, and the topic if it has a series now. Only the
    model's topics become label values: a foreign producer on news.scored could name any, and tickers
    never do. An empty window has no share: its topic's series is removed rather than set to 0, which
    would read as "no negative news"."""
    topic = monitor.scope.removeprefix(TOPIC_PREFIX)
    if not monitor.scope.startswith(TOPIC_PREFIX) or monitor.last_window is None or topic not in model_topics(settings):
        return None
    share = monitor.last_window.negative_share
    if share is None:
        _forget_share(topic)
        return None
    metrics.NEGATIVE_SHARE.labels(topic).set(share)
    _shown_topics.add(topic)
    return topic


def _forget_share(topic: str) -> None:
    if topic in _shown_topics:
        _shown_topics.discard(topic)
        metrics.NEGATIVE_SHARE.remove(topic)


def by_scope_story(value: object, now: float) -> Story | Rejection:
    """A `news.by-scope` value (the fan-out's `asdict(Story)`) as a Story, or why not.

    Only a foreign producer on this internal topic can send anything else; checked before the value
    reaches the event clock or a scope's windows, where a wrong type would crash the agent or be
    saved into the scope's state. `now`: Unix seconds.
    """
    if not isinstance(value, dict):
        return Rejection("wrong_type", "a news.by-scope value must be a JSON object")
    published_at, confidence = value.get("published_at"), value.get("confidence")
    if not (isinstance(value.get("id"), str) and isinstance(value.get("headline"), str)
            and finite_number(value.get("sentiment_score")) and finite_number(published_at)
            and (confidence is None or finite_number(confidence))
            and (value.get("topic") is None or utf8_text(value.get("topic")))):
        return Rejection("wrong_type", "needs id, headline (strings), sentiment_score, published_at (Unix "
                                       "seconds) and confidence (finite numbers; confidence may be null), "
                                       "topic (a string or null)")
    if rejected := _time_rejection(published_at, now) or _score_rejection(value["sentiment_score"]):
        return rejected
    if rejected := _bounds_rejection(value["id"], value.get("topic")):
        return rejected
    try:  # the headline within the fan-out's bound too: it is kept in the scope's state (one table record)
        return Story(**{**value, "headline": truncate_words(value["headline"], MAX_HEADLINE_CHARS),
                        "confidence": probability(confidence)})
    except (TypeError, ValueError) as exc:  # an unknown field, or a sentiment no model gives
        return Rejection("wrong_type", f"not a news.by-scope record: {exc}")


def group_by_scope(events: list) -> tuple[dict[str, list], list]:
    """A batch's events per scope, each scope's in arrival order (one partition, so offset order), and
    the events whose key is no scope: not a JSON string (bytes from lenient_json, a number, none)."""
    groups: dict[str, list] = {}
    keyless = []
    for event in events:
        if isinstance(event.key, str):
            groups.setdefault(event.key, []).append(event)
        else:
            keyless.append(event)
    return groups, keyless


async def observe_scope(scope: str, events: list) -> None:
    """Count a scope's share of a batch, publish its anomaly events, then write its state once.

    One changelog write per scope per batch rather than per story: a busy topic scope holds the
    ids of every open window, tens of kilobytes, and writing that per story made the changelog (and
    so every restart's recovery) grow by gigabytes in a long run. The exception is a story that
    closes windows: the state is written just before it, so every window's final contents reach the
    changelog (after the anomaly events decided so far are acknowledged, as always).

    A story whose processing raises is dead-lettered and leaves the scope's state, and the event
    clock, as they were before it (`rebuild`).

    A story counts in the window of its `published_at` but moves event time (its scope's windows
    and the event clock) no further than its record's Kafka timestamp (`clock_bound`): a source whose
    clock runs minutes fast would otherwise close every scope's windows early, and everyone's on-time
    stories would be late.
    """
    saved = monitors.get(scope)  # the state as last written, and the stories counted since:
    counted: list[tuple[Story, float]] = []  # what a record fault rolls the scope back to
    scope_monitor = rebuild(scope, saved, counted)
    anomalies: list[AnomalyEvent] = []
    if clock.applied > float("-inf") and scope_monitor.windows.behind(clock.applied):
        # A dormant scope's quiet windows wait for its next story (the timer skips it): closed first,
        # at the watermark the timer last applied, its stories are late or not as they always were.
        await publish(scope_monitor.advance(clock.applied))
        monitors[scope] = saved = scope_monitor.to_dict()
    for event in events:
        now = time.time()
        story = by_scope_story(event.value, now)
        if isinstance(story, Rejection):
            await send_dead_letter(STAGE, story.reason, story.message, event.message.value, event.message)
            continue
        watermark = min(story.published_at, clock_bound(event.message, now))
        try:
            with record_fault():
                late = scope_monitor.is_late(story.published_at)
                closes = scope_monitor.observing_closes(story, watermark)
        except RecordFault as fault:
            await dead_letter_fault(STAGE, fault, event.message.value, event.message)
            continue
        if late:
            metrics.LATE_STORIES.inc()
            closed_at = scope_monitor.windows.closed_at()  # a late story's scope has closed windows
            late_log.late(story.published_at, max(clock.newest, watermark, closed_at or watermark), now)
        if closes:
            await publish(anomalies)
            anomalies = []
            monitors[scope] = saved = scope_monitor.to_dict()
            counted = []
        try:
            with record_fault():
                anomalies.extend(scope_monitor.observe(story, watermark))
        except RecordFault as fault:
            scope_monitor = rebuild(scope, saved, counted)
            await dead_letter_fault(STAGE, fault, event.message.value, event.message)
            continue
        counted.append((story, watermark))
        clock.newest = max(clock.newest, watermark)
    await publish(anomalies)
    monitors[scope] = scope_monitor.to_dict()
    record_window(scope_monitor)


@app.agent(by_scope_topic, name="monitor")
async def monitor(stream) -> None:
    async for batch in stream.take_events(MONITOR_BATCH, within=MONITOR_LINGER):
        groups, keyless = group_by_scope(batch)
        for event in keyless:  # only a foreign producer on our internal topic can cause this
            await send_dead_letter(STAGE, "wrong_type", "a news.by-scope key must be a JSON string (the scope)",
                                   event.message.value, event.message)
        async with state_lock:
            for scope, events in groups.items():
                await observe_scope(scope, events)
            await monitors.written()  # before take_events acknowledges the batch (streams/tables.py)
        now = time.time()
        for event in batch:
            MONITOR_HOP.observe(max(0.0, now - event.message.timestamp))


# A scope's partition never changes (the key's hash), and the timer asks for every scope every tick.
_partitions: dict[str, int] = {}


def owned(scope: str) -> bool:
    """Is this worker the active owner of the scope (not a standby replica holding a copy)?"""
    partition = _partitions.get(scope)
    if partition is None:
        if len(_partitions) > 2 * len(monitors) + 1000:  # keys this worker no longer holds
            _partitions.clear()
        key = monitors.changelog_topic.prepare_key(scope, None)[0]
        partition = _partitions[scope] = key_partition(key)
    return owns(BY_SCOPE_TOPIC, partition)


@app.timer(interval=TICK_SECONDS)
@guarded_timer("monitor-advance", settings.crash_exit_delay_seconds)
async def advance_quiet_scopes() -> None:
    """Close quiet scopes' windows at the event-time watermark, count open anomalies and drop the
    negative-share series of topics this worker no longer shows.

    A dormant scope (`alerts.engine.dormant`: nothing open, nothing in its spans) is skipped: closing
    its empty windows would change nothing but its baseline's decay, and rewriting it to the changelog
    every minute cost, with tens of thousands of one-story tickers, more than the event loop had. Its
    quiet windows close when its next story arrives (`observe_scope`). It stays in the table: a
    ticker quiet over a weekend keeps its baseline, and its next surge is judged against it rather
    than waiting out a new scope's warm-up. A dormant scope has no open anomaly, so the count is the
    loaded scopes'.
    """
    late_log.flush(time.time())
    watermark, moved = clock.newest, clock.newest > clock.applied
    active = dict.fromkeys(KINDS, 0)
    shown: set[str] = set()
    async with state_lock:
        for scope in [key for key in list(monitors.keys()) if owned(key)]:
            state = monitors.get(scope)
            if state is None:
                continue
            if dormant(state):
                continue
            scope_monitor = rebuild(scope, state, [])
            if moved:
                before = scope_monitor.last_window
                events = scope_monitor.advance(watermark)
                await publish(events)
                if scope_monitor.last_window is not before:
                    monitors[scope] = scope_monitor.to_dict()
            if topic := record_window(scope_monitor):
                shown.add(topic)
            for kind, lifecycle in scope_monitor.lifecycles.items():
                active[kind] += lifecycle.active_id is not None
        await monitors.written()
    clock.applied = watermark
    for topic in _shown_topics - shown:  # a revoked partition's topics, and dormant ones
        _forget_share(topic)
    for kind, count in active.items():
        metrics.ANOMALIES_ACTIVE.labels(kind).set(count)
