"""Why the state writers await `written()`: on a real broker, Faust's pre-commit flush can return
while table writes are still unacknowledged, and `written()` cannot."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import faust
import pytest

from streams import broker
from streams.tables import DurableTable

WRITES = 10


@pytest.fixture
def stalled_broker() -> Iterator[broker.EmbeddedBroker]:
    with broker.running() as running:
        broker.create_topics(running.bootstrap, {"durable-test-state-changelog": 1})
        yield running
        running.process.send_signal(signal.SIGCONT)  # never leave a stopped broker behind


def test_faust_flush_returns_with_table_writes_pending_but_written_waits(stalled_broker) -> None:
    app = faust.App("durable-test", broker=f"kafka://{stalled_broker.bootstrap}", Table=DurableTable,
                    producer_max_batch_size=1)
    table = app.Table("state", default=None, partitions=1)

    async def scenario() -> tuple[int, bool, int]:
        await app.producer.start()
        buffer_given_up = asyncio.Event()
        buffer_flush = app.producer.buffer.flush

        async def tell_when_buffer_flush_returns() -> None:
            await buffer_flush()
            buffer_given_up.set()

        app.producer.buffer.flush = tell_when_buffer_flush_returns  # observed, not changed
        try:
            await table.send_changelog(0, "warm-up", 0)  # connected, metadata known
            stalled_broker.process.send_signal(signal.SIGSTOP)  # a broker (or loop) too slow to answer
            futures = [table.send_changelog(0, f"key-{n}", n) for n in range(WRITES)]
            flush = asyncio.ensure_future(app.producer.flush())  # what Faust awaits before committing
            waiter = asyncio.ensure_future(table.written())
            # The broker stays stalled until Faust's flush has stopped waiting for its buffer (after
            # 0.1 s without progress), however long the machine takes to get there.
            await asyncio.wait_for(buffer_given_up.wait(), 300)
            stalled_broker.process.send_signal(signal.SIGCONT)
            await asyncio.wait_for(flush, 300)
            pending_after_flush = sum(not f.done() for f in futures)
            written_early = waiter.done()
            await asyncio.wait_for(waiter, 300)
            return pending_after_flush, written_early, sum(not f.done() for f in futures)
        finally:
            await app.producer.stop()

    pending_after_flush, written_early, pending_after_written = asyncio.run(scenario())
    # Faust would now commit the input offsets of writes the broker does not have yet.
    assert pending_after_flush > 0
    assert not written_early
    assert pending_after_written == 0
