"""Silences: label matchers (equality or anchored regex, negated or not, as in Alertmanager) with
a start and an end time; and their Alertmanager API v2 form (`to_v2` / `silence_from_v2`), which
is what `amtool` and Alertmanager's UI speak.

Regex matchers run on RE2 (google-re2), a linear-time engine: a matcher comes from whoever may
create a silence, and a backtracking engine lets one pattern such as `(?:.*){15}Z` stall the worker
for seconds per label. RE2 is also the syntax Alertmanager's Go matchers use.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import re2

from alerts.records import iso_utc

MAX_REGEX_LENGTH = 1024  # characters of one matcher's pattern
# Every silence lives in the notify coordinator's one state record, which must stay far below
# Kafka's 1 MiB message limit: at most 100 silences of at most 4 KiB each (as stored).
MAX_SILENCES = 100
MAX_SILENCE_BYTES = 4096
MAX_MATCHERS = 16
MAX_COMMENT = 1000  # characters
MAX_CREATED_BY = 200  # characters
EXPIRED_RETENTION = 86400.0  # an expired silence stays listed (state "expired") this long, as in Alertmanager


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True  # False: the label must *not* equal / match (!=, !~)

    def __post_init__(self) -> None:
        if self.is_regex:
            if len(self.value) > MAX_REGEX_LENGTH:
                raise ValueError(f"silence matcher {self.name}=~...: the pattern is {len(self.value)} characters, "
                                 f"the limit is {MAX_REGEX_LENGTH}")
            try:
                _compiled(self.value)
            except re2.error as exc:
                reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
                raise ValueError(f"silence matcher {self.name}=~{self.value!r}: invalid regex (RE2: {reason})") from exc

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.name, "")
        hit = _compiled(self.value).fullmatch(value) is not None if self.is_regex else value == self.value
        return hit == self.is_equal


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    """RE2 pattern, compiled once; RE2 never backtracks, so matching is linear in the label's length."""
    return re2.compile(pattern)


@dataclass(frozen=True)
class Silence:
    matchers: tuple[Matcher, ...]
    ends_at: float
    starts_at: float = 0.0
    comment: str = ""
    created_by: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher; an empty one would mute everything")

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def state(self, now: float) -> str:
        """Alertmanager's status.state: pending, active or expired."""
        return "pending" if now < self.starts_at else "active" if now < self.ends_at else "expired"

    def to_v2(self, now: float) -> dict[str, Any]:
        """Alertmanager API v2 `gettableSilence`."""
        return {
            "id": self.id, "status": {"state": self.state(now)}, "updatedAt": iso_utc(self.updated_at or self.starts_at),
            "matchers": [{"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
                         for m in self.matchers],
            "startsAt": iso_utc(self.starts_at), "endsAt": iso_utc(self.ends_at),
            "createdBy": self.created_by, "comment": self.comment,
        }

    def matches(self, labels: dict[str, str], now: float) -> bool:
        return self.active(now) and all(m.matches(labels) for m in self.matchers)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Silence:
        """Accepts to_dict() output and the config/API form (matchers as {name, value, is_regex?})."""
        matchers = tuple(Matcher(m["name"], str(m["value"]), bool(m.get("is_regex", False)),
                                 bool(m.get("is_equal", True))) for m in d["matchers"])
        extra = {k: d[k] for k in ("starts_at", "comment", "created_by", "id", "updated_at") if k in d}
        return cls(matchers, float(d["ends_at"]), **extra)


_V2_FIELDS = {"id", "matchers", "startsAt", "endsAt", "createdBy", "comment"}
_FRACTION = re.compile(r"(\.\d{6})\d+")  # Go writes nanoseconds; Python parses up to microseconds


class SilenceError(ValueError):
    """A silence the API refuses; the message says what to fix."""


def parse_time(value: object, field_name: str) -> float:
    """Epoch seconds from an RFC 3339 timestamp, as Alertmanager's API takes them."""
    if not isinstance(value, str):
        raise SilenceError(f"{field_name}: expected an RFC 3339 timestamp like 2024-05-01T10:00:00Z")
    try:
        stamp = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        raise SilenceError(f"{field_name}: {value!r} is not an RFC 3339 timestamp") from None
    if stamp.tzinfo is None:
        raise SilenceError(f"{field_name}: {value!r} has no time zone; add Z or an offset")
    return stamp.timestamp()


def silence_from_v2(data: object, now: float) -> Silence:
    """A `postableSilence` body, checked as Alertmanager checks it."""
    if not isinstance(data, dict):
        raise SilenceError("body must be a JSON object: {matchers, startsAt, endsAt, createdBy, comment}")
    unknown = sorted(set(data) - _V2_FIELDS)
    if unknown:
        raise SilenceError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_V2_FIELDS))}")
    raw = data.get("matchers")
    if not isinstance(raw, list) or not raw:
        raise SilenceError("matchers: required, a non-empty list of {name, value, isRegex, isEqual?}")
    if len(raw) > MAX_MATCHERS:
        raise SilenceError(f"matchers: {len(raw)} given, at most {MAX_MATCHERS}")
    matchers = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not m["name"] \
                or not isinstance(m.get("value"), str) or not isinstance(m.get("isRegex", False), bool) \
                or not isinstance(m.get("isEqual", True), bool):
            raise SilenceError(f"matchers[{i}]: expected {{name, value (strings), isRegex, isEqual? (booleans)}}")
        try:
            matchers.append(Matcher(m["name"], m["value"], m.get("isRegex", False), m.get("isEqual", True)))
        except ValueError as exc:
            raise SilenceError(f"matchers[{i}]: {exc}") from None
    for name, limit in (("createdBy", MAX_CREATED_BY), ("comment", MAX_COMMENT)):
        if not isinstance(data.get(name), str):
            raise SilenceError(f"{name}: required, a string")
        if len(data[name]) > limit:
            raise SilenceError(f"{name}: {len(data[name])} characters, at most {limit}")
    starts_at, ends_at = parse_time(data.get("startsAt"), "startsAt"), parse_time(data.get("endsAt"), "endsAt")
    if ends_at <= starts_at:
        raise SilenceError("endsAt must be after startsAt")
    if ends_at <= now:
        raise SilenceError("endsAt is already past")
    silence_id = data.get("id") or str(uuid.uuid4())
    if not isinstance(silence_id, str) or len(silence_id) > 200:
        raise SilenceError("id: expected a string of at most 200 characters")
    return check_size(Silence(tuple(matchers), ends_at, max(starts_at, now),
                              data["comment"], data["createdBy"], silence_id, now))


