"""Detection settings; one object so the Faust agent, the tests and the benchmark share defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MonitorConfig:
    """Defaults tuned with bench/detection.py (see docs/ALERTS.md for the figures).

    Thresholds are in score units: -log10(p) for the Poisson tests, the CUSUM statistic for the
    shift detector. An anomaly opens at `*_threshold`, stays open while the score is above
    `hysteresis * threshold`, and resolves after `quiet_windows` windows below that.
    """

    window_seconds: float = 60.0
    # Covers a feed polled at scrape's default 60 s interval: a poll's stories are up to one interval
    # plus one fetch (scrape's Policy.max_seconds, 30 s) old when sent, plus 30 s for the pipeline.
    # Detectors run when a window closes, so every anomaly opens this long after its window ends.
    allowed_lateness: float = 120.0
    warmup_windows: int = 30
    baseline_alpha: float = 0.02
    anomalous_weight: float = 0.1
    prior_negative_share: float = 0.3
    min_expected_per_window: float = 0.05
    # negative surge: Poisson test on the count of novel negative stories in the newest 1..span windows
    surge_span_windows: int = 3
    min_negative: int = 5
    min_share_lift: float = 0.15
    surge_threshold: float = 4.0
    # volume spike: Poisson test on the count of novel stories
    min_volume: int = 8
    volume_threshold: float = 8.0
    # sustained shift: one-sided CUSUM on the standardised window mean sentiment score
    cusum_k: float = 0.5
    cusum_max_z: float = 3.0
    cusum_threshold: float = 8.0
    min_score_sigma: float = 0.2
    # lifecycle
    hysteresis: float = 0.5
    quiet_windows: int = 3
    cooldown_seconds: float = 600.0
    warning_ratio: float = 2.0
    critical_ratio: float = 4.0
    # Quiet windows closed at most per advance; more would not move a baseline with this alpha
    # (0.98**360 < 0.001) and would stall the event loop on an old timestamp (see WindowSet.close_due).
    max_quiet_windows: int = 360
    # novelty
    novelty_horizon_seconds: float = 3600.0
    novelty_max_distance: int = 3
    max_samples: int = 5

    def __post_init__(self) -> None:
        if self.window_seconds <= 0:
            raise ValueError("MonitorConfig.window_seconds must be > 0")
        if not 0 < self.baseline_alpha <= 1:
            raise ValueError("MonitorConfig.baseline_alpha must be in (0, 1]")
        if not 0 < self.hysteresis <= 1:
            raise ValueError("MonitorConfig.hysteresis must be in (0, 1]")
        if self.surge_span_windows < 1:
            raise ValueError("MonitorConfig.surge_span_windows must be >= 1")
        if self.quiet_windows < 1:
            raise ValueError("MonitorConfig.quiet_windows must be >= 1")
