"""Anomaly lifecycle per scope and kind: open once, update while active, resolve after quiet.

An update is emitted only when the score reaches a new peak, so subscribers hear about escalation,
not about every window of a long surge; the event's severity is that of the peak, so a resolve is
routed like the open it closes.

Hysteresis: opening needs the full threshold, staying open only `hysteresis * threshold`, so a
score hovering at the threshold does not flap. After a resolve, the same kind cannot re-open in
that scope until the cooldown has passed (in event time).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from alerts.config import MonitorConfig
from alerts.detectors.contract import Detection
from alerts.records import EventType, Severity

DEFAULT_WINDOW_SECONDS = 60.0  # ids of this window size are what they always were


def anomaly_id(scope: str, kind: str, opened_at: float, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> str:
    """Deterministic, so replaying the same stories after a crash yields the same id. A window size
    other than 60 s is part of it: a 60 s and a 900 s monitor of one scope (docs/ALERTS.md) open
    anomalies at the same window start, and one id for both made the dispatcher drop the second."""
    size = "" if window_seconds == DEFAULT_WINDOW_SECONDS else f"|{window_seconds:g}"
    return hashlib.sha256(f"{scope}|{kind}|{opened_at:.3f}{size}".encode()).hexdigest()[:16]


def severity_for(score: float, threshold: float, config: MonitorConfig) -> Severity:
    ratio = score / threshold
    if ratio >= config.critical_ratio:
        return "critical"
    if ratio >= config.warning_ratio:
        return "warning"
    return "info"


@dataclass
class Lifecycle:
    active_id: str | None = None
    opened_at: float | None = None  # start of the opening window
    quiet: int = 0
    peak: float = 0.0
    cooldown_until: float = float("-inf")

    def step(
        self, scope: str, detection: Detection, window_start: float, armed: bool, config: MonitorConfig
    ) -> EventType | None:
        """Advance by one closed window; `armed` is False during baseline warm-up."""
        firing = detection.score >= detection.threshold
        if self.active_id is None:
            if firing and armed and window_start >= self.cooldown_until:
                self.active_id = anomaly_id(scope, detection.kind, window_start, config.window_seconds)
                self.opened_at = window_start
                self.quiet = 0
                self.peak = detection.score
                return "open"
            return None
        if detection.score >= config.hysteresis * detection.threshold:
            self.quiet = 0
            if firing and detection.score > self.peak:
                self.peak = detection.score
                return "update"
            return None
        self.quiet += 1
        if self.quiet >= config.quiet_windows:
            return "resolve"
        return None

    def close(self, window_end: float, config: MonitorConfig) -> None:
        """Forget the resolved anomaly and start the cooldown; called after its event is built."""
        self.active_id, self.opened_at, self.quiet, self.peak = None, None, 0, 0.0
        self.cooldown_until = window_end + config.cooldown_seconds

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cooldown_until"] = None if self.cooldown_until == float("-inf") else self.cooldown_until
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Lifecycle:
        cooldown = d["cooldown_until"]
        cooldown = float("-inf") if cooldown is None else cooldown
        return cls(d["active_id"], d["opened_at"], d["quiet"], d["peak"], cooldown)
