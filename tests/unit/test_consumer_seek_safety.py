"""The consumer's guard for records fetched before a seek, and its commit floor (streams/consumer.py).

The guard runs against Faust's real consumer state with scripted fetches (no broker: the seek's
committed offsets are given), because it relies on Faust internals and must fail loudly if an
upgrade changes them. `drain` mirrors the lines of Faust's `Consumer._drain_messages` that use the
read offset, so a change there shows up here as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from unittest import mock

import faust
import pytest
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams import app as app_module
from streams.app import App
from streams.consumer import Consumer, Expectation, Verdict, judge

TOPIC = "news.clean.test"
TP0 = TP(TOPIC, 0)
COMMITTED = 4


@pytest.mark.parametrize(("expected", "offset", "fetch", "verdict"), [
    (Expectation(4), 4, 1, Verdict.DELIVER),
    (Expectation(4), 3, 1, Verdict.DROP),  # committed already
    (Expectation(4), 9, 1, Verdict.RESEEK),  # stale or a real gap: find out
    (Expectation(4, reseek_fetch=1), 9, 1, Verdict.DROP),  # the rest of the stale fetch
    (Expectation(4, reseek_fetch=1), 9, 2, Verdict.DELIVER),  # a fetch after the second seek: a real gap
    (Expectation(4, reseek_fetch=1), 4, 1, Verdict.DELIVER),
])
def test_judge(expected: Expectation, offset: int, fetch: int, verdict: Verdict) -> None:
    assert judge(expected, offset, fetch) is verdict


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
    with mock.patch.object(aiokafka.Consumer, "seek_to_committed", return_value={TP0: COMMITTED}), \
            mock.patch.object(aiokafka.Consumer, "_seek", mock.AsyncMock()), \
            mock.patch.object(Consumer, "assignment", return_value={TP0}):
        yield made
    loop.close()


def run(coroutine: object) -> list[int]:
    return asyncio.get_event_loop().run_until_complete(coroutine)  # type: ignore[arg-type]


def record(offset: int, tp: TP = TP0) -> ConsumerMessage:
    return ConsumerMessage(tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, 1, 1, tp)


def fetch(offsets: list[int], before: Callable[[int], object] | None = None):
    """One fetched batch; `before(offset)` may await something (a seek) before that record is handed out."""

    async def getmany(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, ConsumerMessage]]:
        for offset in offsets:
            if before is not None:
                await before(offset)  # type: ignore[misc]
            yield TP0, record(offset)

    return mock.patch.object(aiokafka.Consumer, "getmany", getmany)


def seek_at(consumer: Consumer, at: int) -> Callable[[int], object]:
    async def before(offset: int) -> None:
        if offset == at:
            await consumer.perform_seek()

    return before


async def drain(consumer: Consumer, seek_while_handing: int | None = None) -> list[int]:
    """Faust's fetcher loop, reduced to what it does with read offsets and gaps; with
    `seek_while_handing`, the seek lands while that record is being handed to its stream."""
    delivered = []
    async for tp, message in consumer.getmany(1.0):
        read = consumer._read_offset[tp]
        if read is None or message.offset >= read:
            if message.offset - (read or 0) > 1 and read:
                await consumer._add_gap(tp, read + 1, message.offset)
            delivered.append(message.offset)
            if message.offset == seek_while_handing:
                await consumer.perform_seek()
            consumer._read_offset[tp] = message.offset
    return delivered


def ack(consumer: Consumer, offsets: list[int]) -> None:
    for offset in offsets:
        consumer.ack(record(offset))


def test_a_stale_record_ahead_of_the_seek_is_dropped_and_its_partition_sought_again(consumer: Consumer) -> None:
    with fetch([4, 5, 6, 7, 8, 9, 10, 11], before=seek_at(consumer, 10)):  # 4..9 handed out, then the seek
        assert run(drain(consumer)) == [4, 5, 6, 7, 8, 9]
    aiokafka.Consumer._seek.assert_awaited_once_with(TP0, COMMITTED)  # type: ignore[attr-defined]
    assert not consumer._gap[TP0]  # Faust alone registers 5..9 as a gap: acknowledged, never processed
    assert consumer._read_offset[TP0] == COMMITTED
    with fetch([4, 5, 6, 7, 8, 9, 10, 11]):  # read again from the committed offset
        assert run(drain(consumer)) == [4, 5, 6, 7, 8, 9, 10, 11]
    ack(consumer, [4, 5, 6, 7, 8, 9, 10, 11])
    assert consumer._new_offset(TP0) == 12


def test_records_read_after_the_seek_by_a_fetch_begun_before_it_are_kept(consumer: Consumer) -> None:
    # aiokafka fetches in its own thread: a fetch in flight at the seek can return records read after it
    with fetch([4, 5, 6], before=seek_at(consumer, 4)):
        assert run(drain(consumer)) == [4, 5, 6]
    aiokafka.Consumer._seek.assert_not_awaited()  # type: ignore[attr-defined]


def test_a_gap_that_is_still_there_after_the_second_seek_is_real(consumer: Consumer) -> None:
    run(consumer.perform_seek())
    with fetch([7, 8]):  # e.g. a transaction marker and compacted records at 4..6
        assert run(drain(consumer)) == []
    with fetch([7, 8]):
        assert run(drain(consumer)) == [7, 8]
    aiokafka.Consumer._seek.assert_awaited_once()  # type: ignore[attr-defined]
    ack(consumer, [7, 8])
    assert consumer._new_offset(TP0) >= 8  # past the gap: Faust's gap handling, as without the guard


def test_records_below_the_seek_are_dropped(consumer: Consumer) -> None:
    run(consumer.perform_seek())
    with fetch([2, 3, 4, 5]):
        assert run(drain(consumer)) == [4, 5]


def test_a_record_handed_out_across_the_seek_does_not_keep_its_read_offset(consumer: Consumer) -> None:
    with fetch([4, 5]):
        assert run(drain(consumer, seek_while_handing=5)) == [4, 5]
    assert consumer._read_offset[TP0] == COMMITTED  # else 4 and 5, read again, are dropped as already read


def test_a_seek_of_another_partition_leaves_this_one_alone(consumer: Consumer) -> None:
    async def before(offset: int) -> None:
        if offset == 5:
            await consumer.seek(TP(TOPIC, 1), 2)

    with fetch([4, 5, 6], before=before):
        assert run(drain(consumer)) == [4, 5, 6]


def test_a_partition_without_a_committed_offset_is_not_sought_so_its_records_stay(consumer: Consumer) -> None:
    with mock.patch.object(aiokafka.Consumer, "seek_to_committed", return_value={TP0: None}), \
            fetch([0, 1, 2], before=seek_at(consumer, 1)):
        assert run(drain(consumer)) == [0, 1, 2]


def test_without_a_seek_the_fetch_is_untouched(consumer: Consumer) -> None:
    with fetch([4, 5, 9]):
        assert run(drain(consumer)) == [4, 5, 9]
    aiokafka.Consumer._seek.assert_not_awaited()  # type: ignore[attr-defined]


def handed_out(consumer: Consumer, offsets: list[int], tp: TP = TP0) -> dict[int, ConsumerMessage]:
    """Records handed to a stream (Faust tracks each as in flight until it is acknowledged)."""
    messages = {offset: record(offset, tp) for offset in offsets}
    for message in messages.values():
        consumer.track_message(message)
    return messages  # the caller keeps them: Faust tracks in-flight records in a WeakSet


@pytest.mark.parametrize("committed", [10, 0, None], ids=["committed", "committed-zero", "never-committed"])
def test_a_commit_stops_at_the_lowest_record_still_in_flight(consumer: Consumer, committed: int | None) -> None:
    # Two actors: the one holding the first record is still running the model when the other acks.
    start = committed or 0
    consumer._committed_offset[TP0] = committed
    messages = handed_out(consumer, [start, start + 1, start + 2])
    consumer.ack(messages[start + 1])
    consumer.ack(messages[start + 2])
    assert consumer._new_offset(TP0) is None  # Faust alone commits start + 3, past the record in flight
    consumer.ack(messages[start])
    assert consumer._new_offset(TP0) == start + 3  # the held acknowledgements were kept


def test_acknowledged_records_below_the_one_in_flight_commit(consumer: Consumer) -> None:
    consumer._committed_offset[TP0] = 10
    messages = handed_out(consumer, [10, 11, 12, 13])
    for offset in (10, 11, 13):
        consumer.ack(messages[offset])
    assert consumer._new_offset(TP0) == 12
    consumer._committed_offset[TP0] = 12  # what a successful commit records
    consumer.ack(messages[12])
    assert consumer._new_offset(TP0) == 14


def test_a_record_in_flight_on_another_partition_holds_nothing_here(consumer: Consumer) -> None:
    other = TP(TOPIC, 1)
    consumer._committed_offset[TP0] = 10
    busy = handed_out(consumer, [3], tp=other)
    messages = handed_out(consumer, [10, 11])
    for message in messages.values():
        consumer.ack(message)
    assert consumer._new_offset(TP0) == 12
    assert busy  # still in flight on partition 1


def test_an_older_copy_of_the_record_in_flight_is_held_not_lost(consumer: Consumer) -> None:
    # After a rebalance that gave the partition back, the old generation's copy of 10 is acknowledged
    # while the copy read again from the committed offset is still in flight.
    consumer._committed_offset[TP0] = 10
    old = handed_out(consumer, [10])
    new = handed_out(consumer, [10, 11])
    consumer.ack(old[10])
    consumer.ack(new[11])
    assert consumer._new_offset(TP0) is None
    consumer.ack(new[10])  # refused as a second acknowledgement of 10, and no longer in flight
    assert consumer._new_offset(TP0) == 12


def test_a_record_of_an_earlier_generation_acknowledged_unprocessed_commits_nothing(consumer: Consumer) -> None:
    # Fetched before a rebalance that gave the partition back, 100 is skipped by its stream (its
    # generation is over) and acknowledged; the copy read again from 100 is still queued, unprocessed.
    consumer._committed_offset[TP0] = 100
    consumer.app.consumer_generation_id = 2
    stale = ConsumerMessage(TOPIC, 0, 100, 0.0, 0, None, b"k", b"v", None, 1, 1, TP0, generation_id=1)
    assert consumer.ack(stale) is False and stale.acked
    assert consumer._new_offset(TP0) is None  # Faust alone commits 101, past the queued copy of 100
    again = ConsumerMessage(TOPIC, 0, 100, 0.0, 0, None, b"k", b"v", None, 1, 1, TP0, generation_id=2)
    consumer.track_message(again)
    consumer.ack(again)  # the copy read again, processed
    assert consumer._new_offset(TP0) == 101


def test_once_commits_are_closed_nothing_more_is_committed(consumer: Consumer) -> None:
    committed = mock.AsyncMock(return_value=True)
    messages = handed_out(consumer, [4, 5, 6])
    with mock.patch.object(aiokafka.Consumer, "_commit_offsets", committed):
        consumer.ack(messages[4])
        run(consumer.close_commits())  # the worker begins to stop
        committed.assert_awaited_once()
        assert committed.await_args.args[0] == {TP0: 5}
        consumer.ack(messages[5])  # what a stopping stream does with an event it held unfinished
        run(consumer.commit())
        committed.assert_awaited_once()


def test_a_stopping_app_closes_commits_before_faust_stops_anything(consumer: Consumer) -> None:
    # Mode stops the app's children (the agents among them) only after the app's own on_stop.
    calls: list[str] = []
    consumer.app._consumer = consumer

    async def close(self: Consumer) -> None:
        calls.append("close commits")

    async def faust_on_stop(self: faust.App) -> None:
        calls.append("faust on_stop")

    with mock.patch.object(Consumer, "close_commits", close), mock.patch.object(faust.App, "on_stop", faust_on_stop):
        run(consumer.app.on_stop())
    assert calls == ["close commits", "faust on_stop"]


def test_a_last_commit_that_hangs_does_not_hold_up_the_stop(consumer: Consumer) -> None:
    # aiokafka retries a commit without end while the broker is gone
    stopped: list[bool] = []
    consumer.app._consumer = consumer
    messages = handed_out(consumer, [4])
    consumer.ack(messages[4])

    async def faust_on_stop(self: faust.App) -> None:
        stopped.append(True)

    async def never_answers(self: Consumer, *args: object) -> bool:
        await asyncio.Event().wait()
        return True

    with mock.patch.object(aiokafka.Consumer, "_commit_offsets", never_answers), \
            mock.patch.object(faust.App, "on_stop", faust_on_stop), mock.patch.object(app_module, "CLOSE_COMMITS_TIMEOUT_S", 0.05):
        run(asyncio.wait_for(consumer.app.on_stop(), 30))  # without the bound: TimeoutError here
    assert stopped == [True]
    assert consumer._commits_closed


def test_a_send_the_broker_refuses_stops_the_commit_that_would_pass_its_input(consumer: Consumer) -> None:
    """Faust only logs a refused send, and its flush before a commit does not raise: the commit of
    the input whose output was lost went through. The refusal surfaces while the commit flushes."""
    from streams.app import app
    from streams.failures import FAILURES

    committed = mock.AsyncMock(return_value=True)
    messages = handed_out(consumer, [4, 5])

    async def flush_with_a_refusal() -> None:  # the batch fails while the commit waits for it, as Faust reports it
        state = app.sensors.on_send_initiated(None, "news.clean", None, 0, 0)
        app.sensors.on_send_error(None, TimeoutError("request timed out"), state)

    try:
        with mock.patch.object(aiokafka.Consumer, "_commit_offsets", committed), \
                mock.patch.object(consumer.app.producer, "flush", flush_with_a_refusal), \
                mock.patch("streams.failures.os.kill"):
            consumer.ack(messages[4])
            consumer.ack(messages[5])
            run(consumer.commit())
        committed.assert_not_awaited()
        assert FAILURES.crashed == {"producer": "SendRefused: send to news.clean refused: TimeoutError: request timed out"}
    finally:
        FAILURES.crashed.clear()


def test_without_a_refusal_the_commit_goes_on_after_the_flush(consumer: Consumer) -> None:
    committed = mock.AsyncMock(return_value=True)
    flushed = mock.AsyncMock()
    messages = handed_out(consumer, [4, 5])
    with mock.patch.object(aiokafka.Consumer, "_commit_offsets", committed), \
            mock.patch.object(consumer.app.producer, "flush", flushed):
        consumer.ack(messages[4])
        run(consumer.commit())
    flushed.assert_awaited()
    assert committed.await_args.args[0] == {TP0: 5}


def test_records_handed_out_before_flow_resumes_are_read_again(consumer: Consumer) -> None:
    """The CI stall: Recovery resumes the stream partitions and seeks them, then resumes flow control,
    which empties every agent's queue. Records handed out in between were neither processed nor
    tracked, and the consumer's position had moved past them: with no new record the partition sat
    at lag ~150 for good (with one, Faust alone records a gap and commits past them). The first fetch
    after the rebalance seeks that partition back to its committed offset."""
    run(consumer.perform_seek())
    with fetch([4, 5, 6, 7, 8, 9]):
        assert run(drain(consumer)) == [4, 5, 6, 7, 8, 9]  # handed out, then emptied from the queues
    consumer.app.flow_control.resume()
    consumer.resume_flow()
    with fetch([4, 5, 6, 7, 8, 9, 10, 11]):  # read again from the committed offset
        assert run(drain(consumer)) == [4, 5, 6, 7, 8, 9, 10, 11]
    aiokafka.Consumer._seek.assert_awaited_once_with(TP0, COMMITTED)  # type: ignore[attr-defined]
    with fetch([12]):  # once
        assert run(drain(consumer)) == [12]
    aiokafka.Consumer._seek.assert_awaited_once()  # type: ignore[attr-defined]


def test_a_partition_that_handed_out_nothing_since_its_seek_is_left_alone(consumer: Consumer) -> None:
    """A CI run of the first version, which sought every partition again after each rebalance: the
    records a started worker had processed and not yet committed were read again, and a test saw
    the same bad record dead-lettered twice. Nothing was lost from such a partition."""
    run(consumer.perform_seek())
    consumer.app.flow_control.resume()
    consumer.resume_flow()
    with fetch([4, 5]):
        assert run(drain(consumer)) == [4, 5]
    with fetch([6]):
        assert run(drain(consumer)) == [6]
    aiokafka.Consumer._seek.assert_not_awaited()  # type: ignore[attr-defined]
    assert aiokafka.Consumer.seek_to_committed.call_count == 1  # type: ignore[attr-defined]  # the rebalance's own


def test_the_seek_after_flow_resumes_waits_for_the_rebalance_to_end(consumer: Consumer) -> None:
    run(consumer.perform_seek())
    with fetch([4]):
        assert run(drain(consumer)) == [4]
    consumer.resume_flow()  # also called as recovery starts reading changelogs
    for flag in ("in_recovery", "rebalancing"):
        setattr(consumer.app, flag, True)
        with fetch([5]):
            assert run(drain(consumer)) == [5]
        setattr(consumer.app, flag, False)
    aiokafka.Consumer._seek.assert_not_awaited()  # type: ignore[attr-defined]
    with fetch([6]):
        assert run(drain(consumer)) == []  # sought back to 4: 6 is ahead of it, so sought again and dropped
    aiokafka.Consumer._seek.assert_any_await(TP0, COMMITTED)  # type: ignore[attr-defined]


def test_a_never_committed_partition_is_sought_to_its_start_after_flow_resumes(consumer: Consumer) -> None:
    # aiokafka's seek_to_committed leaves such a partition where it is, past what the queues lost
    with mock.patch.object(aiokafka.Consumer, "seek_to_committed", return_value={TP0: None}):
        run(consumer.perform_seek())
    with fetch([0, 1, 2]):
        assert run(drain(consumer)) == [0, 1, 2]  # handed out, then emptied from the queues
    consumer.resume_flow()
    with fetch([0, 1]):  # read again from the start, not dropped as already read
        assert run(drain(consumer)) == [0, 1]
    aiokafka.Consumer._seek.assert_awaited_once_with(TP0, 0)  # type: ignore[attr-defined]


def test_a_partition_revoked_before_the_seek_back_is_skipped(consumer: Consumer) -> None:
    run(consumer.perform_seek())
    with fetch([4]):
        run(drain(consumer))
    consumer.resume_flow()
    aiokafka.Consumer._seek.side_effect = IllegalStateError("not assigned")  # type: ignore[attr-defined]
    with fetch([]):
        run(drain(consumer))
    assert not consumer._emptied


def test_records_handed_out_while_the_rebalance_seeks_are_read_again(consumer: Consumer) -> None:
    """Faust resumes the stream partitions, then seeks them, one committed-offset round trip per
    partition, while the fetcher hands records out; the queues are emptied after. A review found the
    previous version noted only what was handed out after a partition's seek returned."""
    consumer.resume_partitions({TP0})
    with fetch([4, 5, 6, 7, 8, 9]):  # during the seek's round trips
        assert run(drain(consumer)) == [4, 5, 6, 7, 8, 9]
    run(consumer.perform_seek())
    consumer.app.flow_control.resume()
    consumer.resume_flow()
    with fetch([4, 5, 6, 7, 8, 9, 10]):
        assert run(drain(consumer)) == [4, 5, 6, 7, 8, 9, 10]
    aiokafka.Consumer._seek.assert_awaited_once_with(TP0, COMMITTED)  # type: ignore[attr-defined]


