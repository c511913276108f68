"""Silences: label matchers (equality or anchored regex, as in Alertmanager) with an end time."""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False

    def __post_init__(self) -> None:
        if self.is_regex:
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"silence matcher {self.name}=~{self.value!r}: invalid regex ({exc})") from exc

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.name, "")
        return re.fullmatch(self.value, value) is not None if self.is_regex else value == self.value


@dataclass(frozen=True)
class Silence:
    matchers: tuple[Matcher, ...]
    ends_at: float
    starts_at: float = 0.0
    comment: str = ""
    created_by: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher; an empty one would mute everything")

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, str], now: float) -> bool:
        return self.active(now) and all(m.matches(labels) for m in self.matchers)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Silence:
        """Accepts to_dict() output and the config/API form (matchers as {name, value, is_regex?})."""
        matchers = tuple(Matcher(m["name"], str(m["value"]), bool(m.get("is_regex", False))) for m in d["matchers"])
        extra = {k: d[k] for k in ("starts_at", "comment", "created_by", "id") if k in d}
        return cls(matchers, float(d["ends_at"]), **extra)


@dataclass
class Silences:
    """The set of silences the dispatcher consults; expired ones are pruned on `list`."""

    items: dict[str, Silence] = field(default_factory=dict)

    def add(self, silence: Silence) -> str:
        self.items[silence.id] = silence
        return silence.id

    def remove(self, silence_id: str) -> bool:
        return self.items.pop(silence_id, None) is not None

    def list(self, now: float) -> list[Silence]:
        self.items = {k: s for k, s in self.items.items() if s.ends_at > now}
        return sorted(self.items.values(), key=lambda s: s.ends_at)

    def match(self, labels: dict[str, str], now: float) -> Silence | None:
        return next((s for s in self.items.values() if s.matches(labels, now)), None)

    def to_dict(self) -> dict:
        return {"items": [s.to_dict() for s in self.items.values()]}

    @classmethod
    def from_dict(cls, d: dict) -> Silences:
        return cls({s.id: s for s in map(Silence.from_dict, d["items"])})
