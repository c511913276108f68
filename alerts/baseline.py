"""Exponentially weighted baseline of one scope, learned from closed windows.

Rates are per window; the negative share is the ratio of the weighted negative and total rates
(not a mean of per-window shares, which empty and one-story windows would dominate). Windows in
which a detector fired are absorbed at a reduced weight so a surge does not mask itself, while a
lasting change of level is still learned eventually.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from alerts.windows import WindowStats


@dataclass
class Baseline:
    windows: int = 0
    rate: float = 0.0
    negative_rate: float = 0.0
    score_mean: float = 0.0
    score_var: float = 0.0

    def update(self, window: WindowStats, alpha: float) -> None:
        self.windows += 1
        self.rate += alpha * (window.volume - self.rate)
        self.negative_rate += alpha * (window.negative - self.negative_rate)
        if window.volume:
            # Per-story weight: a window of n stories moves the score baseline like n updates.
            weight = 1.0 - (1.0 - alpha) ** window.volume
            mean = window.mean_score
            var = max(window.score_sqsum / window.volume - mean**2, 0.0)
            delta = mean - self.score_mean
            self.score_mean += weight * delta
            self.score_var = (1 - weight) * (self.score_var + weight * delta**2) + weight * var

    def negative_share(self, prior: float, prior_weight: float) -> float:
        return (self.negative_rate + prior * prior_weight) / (self.rate + prior_weight)

    def score_sigma(self, floor: float) -> float:
        return max(math.sqrt(self.score_var), floor)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Baseline:
        return cls(**d)
