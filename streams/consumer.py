"""Faust's Kafka consumer, made safe for records fetched before a seek.

After every rebalance, faust-streaming 0.15 resumes the stream partitions and only then seeks them
to their committed offsets (`Recovery.on_recovery_completed`). Records fetched in between are still
handed out after the seek, and Faust misreads them:

1. the first such record is ahead of the read offset the seek just set, so the records in between
   are registered as a "gap" (meant for transaction markers and compacted offsets), count as
   acknowledged, and the commit moves past records that were never processed;
2. a record whose hand-off to a stream spans the seek overwrites the seek's read offset, so the
   records fetched again from the committed offset are dropped as "already read".

A diagnostic run saw (1) after every restart, on every partition, and SIGKILLs lost runs of 4-11
consecutive records in `news.clean`.

Recovery then resumes flow control, which empties every agent's queue: records handed out between
the resume of the partitions and that moment, and not yet taken by a stream, are gone, with the
consumer's position past them. A CI run saw two `news.clean` partitions sit at lag ~150 for good
that way (no new record came to trip the guard). So once the rebalance has ended, each partition
that handed records out since it was resumed is sought back to its committed offset (`resume_flow`).

The guard works from positions, not from timing: aiokafka fetches in its own thread, so a fetch
that began before a seek may still return records read after it. After a seek to offset C, the
first record of that partition must be C. One ahead of C is either stale or a real gap; the
partition is sought to C once more and that fetch's records of it are dropped (they are read again
from C). If a fetch begun after that second seek still starts ahead of C, the gap is real (a
transaction marker, compaction or retention) and Faust handles it as before. Records below C were
committed already and are dropped.

Once an agent has failed (streams/failures.py), nothing more is committed: the worker is stopping,
and its successor must read the failed records again. The same holds once the worker begins to
stop (`close_commits`): the agents' streams acknowledge unfinished events as they stop.

Commits stop at the lowest record still in flight. Faust's `_new_offset` commits the run of
acknowledged offsets that follows the committed one, but it checks only that the run starts within
one of the committed offset, and not at all before a partition's first commit. With more than one
record in flight (the classify agent's actors, `FINSENTRY_CLASSIFY_CONCURRENCY`) acknowledgements
arrive out of order, and a commit could move past a record still being processed: a crash would
then skip it. In flight means taken by a stream. Records still queued for one are not seen, so
nothing may be acknowledged that no stream processed: a value Faust cannot decode is not (every
JSON value is read with streams/lenient_json.py, so the agent dead-letters it), and neither is a
record of an earlier consumer generation (`ack`).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiokafka.errors import IllegalStateError
from faust.exceptions import ConsumerNotStarted
from faust.transport.consumer import ensure_TP
from faust.transport.drivers import aiokafka
from faust.types import TP, Message

from streams import metrics
from streams.failures import FAILURES


class Verdict(enum.Enum):
    DELIVER = "deliver"  # the record the seek asked for, or a confirmed gap: the guard is done
    RESEEK = "reseek"  # ahead of the seek: seek again and drop it
    DROP = "drop"  # stale: below the seek, or in the same fetch as the second seek


@dataclass(frozen=True)
class Expectation:
    offset: int  # where the partition's last seek moved it
    reseek_fetch: int | None = None  # the fetch during which it was sought again, if it was


def judge(expected: Expectation, offset: int, fetch: int) -> Verdict:
    """What to do with a record at `offset` from fetch number `fetch`, after a seek to `expected`."""
    if offset < expected.offset:
        return Verdict.DROP
    if offset == expected.offset:
        return Verdict.DELIVER
    if expected.reseek_fetch is None:
        return Verdict.RESEEK
    return Verdict.DROP if fetch <= expected.reseek_fetch else Verdict.DELIVER


class Consumer(aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._expected: dict[TP, Expectation] = {}
        # One past the last offset handed on to Faust's delivery since the partition's last seek: a
        # record handed on that no stream holds and no commit passed was dropped (streams/health.py).
        self._handed: dict[TP, int] = {}
        self._handed_since_resume: set[TP] = set()  # partitions that handed records out since resumed
        self._emptied: set[TP] = set()  # partitions whose handed-out records flow control emptied
        self._last_committed: dict[TP, int | None] = {}  # what the last seek_to_committed read
        self._fetches = 0
        self._commits_closed = False

    def _sought(self, tp: TP, offset: int | None) -> None:
        # Nothing lies below offset 0, and aiokafka's seek_to_committed leaves a partition whose
        # committed offset is missing or 0 where it is, so neither gets an expectation.
        if offset is not None and offset > 0:
            self._expected[tp] = Expectation(offset)
        else:
            self._expected.pop(tp, None)
        self._handed.pop(tp, None)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        for tp, offset in committed.items():
            self._sought(ensure_TP(tp), offset)
        self._last_committed = {ensure_TP(tp): offset for tp, offset in committed.items()}
        return committed

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self._sought(ensure_TP(partition), offset)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tps = set(tps)
        self._handed_since_resume.difference_update(tps)
        super().resume_partitions(tps)

    def resume_flow(self) -> None:
        """At the end of a rebalance Faust calls this right after `app.flow_control.resume()`, which
        empties every agent's queue: records a stream partition handed out since it was resumed (its
        seek, a round trip per partition, runs meanwhile), and not yet taken by a stream, are gone
        unprocessed while the consumer's position has moved past them. Those partitions are noted
        here and sought back once the rebalance has ended (`_seek_again`). Changelog partitions are
        Faust's to read again."""
        super().resume_flow()
        self._emptied = {tp for tp in self._handed_since_resume if not self._is_changelog_tp(tp)}

    async def _seek_again(self) -> None:
        """Seek each partition noted by `resume_flow` to the committed offset the rebalance's own seek
        read (the log's start for one never committed, which aiokafka's seek_to_committed leaves
        where it is), which arms the guard. No broker round trip; run by the one loop that hands
        records out. Records such a partition handed out since are read again (idempotent by id);
        a partition that handed out nothing since its seek lost nothing and is left alone."""
        emptied, self._emptied = self._emptied, set()
        for tp in emptied & self._last_committed.keys():
            try:
                await self.seek(tp, self._last_committed[tp] or 0)
            except IllegalStateError:  # revoked meanwhile: its next owner reads it from the committed offset
                continue

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        # Before a fetch, never in the middle of one: a partition sought to 0 gets no guard, so the
        # rest of a fetch in hand would be processed and the records read again from 0 dropped as
        # already read. The rest of that fetch is read again instead (idempotent by id).
        if self._emptied and not (self.app.in_recovery or self.app.rebalancing):
            await self._seek_again()
        self._fetches += 1
        fetch = self._fetches
        async for tp, message in super().getmany(timeout):
            expected = self._expected.get(tp)
            if expected is not None:
                verdict = judge(expected, message.offset, fetch)
                if verdict is Verdict.RESEEK:
                    self._expected[tp] = Expectation(expected.offset, reseek_fetch=fetch)
                    await self._reseek(tp, expected.offset)
                if verdict is not Verdict.DELIVER:
                    metrics.STALE_RECORDS.inc()
                    continue
                del self._expected[tp]
            self._handed[tp] = message.offset + 1
            self._handed_since_resume.add(tp)
            yield tp, message
            # Faust has handed the record to its stream and made it the read offset. A seek that
            # landed meanwhile set the read offset to where the partition is read again from.
            sought = self._expected.get(tp)
            if sought is not None and self._read_offset.get(tp) == message.offset:
                self._read_offset[tp] = sought.offset

    async def on_start(self) -> None:
        self._commits_closed = False  # an app object started again after a stop commits again
        await super().on_start()

    async def close_commits(self) -> None:
        """The worker is stopping: commit what the agents have finished, then nothing more.

        Called before Faust stops the agents (streams/app.py `App.on_stop`). A stopped agent's
        stream acknowledges the events it held unfinished (the classify agent's whole batches), and
        Faust's consumer commits once more as it stops; that commit would skip them. Work finished
        between this commit and the stop is read again by the next worker (idempotent by id).
        """
        try:
            await self.commit()
        finally:
            self._commits_closed = True

    async def _commit_offsets(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Every commit path ends here; none passes once an agent has failed (streams/failures.py)
        or the worker has begun to stop (`close_commits`)."""
        if FAILURES.any or self._commits_closed:
            return False
        # Every send issued before this commit settles first. Faust only logs one the broker refused,
        # and its own flush before committing does not raise, so the commit would pass the input
        # whose output was lost; the app's SendFailures sensor marks FAILURES for it instead, and its
        # callback runs before the flush returns (the sleep lets any still queued run too).
        await self.app.producer.flush()
        await asyncio.sleep(0)
        if FAILURES.any or self._commits_closed:
            return False
        return await super()._commit_offsets(offsets, start_new_transaction)

    def ack(self, message: Message) -> bool:
        """Faust's, except for a record fetched before the last rebalance. A stream skips such a record
        unprocessed, yet acknowledges it; its offset, one past the committed one, would let a commit
        pass the copy of it read again from the committed offset and still queued unprocessed, so a
        crash would lose that. Its offset is not recorded: the copy read again is the one that counts."""
        if message.generation_id is not None and message.generation_id != self.app.consumer_generation_id:
            message.acked = True
            self._unacked_messages.discard(message)
            return False
        return super().ack(message)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for `tp`: Faust's, cut at the lowest offset still in flight.

        In flight means handed to a stream (Faust tracks it) and not yet acknowledged. Offsets
        acknowledged above it are held back, not dropped, and commit once it is acknowledged.
        """
        # A message whose acknowledgement Faust refused (another copy of its offset, read again
        # after a rebalance, was acknowledged first) is marked acked but stays in the set.
        floor = min((m.offset for m in self._unacked_messages if m.tp == tp and not m.acked), default=None)
        acked = self._acked[tp]
        if floor is None or not acked or max(acked) < floor:
            return super()._new_offset(tp)
        # An older copy of the floor's offset may be acknowledged already; it is held, not dropped.
        held = [offset for offset in acked if offset >= floor]
        acked[:] = [offset for offset in acked if offset < floor]
        try:
            return super()._new_offset(tp)
        finally:
            acked.extend(sorted(held))

    def fetch_position(self, tp: TP) -> int | None:
        """The offset of the next record the Kafka consumer hands out for `tp` (`position_of`); None
        before the consumer's thread has started."""
        try:
            return position_of(self._thread._ensure_consumer(), tp)
        except ConsumerNotStarted:
            return None

    def handed(self, tp: TP) -> int | None:
        """One past the last offset of `tp` handed on to Faust's delivery since its last seek; None if none."""
        return self._handed.get(tp)

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _reseek(self, tp: TP, offset: int) -> None:
        try:
            await self._seek(tp, offset)
        except IllegalStateError as exc:  # revoked meanwhile: its next owner reads it from the committed offset
            self.log.warning("Could not seek %r back to %r: %r", tp, offset, exc)


def position_of(kafka_consumer: Any, tp: TP) -> int | None:
    """aiokafka's position of `tp` (the offset of the next record it hands out), read without a round
    trip to the consumer's thread: `AIOKafkaConsumer.position()` is a coroutine of that thread, which
    may wait up to a request timeout for a position and would hold commits queued behind it. None
    when the partition is not assigned or its position is being reset. Single reads of values the
    other thread writes; a reset between the two reads raises AssertionError in aiokafka, read as None."""
    subscription = kafka_consumer._subscription.subscription
    if subscription is None or subscription.assignment is None:
        return None
    state = subscription.assignment.state_value(tp)
    try:
        return state.position if state is not None and state.has_valid_position else None
    except AssertionError:
        return None


class ConsumerThread(aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with the app's fetch wait (streams/app.py `fetch_max_wait`) in place
    of the 1500 ms that Faust's driver passes to aiokafka and offers no setting for."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when start() builds the fetcher, which happens after this returns.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms
        return consumer


class Transport(aiokafka.Transport):
    Consumer: ClassVar[type[Consumer]] = Consumer
