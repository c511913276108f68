"""The team's load read from the scheduler's stored state: what each analyst holds against capacity,
what waits, and what is past its acknowledge SLA. Plain data in, plain numbers out, so the schedule
agent's gauges and the console's overview count the same way without importing one another."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .config import SchedulerPolicy
from .roster import Roster


@dataclass(frozen=True)
class Workload:
    open_by_analyst: dict[str, int]
    utilisation: dict[str, float]
    waiting: int
    over_sla: int


def workload(state: dict[str, Any], current: Roster, policy: SchedulerPolicy, now: datetime) -> Workload:
    """Gauge values from the stored state. Over SLA counts from creation, as the SLA is defined:
    escalation moves a case's `ack_due` on, but the breach it escalated for still stands."""
    cases = state.get("cases", {}).values()
    held: dict[str, int] = dict.fromkeys(current.analysts, 0)
    waiting = over = 0
    for case in cases:
        status = case["status"]
        if status in ("assigned", "acknowledged"):
            held[case["analyst"]] = held.get(case["analyst"], 0) + 1
        waiting += status == "waiting"
        if status in ("waiting", "assigned"):
            due = datetime.fromisoformat(case["created_at"]) + policy.ack_sla[case["severity"]]
            over += due < now
    utilisation = {a.id: held[a.id] / a.capacity for a in current.analysts.values()}
    return Workload(held, utilisation, waiting, over)
