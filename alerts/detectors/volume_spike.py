"""Volume spike: more stories in a window than the scope's usual rate explains, whatever their sentiment."""

from __future__ import annotations

from alerts.baseline import Baseline
from alerts.config import MonitorConfig
from alerts.detectors.contract import Detection, Detector, poisson_score
from alerts.windows import WindowStats


def volume_spike(window: WindowStats, baseline: Baseline, config: MonitorConfig) -> Detection:
    expected = max(baseline.expected(window)[0], config.min_expected_per_window)
    score = poisson_score(window.volume, expected) if window.volume >= config.min_volume else 0.0
    return Detection("volume_spike", score, config.volume_threshold, window.volume, expected)


# A negative surge is also a surge of news: it explains the spike, so one anomaly is opened, not two.
DETECTOR = Detector("volume_spike", lambda ctx: volume_spike(ctx.window, ctx.baseline, ctx.config),
                    explained_by=("negative_surge",), samples=None)
