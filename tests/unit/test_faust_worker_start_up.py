"""Once start-up ends (streams/faust_worker.py) the worker's root logger is back at the requested level
(Faust leaves it at DEBUG for its spinner, and every debug call of aiokafka then builds a record), and
start-up's objects are frozen out of the garbage collector's full collections."""

from __future__ import annotations

import asyncio
import gc
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
    worker = Worker(app, loglevel=loglevel, stdout=io.StringIO(), stderr=io.StringIO(), loop=asyncio.new_event_loop(),
                    redirect_stdouts=False)
    worker._setup_logging()
    if expected >= logging.WARNING:  # Faust's own behaviour, which the worker undoes
        assert root_logger.level == logging.DEBUG
        assert any(isinstance(h, SpinnerHandler) for h in root_logger.handlers)
    gc.unfreeze()
    worker.loop.run_until_complete(worker.on_startup_finished())
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    worker.loop.close()
    assert root_logger.level == expected
    assert not root_logger.isEnabledFor(logging.DEBUG)
    assert not any(isinstance(h, SpinnerHandler) for h in root_logger.handlers)
    assert frozen > 10_000, "start-up's objects were not moved out of the collector's way"


def test_the_app_runs_this_worker():
    """`finsentry worker` and `faust -A streams.worker worker` both build `app.conf.Worker`."""
    assert app.conf.Worker is Worker
