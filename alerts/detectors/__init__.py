"""The detector registry: every detector the monitor runs, in the order its events are emitted.

A new detector is one file in this package (its function and a `DETECTOR`, alerts/detectors/contract.py
says what it may read and return) and one line here; `alerts.engine.ScopeMonitor` runs whatever this
lists, and the kinds it emits (`KINDS`) follow from it.
"""

from __future__ import annotations

from alerts.detectors import negative_surge, sentiment_shift, volume_spike
from alerts.detectors.contract import Context, Detection, Detector

DETECTORS: tuple[Detector, ...] = (
    negative_surge.DETECTOR,
    volume_spike.DETECTOR,
    sentiment_shift.DETECTOR,
)
KINDS: tuple[str, ...] = tuple(d.kind for d in DETECTORS)

__all__ = ["DETECTORS", "KINDS", "Context", "Detection", "Detector"]
