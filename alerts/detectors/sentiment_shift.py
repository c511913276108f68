"""Sentiment shift: a slow, steady slide in a scope's mean sentiment score (one-sided CUSUM)."""

from __future__ import annotations

import math

from alerts.baseline import Baseline
from alerts.config import MonitorConfig
from alerts.detectors.contract import Detection, Detector
from alerts.windows import WindowStats


def sentiment_shift(
    window: WindowStats, baseline: Baseline, cusum: float, config: MonitorConfig
) -> tuple[Detection, float]:
    """One-sided CUSUM of downward shifts in mean sentiment score; returns the new statistic.

    Each window contributes its mean's z-score against the baseline (sigma / sqrt(n)), so a slow,
    steady slide accumulates even when no single window is surprising. Empty windows contribute 0
    and let the statistic drain by k. A window's z is capped at `cusum_max_z`: on a quiet ticker
    whose score spread is small, one negative story is a z of 4-5, so two would otherwise make a
    "shift"; with the cap it takes several windows in a row, which is what a slide is.
    """
    sigma = baseline.score_sigma(config.min_score_sigma)
    z = (baseline.score_mean - window.mean_score) * math.sqrt(window.volume) / sigma if window.volume else 0.0
    z = min(z, config.cusum_max_z)
    cusum = max(0.0, cusum + z - config.cusum_k)
    detection = Detection("sentiment_shift", cusum, config.cusum_threshold, window.mean_score, baseline.score_mean)
    return detection, cusum


# The CUSUM statistic is this detector's score, carried to the next window as Context.carried.
# A negative surge also pulls the mean sentiment down: it explains the shift, so one surge opens one
# anomaly, not two, and its windows do not build up the statistic (alerts/engine.py).
DETECTOR = Detector("sentiment_shift",
                    lambda ctx: sentiment_shift(ctx.window, ctx.baseline, ctx.carried, ctx.config)[0],
                    explained_by=("negative_surge",), carries=True)
