"""Tables whose writes a writer can wait for, so no input is acknowledged before its state is safe.

Faust sends a table's changelog writes through the producer's buffer, and before it commits input
offsets it calls `producer.flush()`. In faust-streaming 0.15 that flush stops waiting as soon as the
buffer has not moved for 0.1 s (`ProducerBuffer.flush_atmost`), so on a busy worker it can return
with writes still queued. The input offsets are then committed, a crash loses the queued writes,
and the stories those writes counted are gone from the state for good, because their input is
never delivered again. The SIGKILL runs saw exactly that: runs of consecutive stories, in flight at
a kill, missing from the monitor's windows. A writer that awaits `written()` before it is done with
its input closes the gap, on any broker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import FutureMessage


class DurableTable(faust.Table):
    """A `faust.Table` that remembers its changelog writes until the broker acknowledges them.

    An acknowledged write is forgotten at once, so a table no one waits on (classify's `seen-ids`)
    does not keep a future per write; a failed one is kept for `written()` to raise.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unconfirmed: set[FutureMessage] = set()

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        fut = super().send_changelog(*args, **kwargs)
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
