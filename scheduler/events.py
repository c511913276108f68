"""Case events: the values written to `cases.events`, one per state change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .cases import Case, iso


@dataclass(frozen=True)
class CaseEvent:
    """Carries everything a notifier needs (including the webhook target) so it never reads the roster."""

    event: str
    case_id: str
    anomaly_id: str
    at: datetime
    priority: float
    severity: str
    scope: str
    kind: str
    analyst: str | None = None
    reason: str | None = None
    outcome: str | None = None
    labels: list[dict[str, Any]] | None = None
    notify: dict[str, str] | None = None  # {target, analyst}

    @classmethod
    def of(cls, name: str, case: Case, at: datetime, **extra: Any) -> CaseEvent:
        return cls(
            name, case.case_id, case.anomaly_id, at, case.priority, case.severity, case.scope, case.kind, **extra
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; optional fields that do not apply are left out rather than null."""
        d = {k: v for k, v in self.__dict__.items() if v is not None}
        d["at"] = iso(self.at)
        return d
