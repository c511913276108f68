"""Tables whose writes a writer can wait for, so no input is acknowledged before its state is safe.

Faust sends a table's changelog writes through the producer's buffer, and before it commits input
offsets it calls `producer.flush()`. In faust-streaming 0.15 that flush stops waiting as soon as the
buffer has not moved for 0.1 s (`ProducerBuffer.flush_atmost`), so on a busy worker it can return
with writes still queued. The input offsets are then committed, a crash loses the queued writes,
and the stories those writes counted are gone from the state for good, because their input is
never delivered again. The SIGKILL runs saw exactly that: runs of consecutive stories, in flight at
a kill, missing from the monitor's windows. A writer that awaits `written()` before it is done with
its input closes the gap, on any broker.

A write larger than the producer's maximum request size is refused here, in the writer, before it
reaches the producer's buffer. There aiokafka would refuse it before any future exists, inside the
buffer's own task: the write's future never resolved, `written()` waited for ever, every later table
write stayed queued, and the worker still reported ready. Raised in the writer, it is a machinery
failure like any other (streams/failures.py): counted, not ready, nothing committed past it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import FutureMessage

RECORD_OVERHEAD_BYTES = 1024  # a record's framing in a produce request, generously


class ChangelogWriteTooLarge(Exception):
    """A table value whose changelog record the producer would refuse."""


class DurableTable(faust.Table):
    """A `faust.Table` that remembers its changelog writes until the broker acknowledges them.

    An acknowledged write is forgotten at once, so a table no one waits on (classify's `seen-ids`)
    does not keep a future per write; a failed one is kept for `written()` to raise.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unconfirmed: set[FutureMessage] = set()

    def send_changelog(self, partition: int | None, key: Any, value: Any, key_serializer: Any = None,
                       value_serializer: Any = None) -> FutureMessage:
        """Faust's `Table.send_changelog` and `Topic.send_soon`, with the size check between the
        serialisation and the producer's buffer. Raises ChangelogWriteTooLarge."""
        fut = self.changelog_topic.as_future_message(
            key=key, value=value, partition=partition,
            key_serializer=self.key_serializer if key_serializer is None else key_serializer,
            value_serializer=self.value_serializer if value_serializer is None else value_serializer,
            callback=self._on_changelog_sent, eager_partitioning=True)
        size = sum(len(part) for part in (fut.message.key, fut.message.value) if part is not None)
        limit = self.app.conf.producer_max_request_size
        if size + RECORD_OVERHEAD_BYTES > limit:
            raise ChangelogWriteTooLarge(
                f"table {self.name!r}: the changelog record for key {str(key)[:80]!r} is {size} bytes, over the "
                f"producer's maximum request size ({limit} bytes, Faust's producer_max_request_size); the state "
                f"behind that key has to be kept smaller")
        self.app.producer.send_soon(fut)
        self._unconfirmed.add(fut)
        fut.add_done_callback(self._forget_if_acknowledged)
        return fut

    def _forget_if_acknowledged(self, fut: FutureMessage) -> None:
        if not fut.cancelled() and fut.exception() is None:
            self._unconfirmed.discard(fut)

    async def written(self) -> None:
        """Return once the broker has acknowledged every write made so far; raise if one failed."""
        while self._unconfirmed:
            pending, self._unconfirmed = self._unconfirmed, set()
            await asyncio.gather(*pending)
