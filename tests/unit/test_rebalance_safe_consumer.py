"""The consumer's two guards against committing past a record fetched before a rebalance.

They run against Faust's real consumer state (no broker needed: nothing here fetches), because
the guards rely on Faust internals and must fail loudly if an upgrade changes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.app import App
from streams.consumer import Consumer

TOPIC = "news.clean.test"
TP0 = TP(TOPIC, 0)


@pytest.fixture
def consumer() -> Iterator[Consumer]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = App("consumer-guard-test", broker="kafka://127.0.0.1:1", loop=loop)
    app.topics.add(app.topic(TOPIC))
    loop.run_until_complete(app.topics._update_indices())  # what a worker does when agents subscribe

    async def nothing(*_: object) -> None:
        return None

    made = app.transport.create_consumer(callback=nothing, on_partitions_revoked=nothing,
                                         on_partitions_assigned=nothing)
    assert isinstance(made, Consumer)
    app.consumer_generation_id = 7
    yield made
    loop.close()


def record(offset: int, generation: int) -> ConsumerMessage:
    return ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, 1, 1, TP0, generation_id=generation)


def test_an_ack_from_the_current_generation_counts_towards_the_commit(consumer: Consumer) -> None:
    assert consumer.ack(record(5, 7))
    assert consumer._new_offset(TP0) == 6


def test_an_ack_from_before_the_rebalance_does_not_move_the_commit(consumer: Consumer) -> None:
    consumer._committed_offset[TP0] = 4  # the seek after the rebalance: offset 4 is read again
    stale = record(5, 6)
    assert not consumer.ack(stale)
    assert stale.acked  # settled, so the stream does not try again
    assert consumer._new_offset(TP0) is None  # Faust alone would commit 6 here and lose offset 4
    assert consumer.ack(record(4, 7)) and consumer.ack(record(5, 7))
    assert consumer._new_offset(TP0) == 6


def test_a_read_offset_set_by_a_record_from_before_the_rebalance_is_forgotten(consumer: Consumer) -> None:
    consumer._read_offset[TP0] = 9  # the fetcher's write for the stale record, after the seek set 4
    consumer.forget_stale_read(TP0, record(9, 6))
    assert consumer._read_offset[TP0] is None  # so offsets 4..8, refetched, are not dropped


def test_a_current_read_offset_is_kept(consumer: Consumer) -> None:
    consumer._read_offset[TP0] = 9
    consumer.forget_stale_read(TP0, record(9, 7))
    assert consumer._read_offset[TP0] == 9
    consumer.forget_stale_read(TP0, record(3, 6))  # stale, but not the record that set the offset
    assert consumer._read_offset[TP0] == 9
