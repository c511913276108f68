"""This worker's share of the work, as gauges: partitions assigned, consumer lag, stalls, readiness.

Ready means partitions assigned, tables recovered, the model loaded, no agent crashed and no
partition stalled: a partition is stalled when it has work this worker has not finished, and its
committed offset has not moved for FINSENTRY_CONSUMER_STALL_SECONDS. Work is records in hand (read
and not finished: an agent stuck on a record, a hung call, a lost await; lag alone cannot show it,
because a consumer whose stream is full stops fetching, so its end offset, and so its lag, freezes
with it), records the Kafka consumer fetched and has not handed on (a partition Faust no longer
takes records from), or records handed on that no agent holds and no commit passed (dropped on
the way). The end offset is the one the consumer's own fetches saw, so a partition whose fetches
fail, or that was never fetched, shows no lag and is not counted (aiokafka logs the fetch errors).
While a partition with records in hand is stalled, /readyz names no other (their gauges still climb): Faust delivers
every topic through one loop, which one agent's full stream blocks, so they wait behind it.

Prometheus scrapes every replica, so each one reports only the partitions the broker gives it now
and drops a partition's lag series once the partition is revoked; otherwise a partition's lag
would be counted by two workers after a rebalance. A timer keeps the gauges current, so /metrics
is right without anyone calling /readyz. Label values stay bounded: topics are the agents' own,
partitions are bounded by the topics' partition counts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from streams import metrics
from streams.app import app, settings
from streams.failures import FAILURES, guarded_timer
from streams.loaded_model import classifier

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0

# Partitions with lag and stall series on /metrics, so revoked ones can be removed.
_reported: set[TP] = set()


@dataclass(frozen=True, slots=True)
class Span:
    """Where the consumer group stands on one partition (offsets)."""

    committed: int  # the next offset the group would read after a restart
    end: int  # the high-water mark at the consumer's last fetch
    in_hand: bool  # records at or past `committed` handed to an agent and not yet committed
    read: int | None = None  # the Kafka consumer's position: the next offset it hands out; None if unknown
    handed: int | None = None  # one past the last offset handed on to Faust since the last seek, if any

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)

    @property
    def unfinished(self) -> bool | None:
        """Whether the partition has work this worker owes: records in hand, records fetched and not
        handed on, or records handed on past the committed offset that nobody holds; None when that
        cannot be told (the consumer's position is being reset). Lag alone is not work: transaction
        markers and offsets removed by compaction or retention hold no record, so nothing
        acknowledges them and a commit rests below them until a record follows."""
        if self.in_hand:
            return True
        if self.lag == 0:
            return False
        if self.read is None:
            return None
        return self.read < self.end or (self.handed is not None and self.handed > self.committed)


@dataclass(frozen=True, slots=True)
class Progress:
    """A partition's committed offset, since when (monotonic seconds) it has been unfinished without
    moving, and whether records were in hand at the last look."""

    committed: int
    since: float
    held: bool = False


# The last Progress of each reported partition.
_progress: dict[TP, Progress] = {}


def progressed(before: Progress | None, span: Span, now: float) -> Progress:
    """The partition's progress after `span` was seen at `now`: the clock restarts whenever the
    committed offset moves or the partition has no unfinished work, so a slow but moving agent never
    counts as stalled; a look that cannot tell leaves the clock as it was."""
    unfinished = span.unfinished
    if before is None or unfinished is False or span.committed != before.committed:
        return Progress(span.committed, now, span.in_hand)
    return before if unfinished is None else replace(before, held=span.in_hand)


def stalled(now: float | None = None) -> dict[TP, float]:
    """Partitions unfinished without moving for longer than the setting: seconds each. Only those
    with records in hand while any such is stalled: the rest wait behind it (module docstring)."""
    now = time.monotonic() if now is None else now
    over = {tp: now - p.since for tp, p in _progress.items() if now - p.since > settings.consumer_stall_seconds}
    return {tp: seconds for tp, seconds in over.items() if _progress[tp].held} or over


def source_topics() -> frozenset[str]:
    """Topics the agents read. Changelog and standby partitions are excluded: nothing is behind on them."""
    return frozenset(name for agent in app.agents.values() for name in getattr(agent.channel, "topics", ()))


def assigned_partitions() -> set[TP]:
    """Partitions of the agents' topics that the broker has given this worker; none before it joins."""
    try:
        assignment = app.consumer.assignment()
    except ConsumerNotStarted:
        return set()
    topics = source_topics()
    return {tp for tp in assignment if tp.topic in topics}


def tables_recovered() -> bool:
    """Faust has finished restoring every table from its changelog (and is not restoring again after
    a rebalance): before that, a table read can miss state the worker had."""
    return app.tables.recovery.completed.is_set() and not app.in_recovery


def readiness() -> dict[str, bool]:
    """The checks behind /readyz; sets finsentry_ready so the endpoint and the gauge always agree.

    `agents_running` is false once any agent has crashed (streams/failures.py); the worker is then
    stopping, and /readyz names the agents in `crashed_agents`. `partitions_progressing` is false
    while a partition is stalled (as of the last refresh); /readyz names them in `stalled_partitions` (only
    those with records held, when any is).
    """
    checks = {"partitions_assigned": bool(assigned_partitions()), "tables_recovered": tables_recovered(),
              "model_loaded": classifier() is not None, "agents_running": not FAILURES.any,
              "partitions_progressing": not stalled()}
    metrics.READY.set(1 if all(checks.values()) else 0)
    return checks


def _end_offset(tp: TP) -> int | None:
    """High-water mark from the consumer's last fetch: no broker round trip, and unlike Tansu's
    ListOffsets answer it is right for multi-record batches. None before the first fetch, or when
    the partition was revoked since `assignment()` (the Kafka consumer runs in its own thread)."""
    try:
        return app.consumer.highwater(tp)
    except (AssertionError, AttributeError):
        return None


async def offsets(partitions: set[TP]) -> dict[TP, Span]:
    """Each partition's committed and end offsets and whether records are in hand, where its end is known yet.

    Faust has no public accessor for committed offsets: `_committed_offset` is the map it commits
    from, seeded from the broker on assignment and emptied for revoked partitions. Faust stores "nothing committed" and "committed 0" alike as None; the
    consumer then starts at the earliest offset, so lag counts from there (which differs from 0 only
    once retention has trimmed the log).
    """
    ends = {tp: end for tp in partitions if (end := _end_offset(tp)) is not None}
    starts: dict[TP, int] = {tp: offset for tp in ends if (offset := app.consumer._committed_offset.get(tp)) is not None}
    unknown = [tp for tp, end in ends.items() if tp not in starts and end > 0]
    if unknown:
        try:
            starts.update(await app.consumer.earliest_offsets(*unknown))
        except KafkaError as exc:  # a broker hiccup must not end the timer; next round retries
            log.warning("consumer lag: earliest offsets of %d partition(s) unavailable: %s", len(unknown), exc)
            ends = {tp: end for tp, end in ends.items() if tp not in unknown}
    held = in_hand(app.consumer, starts)
    spans = {tp: Span(starts.get(tp, 0), end, tp in held) for tp, end in ends.items()}
    # Positions matter only where there is lag and nothing in hand (streams/consumer.py; no round
    # trip to the consumer's thread).
    return {tp: replace(span, read=app.consumer.fetch_position(tp), handed=app.consumer.handed(tp))
            if span.lag and not span.in_hand else span for tp, span in spans.items()}


def in_hand(consumer: object, committed: dict[TP, int]) -> set[TP]:
    """Partitions with records handed to an agent and not committed: unacknowledged (Faust's
    `_unacked_messages`, which its shutdown waits on) or acknowledged behind one that is not
    (`_acked`, offsets waiting to become committable). Both are briefly non-empty between commits
    on any busy partition; only a committed offset that then does not move makes a stall."""
    held = {tp for tp, offsets in getattr(consumer, "_acked", {}).items() if offsets}
    held.update(m.tp for m in list(getattr(consumer, "_unacked_messages", ())) if m.offset >= committed.get(m.tp, 0))
    return held


async def refresh() -> None:
    """Set lag, stall and partition gauges for the current assignment, drop revoked partitions' series.
    While tables recover no agent runs, so no partition counts as stalled then."""
    partitions = assigned_partitions()
    spans = await offsets(partitions)
    now = time.monotonic()
    recovering = not tables_recovered()
    for tp, span in spans.items():
        progress = _progress[tp] = Progress(span.committed, now) if recovering else progressed(_progress.get(tp), span, now)
        metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(span.lag)
        metrics.CONSUMER_STALLED.labels(tp.topic, str(tp.partition)).set(now - progress.since)
    # A partition still assigned, with its end known, that this look could not place (the broker did
    # not answer for its start) keeps its series and clock as they were. Any other partition without
    # a span (revoked, or not fetched since it was assigned) loses both.
    unread = {tp for tp in (_reported & partitions) - spans.keys() if _end_offset(tp) is not None}
    if recovering:
        for tp in unread & _progress.keys():
            _progress[tp] = Progress(_progress[tp].committed, now)
    for tp in _reported - spans.keys() - unread:
        metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
        metrics.CONSUMER_STALLED.remove(tp.topic, str(tp.partition))
        _progress.pop(tp, None)
    _reported.clear()
    _reported.update(spans.keys() | unread)
    metrics.ASSIGNED_PARTITIONS.set(len(partitions))
    readiness()


@app.timer(interval=REFRESH_SECONDS)
@guarded_timer("health-refresh", settings.crash_exit_delay_seconds)
async def refresh_periodically() -> None:
    await refresh()
