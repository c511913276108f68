"""The worker's root logger returns to the requested level once start-up ends (streams/faust_worker.py):
Faust leaves it at DEBUG for its spinner, and every debug call of aiokafka then builds a record."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from faust.utils.terminal import SpinnerHandler

from streams.app import app
from streams.faust_worker import Worker


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize(("loglevel", "expected"), [("warn", logging.WARNING), ("error", logging.ERROR), ("info", logging.INFO)])
def test_root_logger_is_back_at_the_requested_level_after_start_up(root_logger, loglevel, expected):
    worker = Worker(app, loglevel=loglevel, stdout=io.StringIO(), stderr=io.StringIO(), loop=asyncio.new_event_loop())
    worker._setup_logging()
    if expected >= logging.WARNING:  # Faust's own behaviour, which the worker undoes
        assert root_logger.level == logging.DEBUG
        assert any(isinstance(h, SpinnerHandler) for h in root_logger.handlers)
    worker.loop.run_until_complete(worker.on_startup_finished())
    worker.loop.close()
    assert root_logger.level == expected
    assert not root_logger.isEnabledFor(logging.DEBUG)
    assert not any(isinstance(h, SpinnerHandler) for h in root_logger.handlers)
