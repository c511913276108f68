"""Exponentially weighted baseline of one scope, learned from closed windows.

Rates are per window; the negative share is the ratio of the weighted negative and total rates
(not a mean of per-window shares, which empty and one-story windows would dominate). Windows in
which a detector fired are absorbed at a reduced weight so a surge does not mask itself, while a
lasting change of level is still learned eventually.

A young baseline is the plain mean of its windows (the step is at least 1/windows), so its rate
is unbiased from the first window rather than climbing from 0.

A silence the baseline makes improbable is not learned: once a run of empty windows would have
had a probability under 1/1000 at the scope's rate (Poisson: rate x run > ln 1000), the source went
quiet (a weekend, a closed market, a feed down), and the news did not. Learned, a weekend took a
busy ticker's rate to nothing, and Monday's first ordinary minute opened a volume spike. A sparse
scope, whose silences are plausible, still decays as before.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from alerts.windows import WindowStats

# ln(1000): a run of empty windows this improbable under the rate is the source's silence, not news'.
SILENCE_EVIDENCE = math.log(1000.0)


@dataclass
class Baseline:
    windows: int = 0
    rate: float = 0.0
    negative_rate: float = 0.0
    score_mean: float = 0.0
    score_var: float = 0.0
    quiet_run: int = 0  # empty windows in a row up to now

    def update(self, window: WindowStats, alpha: float, weight: float = 1.0) -> None:
        """Learn one closed window at smoothing `alpha`, times `weight` (< 1 for a window in which a
        detector fired). A young baseline averages all its windows equally (the step is at least
        1/windows), so it is unbiased from the first window: started at 0 with the step `alpha`
        alone, a busy new scope's rate stood at 45% of its true rate when warm-up ended (1 - 0.98^30),
        and its next ordinary minutes opened volume spikes and surges."""
        self.quiet_run = 0 if window.volume else self.quiet_run + 1
        if self.rate * self.quiet_run > SILENCE_EVIDENCE:
            return  # an improbable silence: the rate it would teach is the source's, not the news'
        self.windows += 1
        alpha = max(alpha, 1.0 / self.windows) * weight
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
