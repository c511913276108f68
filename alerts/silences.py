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
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import re2

from alerts.records import iso_utc

MAX_REGEX_LENGTH = 1024  # characters of one matcher's pattern
# Every silence lives in the notify coordinator's one state record, which must stay far below
# Kafka's 1 MiB message limit: at most 100 silences in force (active or pending) and the 50 most
# recently expired ones, of at most 4 KiB each (as stored).
MAX_SILENCES = 100  # active or pending; expired ones never count
# The coordinator's whole state record (silences, groups, outbox) as JSON: no silence is added that
# would take it past this, well inside Kafka's default 1 MiB record limit (message.max.bytes), and
# over it the expired silences (kept only for listing) go first, so silences cannot starve the outbox.
RECORD_BOUND = 900 * 1024
RECORD_FULL = "the notify coordinator's state is"  # how check_room's refusal begins
MAX_EXPIRED_SILENCES = 50  # expired ones kept for listing; the longest expired go first
MAX_SILENCE_BYTES = 4096
MAX_MATCHERS = 16
MAX_COMMENT = 1000  # characters
MAX_CREATED_BY = 200  # characters
# An expired silence stays listed (state "expired") this long, then is pruned from the stored set:
# Alertmanager's --data.retention default (120h).
EXPIRED_RETENTION = 120 * 3600.0
MATCH_ALL = ("at least one matcher must not match the empty string (as in Alertmanager): a label an alert "
             "lacks counts as \"\", so a silence whose every matcher matches \"\" (name=~\".*\", a misspelled "
             "name with =\"\" or !=) would mute every alert")


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
    def from_dict(cls, d: dict, *, checked: bool = True) -> Silence:
        """Accepts to_dict() output and the config/API form (matchers as {name, value, is_regex?}).
        `checked`: refuse (SilenceError) matchers that all match the empty label set (`check_matchers`);
        off only for the stored set, which may hold one accepted before the check existed."""
        matchers = tuple(Matcher(m["name"], str(m["value"]), bool(m.get("is_regex", False)),
                                 bool(m.get("is_equal", True))) for m in d["matchers"])
        if checked:
            check_matchers(matchers)
        extra = {k: d[k] for k in ("starts_at", "comment", "created_by", "id", "updated_at") if k in d}
        return cls(matchers, float(d["ends_at"]), **extra)


_V2_FIELDS = {"id", "matchers", "startsAt", "endsAt", "createdBy", "comment"}
_FRACTION = re.compile(r"(\.\d{6})\d+")  # Go writes nanoseconds; Python parses up to microseconds


class SilenceError(ValueError):
    """A silence the API refuses; the message says what to fix."""


class SilenceNotFound(SilenceError):
    """An update (a POST with an `id`) of a silence that is not held: 404, as in Alertmanager."""


class SilencesFull(SilenceError):
    """MAX_SILENCES are in force already: 409."""


def check_matchers(matchers: tuple[Matcher, ...] | list[Matcher]) -> None:
    """SilenceError unless some matcher fails on the empty label set, as Alertmanager validates a
    silence: `scope=~".*"`, `sevrity=""` or `sevrity!="info"` alone would mute every alert."""
    if matchers and all(m.matches({}) for m in matchers):
        raise SilenceError(MATCH_ALL)


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
    check_matchers(matchers)
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


def stored_bytes(value: object) -> int:
    """Bytes of `value` as JSON (json.dumps' defaults: at least what the table stores)."""
    return len(json.dumps(value).encode("utf-8", "surrogateescape"))


