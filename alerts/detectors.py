"""The three detectors: pure functions of a closed window, the baseline and the settings.

Each returns a `Detection` whose score is compared with its threshold by the lifecycle. A
detector below its minimum count scores 0, so a ticker with three stories a day cannot fire on two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def negative_surge(recent: Sequence[WindowStats], baseline: Baseline, config: MonitorConfig) -> Detection:
    """Too many novel negative stories for this scope's usual negative rate, over the last 1..k windows.

    A Poisson test on the negative count is far more powerful on sparse scopes than a binomial test
    on the share; the share-lift gate keeps a general news burst (all sentiments up) from counting.
    A surge rarely lines up with the tumbling windows: eight stories over three minutes land as
    2-3 per window, which no single window shows. So each span of the newest 1..k closed windows
    (`recent`, newest last) is tested against k times the baseline rate and the most surprising
    span is the score. The minimum count applies to the span, so a routine cluster of two or three
    negative stories on a quiet name cannot fire however the windows cut it.
    """
    expected = max(baseline.negative_rate, config.min_expected_per_window)
    share = baseline.negative_share(config.prior_negative_share, config.min_expected_per_window)
    best = Detection("negative_surge", 0.0, config.surge_threshold, recent[-1].negative, expected)
    negative = volume = 0
    for span, window in enumerate(reversed(recent[-config.surge_span_windows:]), start=1):
        negative, volume = negative + window.negative, volume + window.volume
        if negative < config.min_negative or negative < volume * (share + config.min_share_lift):
            continue
        score = poisson_score(negative, span * expected)
        if score > best.score:
            best = Detection("negative_surge", score, config.surge_threshold, negative, span * expected)
    return best


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
