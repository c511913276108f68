"""Records crossing the package boundary: a scored story in, an anomaly event out."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from models.labels import SENTIMENTS, Sentiment

EventType = Literal["open", "update", "resolve"]
Kind = str  # a detector's kind: alerts.detectors.KINDS, one per registered detector
Severity = Literal["info", "warning", "critical"]  # ascending

SEVERITIES: tuple[Severity, ...] = get_args(Severity)


def finite_number(value: object) -> bool:
    """A JSON number arithmetic can use: not a boolean (an int to Python), NaN, infinite, or an
    integer too large for a float (`math.isfinite` raises OverflowError on one)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def utf8_text(value: object) -> bool:
    """A string UTF-8 can encode: not one with a lone surrogate (JSON `"\\ud800"`), which every
    later encode (a Kafka key, an HTTP response, a webhook body) would fail on."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_texts(value: object) -> bool:
    """A JSON list of `utf8_text` strings (tickers, sample ids, headlines)."""
    return isinstance(value, list) and all(utf8_text(item) for item in value)


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
    topic: str | None = None  # the classifier's topic: an analyst correcting it sees what the model said

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
    # The same stories with their labels: [{id, headline, sentiment, confidence, topic}] (confidence, topic may be None).
    samples: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, value: object) -> AnomalyEvent:
        """An `alerts.anomalies` value as an event. ValueError naming the first field that is missing,
        unknown or of the wrong type: only a foreign producer sends such a value, and kept, it would
        fail every later encode (the webhook and Alertmanager bodies, the case's key, the console)."""
        if not isinstance(value, dict):
            raise ValueError("an anomaly event must be a JSON object")  # noqa: TRY004 - callers treat every bad record alike
        try:
            event = cls(**value)
        except TypeError as exc:
            raise ValueError(str(exc).replace("AnomalyEvent.__init__()", "an anomaly event")) from None
        for name in ("anomaly_id", "kind", "scope", "window_start", "window_end"):
            if not utf8_text(getattr(event, name)):
                raise ValueError(f"{name} must be a string")
        for name in ("observed", "expected", "score"):
            if not finite_number(getattr(event, name)):
                raise ValueError(f"{name} must be a finite number")
        if event.event not in get_args(EventType) or event.severity not in SEVERITIES:
            raise ValueError(f"event must be one of {get_args(EventType)} and severity one of {SEVERITIES}")
        for name in ("sample_ids", "headlines"):
            if not utf8_texts(getattr(event, name)):
                raise ValueError(f"{name} must be a list of strings")
        if not isinstance(event.samples, list) or not all(
                isinstance(sample, dict) and all(utf8_text(k) for k in sample)
                and all(v is None or utf8_text(v) or finite_number(v) for v in sample.values())
                for sample in event.samples):
            raise ValueError("samples must be a list of objects of strings and finite numbers")
        return event
