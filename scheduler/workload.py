"""The team's load read from the scheduler's stored state: what each analyst holds against capacity,
what waits, and what is past its SLA. Plain data in, plain numbers out, so the schedule agent's gauges
and the console's overview count the same way without importing one another."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .cases import Case, sla_start
from .config import SchedulerPolicy
from .escalation import stranded
from .roster import Roster


@dataclass(frozen=True)
class Workload:
    open_by_analyst: dict[str, int]
    utilisation: dict[str, float]
    waiting: int
    over_sla: int


def workload(state: dict[str, Any], current: Roster, policy: SchedulerPolicy, now: datetime) -> Workload:
    """Gauge values from the stored state. Over SLA: waiting or unacknowledged past the acknowledge SLA
    counted from creation (or reopening), as the SLA is defined: escalation moves a case's `ack_due` on,
    but the breach it escalated for still stands; and acknowledged past the resolve SLA with its holder
    gone (`escalation.stranded`), which nobody is working until the next tick returns it to the pool."""
    cases = state.get("cases", {}).values()
    held: dict[str, int] = dict.fromkeys(current.analysts, 0)
    waiting = over = 0
    for case in cases:
        status = case["status"]
        if status in ("assigned", "acknowledged"):
            held[case["analyst"]] = held.get(case["analyst"], 0) + 1
        waiting += status == "waiting"
        if status in ("waiting", "assigned"):
            over += sla_start(case) + policy.ack_sla[case["severity"]] < now
        elif status == "acknowledged":
            over += stranded(Case.from_dict(case), current, now)
    utilisation = {a.id: held[a.id] / a.capacity for a in current.analysts.values()}
    return Workload(held, utilisation, waiting, over)
