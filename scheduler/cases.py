"""Cases: what an anomaly becomes once someone (or the machine) has to deal with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, get_args

from alerts.records import EventType, finite_number, safe_id, utf8_text, utf8_texts

from .config import SEVERITIES


class Status(StrEnum):
    WAITING = "waiting"
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    AUTO_RESOLVED = "auto_resolved"


HELD = frozenset({Status.ASSIGNED, Status.ACKNOWLEDGED})  # count against an analyst's capacity
CLOSED = frozenset({Status.RESOLVED, Status.AUTO_RESOLVED})
ANOMALY_EVENTS: tuple[str, ...] = get_args(EventType)  # the monitor's lifecycle steps


def may_view(case: dict[str, Any], person: str) -> bool:
    """Whether `person` may know a case (a `Case.to_dict()`) exists: its holder or resolver may, and a
    machine-closed case is anyone's on the roster to review (and reopen)."""
    return case.get("analyst") == person or case.get("status") == Status.AUTO_RESOLVED


class AnomalyError(ValueError):
    """An anomaly record the scheduler cannot act on; the agent should dead-letter it."""


def case_id_for(anomaly_id: str) -> str:
    """Deterministic, so a replayed anomaly finds its case and a restart needs no id allocator."""
    return f"case-{anomaly_id}"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware one (UTC) so shifts and SLAs are unambiguous")
    return at.astimezone(UTC)


@dataclass(frozen=True)
class Evidence:
    """The part of an anomaly record a case keeps; validated here so bad records fail at the door."""

    anomaly_id: str
    event: str
    kind: str
    scope: str
    severity: str
    score: float
    sample_ids: tuple[str, ...]
    headlines: tuple[str, ...]
    # The sample ids whose stories were social posts (the anomaly's `samples`, `style`): a correction of
    # one trains as a post, not as newswire (scheduler/feedback.py).
    social_ids: frozenset[str] = frozenset()

    @classmethod
    def from_anomaly(cls, anomaly: dict[str, Any]) -> Evidence:
        def text(name: str, default: str | None = None) -> str:
            value = anomaly.get(name, default)
            if not utf8_text(value) or not value:
                raise AnomalyError(f"anomaly field {name!r} must be a non-empty string, got {value!r}")
            return value

        def texts(name: str) -> tuple[str, ...]:
            values = anomaly.get(name) or []
            if not utf8_texts(values):
                raise AnomalyError(f"anomaly field {name!r} must be a list of strings")
            return tuple(values)

        severity, event, scope = text("severity"), text("event", "open"), text("scope")
        if severity not in SEVERITIES:
            raise AnomalyError(f"anomaly severity must be one of {SEVERITIES}, got {severity!r}")
        if event not in ANOMALY_EVENTS:
            raise AnomalyError(f"anomaly event must be one of {ANOMALY_EVENTS}, got {event!r}")
        if ":" not in scope:
            raise AnomalyError(f"anomaly scope must look like 'topic:Earnings' or 'ticker:AAPL', got {scope!r}")
        score = anomaly.get("score", 0.0)
        if not finite_number(score):
            raise AnomalyError(f"anomaly score must be a finite number, got {str(score)[:40]!r}")
        anomaly_id = text("anomaly_id")
        if not safe_id(anomaly_id):  # it names the case: a path segment in the console, a Kafka key
            raise AnomalyError(f"anomaly_id must be 1-128 letters, digits, '-' or '_', got {anomaly_id[:40]!r}")
        return cls(
            anomaly_id=anomaly_id,
            event=event,
            kind=text("kind", "surge"),
            scope=scope,
            severity=severity,
            score=float(score),
            sample_ids=texts("sample_ids"),
            headlines=texts("headlines"),
            social_ids=social_ids(anomaly.get("samples")),
        )

    def stories(self) -> dict[str, str]:
        """Story id -> headline, one entry per id. A case keeps its ids and headlines as two lists that
        everything downstream reads together by position (the monitor writes them so), so they are
        taken and merged as pairs: two stories may share a headline's text, never an id."""
        return dict(zip(self.sample_ids, self.headlines, strict=False))


def social_ids(samples: Any) -> frozenset[str]:
    """The ids of an anomaly's `samples` marked `style: social`. Lenient: `samples` is display data (a
    record from before it existed has none), so anything malformed marks nothing rather than refuse the
    anomaly; its stories then train as newswire, as every story did before styles."""
    if not isinstance(samples, list):
        return frozenset()
    return frozenset(s["id"] for s in samples
                     if isinstance(s, dict) and s.get("style") == "social" and utf8_text(s.get("id")))


