"""Faust's worker, minus what start-up leaves behind: its spinner's log cost and a full heap to scan.

At log levels of `warn` and above, Faust's worker drives its terminal spinner from log records: it
adds a `SpinnerHandler` at DEBUG to the root logger and sets the root logger to DEBUG, so that every
`log.debug` of aiokafka, Faust and mode ticks the spinner. Once start-up ends the spinner is
finished, but the handler and the root level stay, and every one of those debug calls goes on
building a `LogRecord` that nothing shows: 6% of a worker's CPU at 30 stories/s (py-spy, the
consumer thread's fetch loop and the event loop; docs/PERFORMANCE.md). This worker removes the
handler and puts the root logger back to the level asked for (`-l`) when start-up ends.

It also moves every object alive when start-up ends (Faust's services, the tables recovered so
far, and whatever of the model has loaded by then: it loads in parallel; about 150,000 objects)
into the garbage collector's permanent generation (`gc.freeze`). Otherwise each full collection
walks them all again, and one took 144 ms at 30 stories/s, a stall of the event loop that every
story in flight waits out. Frozen objects are never collected: they are meant to live as long as
the worker, and one that does not stays in memory.
"""

from __future__ import annotations

import gc
import logging

import faust
from faust.utils.terminal import SpinnerHandler


class Worker(faust.Worker):
    """`faust.Worker` that, once start-up has finished, puts the root logger back at the requested
    level and freezes start-up's objects out of the garbage collector's way."""

    # The level `-l` asked for; None when Faust never set up logging (then nothing is changed).
    _root_level: int | None = None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self._root_level = level or logger.level
        super().on_setup_root_logger(logger, level)

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        if self._root_level is not None:
            quiet_root_logger(logging.getLogger(), self._root_level)
        gc.collect()
        gc.freeze()


def quiet_root_logger(root: logging.Logger, level: int) -> None:
    """Drop Faust's spinner handlers from `root` and set it to `level` (a `logging` level number)."""
    for handler in [h for h in root.handlers if isinstance(h, SpinnerHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)