def check_size(silence: Silence) -> Silence:
    """The silence, if its stored form fits MAX_SILENCE_BYTES; SilenceError naming both sizes otherwise."""
    size = len(json.dumps(silence.to_dict()).encode("utf-8"))
    if size > MAX_SILENCE_BYTES:
        raise SilenceError(f"the silence is {size} bytes as stored, at most {MAX_SILENCE_BYTES}: "
                           "use fewer or shorter matchers, or a shorter comment")
    return silence


def filter_matchers(filters: list[str]) -> list[Matcher]:
    """`?filter=` values of GET /api/v2/silences (`name="value"`, `=~`, `!=`, `!~`)."""
    out = []
    for text in filters:
        match = re.fullmatch(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*', text)
        if not match:
            raise SilenceError(f"filter {text!r}: expected name=\"value\", name=~\"regex\", != or !~")
        name, op, value = match.groups()
        out.append(Matcher(name, value, op in ("=~", "!~"), op in ("=", "=~")))
    return out


@dataclass
class Silences:
    """The set of silences the dispatcher consults; expired ones are pruned on `list`."""

    items: dict[str, Silence] = field(default_factory=dict)

    def add(self, silence: Silence) -> str:
        """Add or replace a silence; SilenceError if it is over MAX_SILENCE_BYTES, or once MAX_SILENCES
        are held and this one is new."""
        check_size(silence)
        if silence.id not in self.items and len(self.items) >= MAX_SILENCES:
            raise SilenceError(f"{MAX_SILENCES} silences are held already (expired ones stay listed for a day); "
                               "expire or delete some first")
        self.items[silence.id] = silence
        return silence.id

    def full(self, silence_id: str) -> bool:
        """Whether adding a silence with this id would pass MAX_SILENCES."""
        return silence_id not in self.items and len(self.items) >= MAX_SILENCES

    def remove(self, silence_id: str) -> bool:
        return self.items.pop(silence_id, None) is not None

    def expire(self, silence_id: str, now: float) -> bool:
        """End a silence now; it stays listed as expired for EXPIRED_RETENTION, as in Alertmanager."""
        silence = self.items.get(silence_id)
        if silence is None or silence.ends_at <= now:
            return False
        self.items[silence_id] = replace(silence, ends_at=now, starts_at=min(silence.starts_at, now), updated_at=now)
        return True

    def list(self, now: float) -> list[Silence]:
        """Every silence not expired for longer than EXPIRED_RETENTION (pruning the rest)."""
        self.items = {k: s for k, s in self.items.items() if s.ends_at > now - EXPIRED_RETENTION}
        return sorted(self.items.values(), key=lambda s: s.ends_at)

    def match(self, labels: dict[str, str], now: float) -> Silence | None:
        return next((s for s in self.items.values() if s.matches(labels, now)), None)

    def to_dict(self) -> dict:
        return {"items": [s.to_dict() for s in self.items.values()]}

    @classmethod
    def from_dict(cls, d: dict) -> Silences:
        return cls({s.id: s for s in map(Silence.from_dict, d["items"])})
