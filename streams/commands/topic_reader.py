"""Reading a Kafka topic to its end with no consumer group: what `finsentry tail` and
`finsentry feedback export` share, so both end the same way however busy or broken the topic is.

Neither moves anybody's committed offsets (no group). Both read up to the end offsets found at start;
a partition whose records stop coming for IDLE_SECONDS before that end is given up and reported,
never waited on for ever. Tansu reports a partition's end as its last record batch's first offset + 1
(tests/conftest.py `read`), so the batch that holds the end is returned whole: cutting it at the end
offset would drop records that were written.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from streams.settings import BROKER_ENV, ENV_PREFIX, Settings
from streams.usage import UsageError

POLL_MS = 500
IDLE_SECONDS = 10.0  # give a partition up when the end offsets promise records that never come
BUFFERED = 2000  # records held per partition while merging before its fetching pauses


# kafka-python (3.0.12) parks a paused partition's records that a poll left half taken, and takes them
# back only while no other partition's records sit in line, which after the first fetch is never; it
# fetches no partition with parked records, so that partition is read no further (`finsentry tail
# --from-beginning` stopped at offset 2000 of a 2,765-record partition: BUFFERED records, then a pause).
# A poll that may take every record it has fetched never leaves any half taken.
MAX_POLL_RECORDS = 1_000_000


def group_less_consumer(bootstrap: Sequence[str], client_options: dict[str, Any]) -> Any:
    """A kafka-python KafkaConsumer in no consumer group, for `until_end`: it commits nothing, and
    starts at the earliest offset where a partition has none to start from."""
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=list(bootstrap), group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_poll_records=MAX_POLL_RECORDS, **client_options)


def broker_settings(broker: str | None) -> Settings:
    """Settings from the environment, with `--broker` (when given) in place of FINSENTRY_BROKER."""
    return Settings.load(dict(os.environ, **({ENV_PREFIX + "BROKER": broker} if broker else {})))


def unreadable(topic: str, bootstrap: Sequence[str], exc: Exception) -> UsageError:
    """The one line for a Kafka error while reading `topic`: no broker answers, or one refuses the client."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return UsageError(f"cannot read Kafka topic {topic!r} from {','.join(bootstrap)}: {detail}; "
                      f"check the broker is running, or point {BROKER_ENV} (or --broker) at one that is")


def order(message: Any) -> tuple[int, int, int]:
    """Oldest first: by timestamp (none: first), then partition and offset."""
    timestamp = getattr(message, "timestamp", None)
    return timestamp if isinstance(timestamp, int) else -1, message.partition, message.offset


def until_end(consumer: Any, ends: dict[Any, int], stalled: Callable[[Any, int, int], None]) -> Iterator[Any]:
    """The assigned partitions' records (kafka-python ConsumerRecords) from their positions up to
    `ends` (TopicPartition -> end offset), merged oldest first by `order`.

    A record is yielded only once every partition still short of its end has one waiting, so the
    output is in timestamp order wherever each partition's is, and each partition's own order is
    kept. A partition at its end is paused (its last fetch is kept whole); one whose records stop
    coming for IDLE_SECONDS is given up: `stalled(tp, position, end)` is called for it, and the
    caller decides whether a short read is a warning or a failure. Memory: at most BUFFERED records
    per partition, plus one fetch. `consumer` comes from `group_less_consumer`: pausing a partition
    with records in line in another consumer stops its reading for good (MAX_POLL_RECORDS)."""
    buffers: dict[Any, deque] = {tp: deque() for tp in ends}
    short = {tp for tp in ends if consumer.position(tp) < ends[tp]}
    consumer.pause(*(tp for tp in ends if tp not in short))
    last_progress = time.monotonic()
    while True:
        while not any(tp in short and not buffers[tp] for tp in ends):
            heads = [tp for tp in ends if buffers[tp]]
            if not heads:
                return
            yield buffers[min(heads, key=lambda tp: order(buffers[tp][0]))].popleft()
        if time.monotonic() - last_progress > IDLE_SECONDS:
            for tp in sorted(short, key=lambda tp: tp.partition):
                stalled(tp, consumer.position(tp), ends[tp])
            consumer.pause(*short)
            short.clear()
            continue
        full = [tp for tp in short if len(buffers[tp]) >= BUFFERED]
        consumer.pause(*full)
        consumer.resume(*(tp for tp in short if tp not in full))
        for tp, messages in consumer.poll(timeout_ms=POLL_MS).items():
            if messages:
                buffers[tp].extend(messages)
                last_progress = time.monotonic()
        done = {tp for tp in short if consumer.position(tp) >= ends[tp]}
        consumer.pause(*done)
        short -= done
