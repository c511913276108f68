"""Records crossing the package boundary: a scored story in, an anomaly event out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from models.labels import SENTIMENTS, Sentiment

EventType = Literal["open", "update", "resolve"]
Kind = str  # a detector's kind: alerts.detectors.KINDS, one per registered detector
Severity = Literal["info", "warning", "critical"]  # ascending

SEVERITIES: tuple[Severity, ...] = get_args(Severity)


def iso(moment: datetime) -> str:
    """RFC 3339 / ISO-8601 in UTC, to the millisecond, with a 'Z': the form Alertmanager and JSON
    consumers expect, used for every time on news.clean, news.scored, the dead letters, anomaly
    events and alerts. (The scheduler's state and case events keep full precision, so that a state
    saved and read back is the same: scheduler/cases.py `iso`.)"""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_utc(epoch_seconds: float) -> str:
    """`iso` of a Unix time."""
    return iso(datetime.fromtimestamp(epoch_seconds, UTC))


@dataclass(frozen=True)
class Story:
    """One scored story as the monitor needs it; built from a `news.scored` value."""

    id: str
    headline: str
    sentiment: Sentiment
    sentiment_score: float
    published_at: float
    confidence: float | None = None  # the classifier's probability of `sentiment`, when news.scored has it

    def __post_init__(self) -> None:
        if self.sentiment not in SENTIMENTS:
            raise ValueError(f"Story {self.id!r}: sentiment must be one of {SENTIMENTS}, got {self.sentiment!r}")


@dataclass
class AnomalyEvent:
    """One lifecycle step of an anomaly; `to_json()` is the `alerts.anomalies` value plus 'event'."""

    anomaly_id: str
    event: EventType
    kind: Kind
    scope: str
    window_start: str
    window_end: str
    observed: float
    expected: float
    score: float
    severity: Severity
    sample_ids: list[str] = field(default_factory=list)
    headlines: list[str] = field(default_factory=list)
    # The same stories with their label: [{id, headline, sentiment, confidence}] (confidence may be None).
    samples: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict) -> AnomalyEvent:
        return cls(**value)
