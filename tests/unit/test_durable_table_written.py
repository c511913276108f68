"""DurableTable.written(): the wait that keeps a crash from losing state whose input was committed."""

from __future__ import annotations

import asyncio

import faust
import pytest
from faust.types import TP, RecordMetadata

from streams.tables import ChangelogWriteTooLarge, DurableTable


@pytest.fixture
def table() -> DurableTable:
    app = faust.App("durable-table-test", broker="kafka://127.0.0.1:1", Table=DurableTable)
    return app.Table("state", default=None, partitions=1)


async def settle() -> None:
    """Let every task run until it waits on something. No write here is acknowledged by time or I/O,
    only by `acknowledge`, so loop turns, not seconds, decide whether a waiter has (wrongly) finished;
    three turns take a waiter from an acknowledgement to its next wait, ten leave room."""
    for _ in range(10):
        await asyncio.sleep(0)


def acknowledge(futures) -> None:
    for fut in futures:
        fut.set_result(RecordMetadata(topic="t", partition=0, topic_partition=TP("t", 0), offset=0))


def test_the_app_setting_makes_every_table_durable(table) -> None:
    assert isinstance(table, DurableTable)


def test_written_waits_until_the_broker_acknowledges_every_write(table) -> None:
    async def scenario() -> tuple[bool, bool]:
        futures = [table.send_changelog(0, "a", 1), table.send_changelog(0, "b", 2)]
        waiter = asyncio.ensure_future(table.written())
        await settle()
        before = waiter.done()
        acknowledge(futures[:1])
        await settle()
        half = waiter.done()
        acknowledge(futures[1:])
        await asyncio.wait_for(waiter, 60)
        return before, half

    assert asyncio.run(scenario()) == (False, False)


def test_written_also_waits_for_writes_made_while_it_waits(table) -> None:
    async def scenario() -> bool:
        first = table.send_changelog(0, "a", 1)
        waiter = asyncio.ensure_future(table.written())
        await settle()  # waiting on `first`
        later = table.send_changelog(0, "a", 2)
        acknowledge([first])
        await settle()
        pending = not waiter.done()
        acknowledge([later])
        await asyncio.wait_for(waiter, 60)
        return pending

    assert asyncio.run(scenario())


def test_written_raises_when_a_write_failed(table) -> None:
    async def scenario() -> None:
        fut = table.send_changelog(0, "a", 1)
        fut.set_exception(RuntimeError("broker said no"))
        await table.written()

    with pytest.raises(RuntimeError, match="broker said no"):
        asyncio.run(scenario())


def test_written_returns_at_once_when_nothing_is_pending(table) -> None:
    step = table.written()
    with pytest.raises(StopIteration):
        step.send(None)  # done in its first step: it awaited nothing


def test_acknowledged_writes_are_forgotten_without_anyone_waiting(table) -> None:
    async def scenario() -> int:
        futures = [table.send_changelog(0, f"k{n}", n) for n in range(100)]
        acknowledge(futures)
        await asyncio.sleep(0)  # done callbacks run on the next loop turn
        return len(table._unconfirmed)

    assert asyncio.run(scenario()) == 0  # else a table no one waits on grows a future per write


def test_a_write_the_producer_would_refuse_raises_in_the_writer_and_never_reaches_the_buffer(table) -> None:
    """The review's finding: aiokafka refused an oversized changelog record inside the producer
    buffer's task, before any future existed, so `written()` waited for ever while the worker said
    ready. The writer now fails (a machinery failure), and nothing is queued."""
    queued = []
    table.app.producer.send_soon = queued.append
    small = table.send_changelog(0, "scope", {"entries": ["x" * 100]})
    assert queued == [small] and small in table._unconfirmed
    with pytest.raises(ChangelogWriteTooLarge, match=r"table 'state': the changelog record for key 'scope' is \d+ bytes"):
        table.send_changelog(0, "scope", {"entries": ["\u00e9" * 200_000]})  # 1.2 MB once JSON-escaped
    assert queued == [small]
