"""The three detectors: pure functions of a closed window, the baseline and the settings.

Each returns a `Detection` whose score is compared with its threshold by the lifecycle. A
detector below its minimum count scores 0, so a ticker with three stories a day cannot fire on two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import pdtrc

from alerts.baseline import Baseline
from alerts.config import MonitorConfig
from alerts.records import Kind
from alerts.windows import WindowStats


@dataclass(frozen=True)
class Detection:
    kind: Kind
    score: float
    threshold: float
    observed: float
    expected: float


def poisson_score(observed: int, expected: float) -> float:
    """-log10 P(X >= observed) for X ~ Poisson(expected): larger is more surprising."""
    if observed <= 0:
        return 0.0
    return -math.log10(max(float(pdtrc(observed - 1, expected)), 1e-300))


def negative_surge(window: WindowStats, baseline: Baseline, config: MonitorConfig) -> Detection:
    """Too many novel negative stories for this scope's usual negative rate.

    A Poisson test on the negative count is far more powerful on sparse scopes than a binomial test
    on the share; the share-lift gate keeps a general news burst (all sentiments up) from counting.
    """
    expected = max(baseline.negative_rate, config.min_expected_per_window)
    share = baseline.negative_share(config.prior_negative_share, config.min_expected_per_window)
    eligible = window.negative >= config.min_negative and window.negative_share >= share + config.min_share_lift
    score = poisson_score(window.negative, expected) if eligible else 0.0
    return Detection("negative_surge", score, config.surge_threshold, window.negative, expected)


def volume_spike(window: WindowStats, baseline: Baseline, config: MonitorConfig) -> Detection:
    expected = max(baseline.rate, config.min_expected_per_window)
    score = poisson_score(window.volume, expected) if window.volume >= config.min_volume else 0.0
    return Detection("volume_spike", score, config.volume_threshold, window.volume, expected)


def sentiment_shift(
    window: WindowStats, baseline: Baseline, cusum: float, config: MonitorConfig
) -> tuple[Detection, float]:
    """One-sided CUSUM of downward shifts in mean sentiment score; returns the new statistic.

    Each window contributes its mean's z-score against the baseline (sigma / sqrt(n)), so a slow,
    steady slide accumulates even when no single window is surprising. Empty windows contribute 0
    and let the statistic drain by k.
    """
    sigma = baseline.score_sigma(config.min_score_sigma)
    z = (baseline.score_mean - window.mean_score) * math.sqrt(window.volume) / sigma if window.volume else 0.0
    cusum = max(0.0, cusum + z - config.cusum_k)
    detection = Detection("sentiment_shift", cusum, config.cusum_threshold, window.mean_score, baseline.score_mean)
    return detection, cusum