def check_room(held: Silences, silence: Silence, record_bytes: int) -> None:
    """SilencesFull when storing `silence` (new, or replacing the one of its id in `held`) would take the
    coordinator's state record, `record_bytes` now, past RECORD_BOUND."""
    previous = held.items.get(silence.id)
    growth = stored_bytes(silence.to_dict()) - (stored_bytes(previous.to_dict()) if previous is not None else 0)
    if growth > 0 and record_bytes + growth > RECORD_BOUND:
        raise SilencesFull(f"{RECORD_FULL} {record_bytes // 1024} KiB, and with this silence "
                           f"would pass {RECORD_BOUND // 1024} KiB (Kafka's record limit is 1 MiB): expire "
                           "silences, or wait for undelivered notifications to drain (docs/ALERTS.md)")


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
    """The set of silences the dispatcher consults. Only silences in force (active or pending) count
    against MAX_SILENCES; an expired one stays listed for EXPIRED_RETENTION (at most
    MAX_EXPIRED_SILENCES of them), then `prune` drops it from the stored set."""

    items: dict[str, Silence] = field(default_factory=dict)

    def add(self, silence: Silence, now: float | None = None) -> str:
        """Add or replace a silence, pruning the set at `now` (default: the silence's `updated_at`, else
        its `starts_at`); SilenceError if it is over MAX_SILENCE_BYTES, or if it is new and in force
        while MAX_SILENCES others are."""
        check_size(silence)
        now = (silence.updated_at or silence.starts_at) if now is None else now
        self.prune(now)
        if silence.ends_at > now and self.full(silence.id, now):
            raise SilencesFull(f"{MAX_SILENCES} silences are in force already (expired ones do not count); "
                               "expire some first")
        self.items[silence.id] = silence
        self.prune(now)
        return silence.id

    def in_force(self, now: float) -> int:
        """How many silences are active or pending at `now` (what MAX_SILENCES bounds)."""
        return sum(s.ends_at > now for s in self.items.values())

    def full(self, silence_id: str, now: float | None = None) -> bool:
        """Whether a new silence in force with this id would pass MAX_SILENCES at `now` (default: the
        clock). Replacing one in force is never full."""
        now = time.time() if now is None else now
        held = self.items.get(silence_id)
        return (held is None or held.ends_at <= now) and self.in_force(now) >= MAX_SILENCES

    def admit(self, silence: Silence, now: float, *, update: bool) -> Silence:
        """What a POST of `silence` does, as in Alertmanager: `update` (the body named an `id`) of an
        unknown silence is SilenceNotFound; of an expired one, a new silence with a new id (the expired
        one stays listed); of one in force, it replaces that one under its id. SilencesFull when it
        would pass MAX_SILENCES."""
        held = self.items.get(silence.id) if update else None
        if update and held is None:
            raise SilenceNotFound(f"no silence {silence.id!r}; leave id out to create one")
        if held is not None and held.ends_at <= now:
            silence = replace(silence, id=str(uuid.uuid4()))
        if self.full(silence.id, now):
            raise SilencesFull(f"{MAX_SILENCES} silences are in force already (expired ones do not count); "
                               "expire some first")
        return silence

    def remove(self, silence_id: str) -> bool:
        return self.items.pop(silence_id, None) is not None

    def expire(self, silence_id: str, now: float) -> bool:
        """End a silence now; it stays listed as expired for EXPIRED_RETENTION, as in Alertmanager."""
        silence = self.items.get(silence_id)
        if silence is None or silence.ends_at <= now:
            return False
        self.items[silence_id] = replace(silence, ends_at=now, starts_at=min(silence.starts_at, now), updated_at=now)
        self.prune(now)
        return True

    def end(self, silence_id: str, now: float) -> bool:
        """DELETE /api/v2/silence/{id}: expire a silence in force; remove one already expired (where
        Alertmanager answers "already expired"), so an operator can clear it from the list."""
        return self.expire(silence_id, now) or self.remove(silence_id)

    def prune(self, now: float) -> bool:
        """Drop from the stored set the silences expired longer than EXPIRED_RETENTION ago, and the
        longest-expired beyond MAX_EXPIRED_SILENCES. True when any went."""
        expired = sorted((s for s in self.items.values() if s.ends_at <= now), key=lambda s: s.ends_at, reverse=True)
        gone = [s.id for s in expired[MAX_EXPIRED_SILENCES:]]
        gone += [s.id for s in expired[:MAX_EXPIRED_SILENCES] if s.ends_at <= now - EXPIRED_RETENTION]
        for silence_id in gone:
            del self.items[silence_id]
        return bool(gone)

    def drop_expired(self, now: float) -> bool:
        """Drop every expired silence (kept for listing only) from the stored set: the coordinator's
        record is near its bound. True when any went."""
        gone = [k for k, s in self.items.items() if s.ends_at <= now]
        for silence_id in gone:
            del self.items[silence_id]
        return bool(gone)

    def list(self, now: float) -> list[Silence]:
        """Every silence held, expired ones within their retention (pruning the rest)."""
        self.prune(now)
        return sorted(self.items.values(), key=lambda s: s.ends_at)

    def match(self, labels: dict[str, str], now: float) -> Silence | None:
        return next((s for s in self.items.values() if s.matches(labels, now)), None)

    def to_dict(self) -> dict:
        return {"items": [s.to_dict() for s in self.items.values()]}

    @classmethod
    def from_dict(cls, d: dict) -> Silences:
        return cls({s.id: s for s in (Silence.from_dict(item, checked=False) for item in d["items"])})
