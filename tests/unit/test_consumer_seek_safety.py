"""The consumer's guards for records fetched before a seek (streams/consumer.py).

They run against Faust's real consumer state with a scripted fetch (no broker: the seek's committed
offsets are given), because the guards rely on Faust internals and must fail loudly if an upgrade
changes them. `drain` mirrors the lines of Faust's `Consumer._drain_messages` that use the read
offset, so a change there shows up here as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from unittest import mock

import pytest
from faust.transport.drivers import aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.app import App
from streams.consumer import Consumer, first_unsettled

TOPIC = "news.clean.test"
TP0 = TP(TOPIC, 0)
COMMITTED = 4


@pytest.fixture
def consumer() -> Iterator[Consumer]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = App("consumer-seek-test", broker="kafka://127.0.0.1:1", loop=loop)
    app.topics.add(app.topic(TOPIC))
    loop.run_until_complete(app.topics._update_indices())  # what a worker does when agents subscribe

    async def nothing(*_: object) -> None:
        return None

    made = app.transport.create_consumer(callback=nothing, on_partitions_revoked=nothing,
                                         on_partitions_assigned=nothing)
    assert isinstance(made, Consumer)
    with mock.patch.object(aiokafka.Consumer, "seek_to_committed", return_value={TP0: COMMITTED}):
        yield made
    loop.close()


def record(offset: int) -> ConsumerMessage:
    return ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, 1, 1, TP0)


def fetch(consumer: Consumer, offsets: list[int], seek_after: int | None = None):
    """A fetched batch; with `seek_after`, the rebalance's seek lands after that record is handed out."""

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, ConsumerMessage]]:
        for offset in offsets:
            yield TP0, record(offset)
            if offset == seek_after:
                await consumer.perform_seek()

    return mock.patch.object(aiokafka.Consumer, "getmany", getmany)


async def drain(consumer: Consumer) -> list[int]:
    """Faust's fetcher loop, reduced to what it does with read offsets and gaps."""
    delivered = []
    async for tp, message in consumer.getmany(1.0):
        read = consumer._read_offset[tp]
        if read is None or message.offset >= read:
            if message.offset - (read or 0) > 1 and read:
                await consumer._add_gap(tp, read + 1, message.offset)
            delivered.append(message.offset)
            consumer._read_offset[tp] = message.offset
    return delivered


def ack(consumer: Consumer, offsets: list[int]) -> None:
    for offset in offsets:
        consumer.ack(record(offset))


def test_records_fetched_before_the_seek_make_no_gap_and_are_read_again(consumer: Consumer) -> None:
    run = asyncio.get_event_loop().run_until_complete
    with fetch(consumer, [4, 5, 6, 7, 8, 9, 10], seek_after=9):  # 4..9 handed out, then the seek
        first = run(drain(consumer))
    assert first == [4, 5, 6, 7, 8, 9, 10]
    assert not consumer._gap[TP0]  # Faust alone registers 5..9 as a gap: acknowledged, never processed
    assert consumer._read_offset[TP0] == COMMITTED  # the seek's position survives the stale hand-off
    ack(consumer, [10])  # the stale record's stream finishes first
    assert consumer._new_offset(TP0) is None
    with fetch(consumer, [4, 5, 6, 7, 8, 9, 10, 11]):  # refetched from the committed offset
        assert run(drain(consumer)) == [4, 5, 6, 7, 8, 9, 10, 11]
    ack(consumer, [4, 5, 6, 7, 8, 9, 11])
    assert consumer._new_offset(TP0) == 12


def test_a_record_handed_out_across_the_seek_does_not_keep_its_read_offset(consumer: Consumer) -> None:
    with fetch(consumer, [4, 5, 6], seek_after=5):
        asyncio.get_event_loop().run_until_complete(drain(consumer))
    assert consumer._read_offset[TP0] == COMMITTED  # else refetched 4 and 5 are dropped as read


def test_without_a_seek_the_fetch_is_untouched(consumer: Consumer) -> None:
    run = asyncio.get_event_loop().run_until_complete
    run(consumer.perform_seek())
    with fetch(consumer, [4, 5, 9]):  # a real gap, e.g. a transaction marker and compacted records
        assert run(drain(consumer)) == [4, 5, 9]
    assert [(i.begin, i.end) for i in consumer._gap[TP0]] == [(6, 10)]  # Faust counts the arriving offset in too
    ack(consumer, [4, 5, 9])
    assert consumer._new_offset(TP0) == 10


def test_no_commit_passes_an_unacknowledged_committed_offset(consumer: Consumer) -> None:
    asyncio.get_event_loop().run_until_complete(consumer.perform_seek())
    ack(consumer, [5, 6])  # Faust alone commits 7 here and skips offset 4
    assert consumer._new_offset(TP0) is None
    ack(consumer, [4])
    assert consumer._new_offset(TP0) == 7


def test_first_unsettled() -> None:
    assert first_unsettled([7, 5], [6]) == 5
    assert first_unsettled([7], [3]) == 3
    assert first_unsettled([], []) is None
