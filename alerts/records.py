"""Records crossing the package boundary: a scored story in, an anomaly event out."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from models.labels import SENTIMENTS, Sentiment
from models.text import STYLES

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


# What an anomaly id may be made of. The monitor's are 16 hex digits (alerts/lifecycle.py `anomaly_id`);
# an id names its case (`case-<id>`), which is a path segment of the console's URLs and a Kafka key, so a
# foreign producer's `zz/../case-<another>` must never get that far: letters, digits, '-' and '_' only.
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def safe_id(value: object) -> bool:
    """An anomaly id the monitor could have made: 1-128 ASCII letters, digits, '-' or '_' (no '/', '.',
    '%', '?', '#', space or anything a URL or a file name would read as structure)."""
    return isinstance(value, str) and SAFE_ID.fullmatch(value) is not None


def iso_time(value: object) -> bool:
    """An ISO-8601 time `datetime.fromisoformat` reads (a time without a zone is read as UTC where shown)."""
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def sample_ok(sample: object) -> bool:
    """One of an anomaly event's `samples`, as the monitor writes them: {id, headline, sentiment,
    confidence, topic, style}, the id a string, the confidence a probability or None, the rest text or None."""
    if not isinstance(sample, dict) or not all(utf8_text(k) for k in sample):
        return False
    if not utf8_text(sample.get("id")):
        return False
    if not all(v is None or utf8_text(v) or finite_number(v) for v in sample.values()):
        return False
    if any(sample.get(name) is not None and not utf8_text(sample[name]) for name in ("headline", "sentiment", "topic", "style")):
        return False
    confidence = sample.get("confidence")
    return confidence is None or (finite_number(confidence) and 0.0 <= confidence <= 1.0)


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
    # "social" for a post its source marked so (models.text.STYLES); None for newswire, the default, and
    # for stories from before styles. Kept with the samples so that an analyst's correction of a post
    # trains as one (scheduler/feedback.py); left out of a newswire story's news.by-scope copy.
    style: str | None = None

    def __post_init__(self) -> None:
        if self.sentiment not in SENTIMENTS:
            raise ValueError(f"Story {self.id!r}: sentiment must be one of {SENTIMENTS}, got {self.sentiment!r}")
        if self.style is not None and self.style not in STYLES:
            raise ValueError(f"Story {self.id!r}: style must be one of {STYLES} or null, got {str(self.style)[:40]!r}")


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
    # The same stories with their labels: [{id, headline, sentiment, confidence, topic, style}] (confidence, topic
    # and style may be None; style None is newswire).
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
        if not safe_id(event.anomaly_id):
            raise ValueError(f"anomaly_id must be 1-128 letters, digits, '-' or '_', got {event.anomaly_id[:40]!r}")
        for name in ("window_start", "window_end"):
            if not iso_time(getattr(event, name)):
                raise ValueError(f"{name} must be an ISO-8601 time, got {getattr(event, name)[:40]!r}")
        if not isinstance(event.samples, list) or not all(sample_ok(sample) for sample in event.samples):
            raise ValueError("samples must be a list of objects of strings and finite numbers, each with a string "
                             "id, a confidence from 0 to 1 (or null) and a text headline, sentiment and topic (or null)")
        return event
