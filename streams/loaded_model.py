"""The classifier this worker loaded, shared by the classify agent and the readiness check.

The model is loaded once, by the classify agent when it starts, in the one-thread executor that also
runs every inference (so the event loop keeps heartbeating while ONNX Runtime works). `model_call`
times each inference in that thread, so a call that never returns can be told from a slow one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

from models.runtime import Classifier, model_labels
from streams import metrics
from streams.settings import Settings

log = logging.getLogger(__name__)

executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify")
_classifier: Classifier | None = None
# time.monotonic() when the model thread began its current inference; None while it has none.
_call_started: float | None = None
T = TypeVar("T")


def model_call(work: Callable[..., T], *args: object) -> T:
    """Run `work(*args)` in the calling thread (the executor's), marked as the model's current call."""
    global _call_started
    _call_started = time.monotonic()
    try:
        return work(*args)
    finally:
        _call_started = None


def model_call_seconds(now: float | None = None) -> float:
    """How long the model's current inference has run, in seconds (time.monotonic() clock); 0 when
    the model thread is idle."""
    started = _call_started
    return 0.0 if started is None else max(0.0, (time.monotonic() if now is None else now) - started)


def classifier() -> Classifier | None:
    """The loaded model, or None before the classify agent has loaded it."""
    return _classifier


async def load_classifier(settings: Settings) -> Classifier:
    """The model, loaded on the first call; concurrent callers (the classify agent's actors,
    FINSENTRY_CLASSIFY_CONCURRENCY) await that one load rather than each loading a copy."""
    global _classifier
    async with _load_lock():
        if _classifier is None:
            loop = asyncio.get_running_loop()
            _classifier = await loop.run_in_executor(executor, lambda: Classifier.load(settings.model_dir, settings.device,
                                                                                         settings.model_variant))
            metrics.MODEL_INFO.info({"version": _classifier.version, "variant": _classifier.variant,
                                     "provider": _classifier.provider})
            log.info("model %s (%s) on %s", _classifier.version, _classifier.variant, _classifier.provider)
    return _classifier


@cache
def _load_lock() -> asyncio.Lock:
    """One lock, made on first use inside the worker's event loop."""
    return asyncio.Lock()


@cache
def model_topics(settings: Settings) -> frozenset[str]:
    """The topic labels of the model this worker runs (its labels.json), read once: corrected labels
    may name only these (scheduler/feedback.py)."""
    return frozenset(model_labels(settings.model_dir)["topic"])