_TIMES = ("created_at", "reopened_at", "resolve_from", "assigned_at", "acked_at", "closed_at", "ack_due", "resolve_due")


def sla_start(case: dict[str, Any]) -> datetime:
    """When a stored case (`Case.to_dict()`) entered the human queue: `Case.since` for readers of the state."""
    return datetime.fromisoformat(case.get("reopened_at") or case["created_at"])


@dataclass
class Case:
    """Mutable on purpose: the engine is its only writer, and it round-trips through `to_dict`."""

    case_id: str
    anomaly_id: str
    seq: int  # arrival order; the deterministic tie-breaker everywhere
    kind: str
    scope: str
    severity: str
    score: float
    sample_ids: list[str]
    headlines: list[str]
    status: Status
    priority: float
    created_at: datetime
    ack_due: datetime  # escalate if not acknowledged by then (waiting cases too)
    resolve_due: datetime
    escalations: int = 0
    analyst: str | None = None  # holder while held; resolver once resolved
    reopened_at: datetime | None = None  # when a machine-closed case last went back to people
    # When the resolve window in force started, if not at `since`: a case that changed hands after its
    # resolve SLA passed gives its next holder a full window of their own (Scheduler._rearm_resolve).
    resolve_from: datetime | None = None
    assigned_at: datetime | None = None
    acked_at: datetime | None = None
    closed_at: datetime | None = None
    resolve_escalated: bool = False  # the resolve-SLA breach is announced once
    avoid: list[str] = field(default_factory=list)  # analysts it was escalated or handed away from
    # Who acknowledged it since `since`, each once, the latest last: it outlives their holding it, so a
    # case back in the queue still says an analyst saw it (Scheduler._close_waiting).
    acknowledged_by: list[str] = field(default_factory=list)
    outcome: str | None = None
    reason: str | None = None  # why it was auto-resolved or last returned to waiting
    labels: list[dict[str, Any]] = field(default_factory=list)
    social_ids: list[str] = field(default_factory=list)  # of sample_ids, those of social posts (Evidence)

    @property
    def since(self) -> datetime:
        """Where its SLAs, age and acknowledge latency count from: creation, or the last reopening. A case
        the machine closed at 09:00 and an analyst reopened at 15:00 is six minutes old at 15:06, not six
        hours (it was nobody's to miss meanwhile)."""
        return self.reopened_at or self.created_at

    @property
    def resolve_start(self) -> datetime:
        """Where the resolve SLA in force counts from: `since`, or a later hand-over (`resolve_from`)."""
        return self.resolve_from or self.since

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        for name in _TIMES:
            d[name] = iso(d[name]) if d[name] is not None else None
        for name in _OPTIONAL:  # left out when unset, so cases stored before the field existed read
            if not d[name]:  # as unchanged (scheduler/storage.py would otherwise rewrite every record in
                del d[name]  # one input); `from_dict` reads an absent one as its default
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Case:
        """Read a stored case. Fields this version does not know (written by a later one) are ignored and
        the rest read as usual, so a rollback still reads the state; the release before this one raised
        on them (`resolve_from`, `reopened_at`: docs/OPERATIONS.md, "Upgrading")."""
        d = {name: value for name, value in d.items() if name in _FIELDS}
        d["status"] = Status(d["status"])
        for name in _TIMES:
            d[name] = datetime.fromisoformat(d[name]) if d.get(name) is not None else None
        # Versions before the pairing (Evidence.stories) took an update's new ids and new headline texts
        # apart, so a story whose text the case had already got an id and no headline, anywhere in the
        # lists. Then nothing says which text is whose: the case forgets its stories rather than pair
        # an id with another's text (a label on it would train on that text); updates bring them back.
        if len(d["sample_ids"]) != len(d["headlines"]):
            d["sample_ids"], d["headlines"] = [], []
        if "acknowledged_by" not in d and d["status"] is Status.ACKNOWLEDGED and d.get("analyst"):
            # Stored before `acknowledged_by` existed: who else acknowledged it is lost, but its holder
            # did, and since its last reopening (a reopened case waits first). So one handed back after
            # the upgrade is not closed `unattended`; only such open cases are written back changed.
            d["acknowledged_by"] = [d["analyst"]]
        return cls(**d)


_OPTIONAL = ("reopened_at", "resolve_from", "acknowledged_by", "social_ids")  # fields later than the first stored cases
_FIELDS = frozenset(f.name for f in fields(Case))  # what from_dict reads; anything else is a later version's
