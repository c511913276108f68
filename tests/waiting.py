"""Polling for conditions in integration tests: one helper, so every test fails the same clear way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.error import HTTPError, URLError


def not_yet(exc: OSError) -> bool:
    """A connection that could not be made or was cut, or a socket timeout: a worker still starting, or
    slow on a busy machine. Not an HTTP error answer, a missing file or any other OSError: those are
    answers, and a test must see them."""
    if isinstance(exc, HTTPError):
        return False
    if isinstance(exc, URLError):
        return isinstance(exc.reason, ConnectionError | TimeoutError)
    return isinstance(exc, ConnectionError | TimeoutError)


def holds(condition: Callable[[], bool]) -> tuple[bool, OSError | None]:
    """Whether `condition` holds now. A connection refused, reset or timed out (`not_yet`) counts as
    "not yet" and is kept for the timeout's message; any other exception, an HTTP error answer
    included, is a bug in the test or the code and propagates at once."""
    try:
        return bool(condition()), None
    except OSError as exc:
        if not not_yet(exc):
            raise
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
