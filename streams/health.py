"""This worker's share of the work, as gauges: partitions assigned, consumer lag, readiness.

Ready means partitions assigned, tables recovered, the model loaded and no agent crashed.

Prometheus scrapes every replica, so each one reports only the partitions the broker gives it now
and drops a partition's lag series once the partition is revoked; otherwise a partition's lag
would be counted by two workers after a rebalance. A timer keeps the gauges current, so /metrics
is right without anyone calling /readyz. Label values stay bounded: topics are the agents' own,
partitions are bounded by the topics' partition counts.
"""

from __future__ import annotations

import logging

from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from streams import metrics
from streams.app import app, settings
from streams.failures import FAILURES, guarded_timer
from streams.loaded_model import classifier

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0

# Partitions with a lag series on /metrics, so revoked ones can be removed.
_reported: set[TP] = set()


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
    stopping, and /readyz names the agents in `crashed_agents`.
    """
    checks = {"partitions_assigned": bool(assigned_partitions()), "tables_recovered": tables_recovered(),
              "model_loaded": classifier() is not None, "agents_running": not FAILURES.any}
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


async def consumer_lag(partitions: set[TP]) -> dict[TP, int]:
    """Records between each partition's committed offset and its end, where the end is known yet.

    Faust has no public accessor for committed offsets: `_committed_offset` is the map it commits
    from, seeded from the broker on assignment and emptied for revoked partitions. Faust stores
    "nothing committed" and "committed 0" alike as None; the consumer then starts at the earliest
    offset, so lag counts from there (which differs from 0 only once retention has trimmed the log).
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
    return {tp: max(0, end - starts.get(tp, 0)) for tp, end in ends.items()}


async def refresh() -> None:
    """Set lag and partition gauges for the current assignment, drop revoked partitions' series."""
    partitions = assigned_partitions()
    lag = await consumer_lag(partitions)
    for tp, records in lag.items():
        metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(records)
    for tp in _reported - lag.keys():
        metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
    _reported.clear()
    _reported.update(lag)
    metrics.ASSIGNED_PARTITIONS.set(len(partitions))
    readiness()


@app.timer(interval=REFRESH_SECONDS)
@guarded_timer("health-refresh", settings.crash_exit_delay_seconds)
async def refresh_periodically() -> None:
    await refresh()
