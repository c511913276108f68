"""Which partitions this worker owns: the single-writer check, written once.

Notification and case assignment each have one writer, the worker that owns partition 0 of a
single-partition internal topic (`alerts.notify`, `scheduler.inbox`); the monitor's timer touches only
the scopes whose `news.by-scope` partition it owns. Standby replicas hold copies of those
partitions' tables, so ownership means the active assignment, never a standby one.
"""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP

from streams.app import app, settings

_PARTITIONER = DefaultPartitioner()  # the producer's (murmur2, as Kafka's Java client)


def owns(topic: str, partition: int = 0) -> bool:
    """This worker is the active owner of `topic`'s `partition` (not a standby replica holding a copy)."""
    return TP(topic, partition) in app.assignor.assigned_actives()


def key_partition(key: bytes) -> int:
    """The partition, of the `settings.partitions` every keyed topic has, that the producer gives a
    record keyed `key` (serialised bytes): which worker owns a story id, a scope or a case."""
    return int(_PARTITIONER(key, list(range(settings.partitions)), None))


def owns_recovered(topic: str, partition: int = 0) -> bool:
    """Owns it, and is neither rebalancing nor recovering tables: the state read now is the whole state."""
    return owns(topic, partition) and not app.rebalancing and not app.in_recovery
