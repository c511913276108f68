"""Polling for conditions in integration tests: one helper, so every test fails the same clear way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0, every: float = 0.005) -> None:
    """`wait_for` inside an event loop: polls without blocking it, so the tasks under test run meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)
