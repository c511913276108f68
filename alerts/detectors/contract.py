"""The detector contract: what a detector reads when a window closes, and what it returns.

A detector is a pure function of a closed window's context, scored against its own threshold by
the lifecycle (alerts/lifecycle.py): `Detection.score >= Detection.threshold` fires. A detector
below its minimum count scores 0, so a ticker with three stories a day cannot fire on two. Where
every recent window is empty and the carried statistic is 0, it scores 0: a dormant scope's quiet
windows wait for its next story on that (alerts.engine.dormant). To add one: a file in this package with its function and a `DETECTOR`, and one line in the
registry (alerts/detectors/__init__.py). docs/ARCHITECTURE.md shows the diff of one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scipy.special import pdtrc

from alerts.baseline import Baseline
from alerts.config import MonitorConfig
from alerts.windows import WindowStats


@dataclass(frozen=True)
class Detection:
    kind: str
    score: float
    threshold: float
    observed: float
    expected: float


@dataclass(frozen=True)
class Context:
    """What every detector may read when a scope's window closes."""

    recent: Sequence[WindowStats]  # the newest closed windows, newest last: recent[-1] just closed
    baseline: Baseline  # before this window is folded in
    config: MonitorConfig
    carried: float  # the statistic a `carries` detector returned last window (0 until the monitor is armed)

    @property
    def window(self) -> WindowStats:
        return self.recent[-1]


@dataclass(frozen=True)
class Detector:
    """A registered detector.

    `kind` names its anomalies (the `kind` label of alerts and metrics). `explained_by`: kinds whose
    firing (or open anomaly) in the same scope explains this one, so it is not opened as a second
    alert for the same news (its score counts as 0 in that window). `carries`: the score is a running
    statistic, handed back next window as `Context.carried` (saved with the scope's state as `cusum`);
    at most one detector carries. In an explained window a carried statistic may fall but not grow.
    `samples`: the sentiment of the sample headlines its events carry (None: every story).
    """

    kind: str
    detect: Callable[[Context], Detection]
    explained_by: tuple[str, ...] = ()
    carries: bool = False
    samples: str | None = "negative"


def poisson_score(observed: int, expected: float) -> float:
    """-log10 P(X >= observed) for X ~ Poisson(expected): larger is more surprising."""
    if observed <= 0:
        return 0.0
    return -math.log10(max(float(pdtrc(observed - 1, expected)), 1e-300))
