"""Faust's worker, minus what start-up leaves behind: its spinner's log cost and a full heap to scan.

At log levels of `warn` and above, Faust's worker drives its terminal spinner from log records: it
adds a `SpinnerHandler` at DEBUG to the root logger and sets the root logger to DEBUG, so that every
`log.debug` of aiokafka, Faust and mode ticks the spinner. Once start-up ends the spinner is
finished, but the handler and the root level stay, and every one of those debug calls goes on
building a `LogRecord` that nothing shows: 6% of a worker's CPU at 30 stories/s (py-spy, the
consumer thread's fetch loop and the event loop; docs/PERFORMANCE.md). This worker removes the
handler and puts the root logger back to the level asked for (`-l`) when start-up ends.

It also moves everything start-up made (the model's Python objects, Faust's services, the tables
recovered so far: about 150,000 objects) into the garbage collector's permanent generation
(`gc.freeze`). Otherwise each full collection walks them all again, and one took 144 ms at 30
stories/s, a stall of the event loop that every story in flight waits out.
"""

from __future__ import annotations

import gc
import logging

import faust
from faust.utils.terminal import SpinnerHandler


class Worker(faust.Worker):
    """`faust.Worker` whose root logger stops at the requested level once start-up has finished."""

    _root_level: int = logging.WARNING

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self._root_level = level or logger.level
        super().on_setup_root_logger(logger, level)

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        quiet_root_logger(logging.getLogger(), self._root_level)
        gc.collect()
        gc.freeze()


def quiet_root_logger(root: logging.Logger, level: int) -> None:
    """Drop Faust's spinner handlers from `root` and set it to `level` (a `logging` level number)."""
    for handler in [h for h in root.handlers if isinstance(h, SpinnerHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)
