"""Polling for conditions in integration tests: one helper, so every test fails the same clear way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def holds(condition: Callable[[], bool]) -> tuple[bool, OSError | None]:
    """Whether `condition` holds now. An I/O error (a refused or reset connection, a socket timeout:
    a worker still starting, or slow on a busy machine) counts as "not yet" and is kept for the
    timeout's message; any other exception is a bug in the test or the code and propagates."""
    try:
        return bool(condition()), None
    except OSError as exc:
        return False, exc


def timed_out(what: str, last: OSError | None) -> AssertionError:
    """The one failure of a wait: what never came, and the I/O error of the last poll if it raised one."""
    error = AssertionError(f"timed out waiting for {what}" + (f" (last: {last!r})" if last else ""))
    error.__cause__ = last
    return error


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not (state := holds(condition))[0]:
        if time.monotonic() > deadline:
            raise timed_out(what, state[1])
        time.sleep(every)


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0, every: float = 0.005) -> None:
    """`wait_for` inside an event loop: polls without blocking it, so the tasks under test run meanwhile."""
    deadline = time.monotonic() + timeout
    while not (state := holds(condition))[0]:
        if time.monotonic() > deadline:
            raise timed_out(what, state[1])
        await asyncio.sleep(every)