def test_a_changelog_partition_is_left_to_faust(consumer: Consumer) -> None:
    consumer.app.Table("state", default=None)
    changelog = TP("consumer-seek-test-state-changelog", 0)
    with mock.patch.object(aiokafka.Consumer, "seek_to_committed", return_value={TP0: COMMITTED, changelog: None}):
        run(consumer.perform_seek())

    async def standby_records(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, ConsumerMessage]]:
        yield changelog, record(7, changelog)

    with mock.patch.object(aiokafka.Consumer, "getmany", standby_records):
        run(drain(consumer))
    consumer.resume_flow()
    assert not consumer._emptied  # never sought to 0: Faust reads its changelogs from its own offsets


def test_a_rebalance_ending_during_a_fetch_loses_nothing_of_a_never_committed_partition(consumer: Consumer) -> None:
    """A review of a version that also sought back in the middle of a fetch: sought to 0 there, with no
    guard for 0, the rest of the fetch was processed and the records read again from 0 were dropped
    by Faust as already read; nothing committed yet, the commit then passed them for good."""
    with mock.patch.object(aiokafka.Consumer, "seek_to_committed", return_value={TP0: None}):
        consumer.resume_partitions({TP0})
        with fetch([0, 1, 2]):
            assert run(drain(consumer)) == [0, 1, 2]  # handed out, then emptied from the queues
        run(consumer.perform_seek())
    consumer.resume_flow()
    consumer.app.rebalancing = True

    async def rebalance_ends(offset: int) -> None:
        consumer.app.rebalancing = False

    with fetch([3, 4], before=rebalance_ends):
        run(drain(consumer))
    with fetch([0, 1, 2, 3, 4]):
        assert run(drain(consumer))[:3] == [0, 1, 2]  # read again, not dropped
