"""The knobs of the scheduler, validated once so the engine can trust them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Literal, get_args

from alerts.records import SEVERITIES, Severity  # ascending; the monitor's vocabulary

# The assignment policies by name: the vocabulary of SchedulerPolicy.assignment and of the
# FINSENTRY_SCHEDULER_ASSIGNMENT setting; scheduler/policies.py POLICIES has one entry for each.
PolicyName = Literal["optimal", "round_robin", "least_loaded"]
ASSIGNMENTS: tuple[PolicyName, ...] = get_args(PolicyName)


def _frozen(d: Mapping) -> Mapping:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class Weights:
    """Objective weights of the optimiser (see docs/SCHEDULER.md for the model).

    Everything is in units of priority: an assignment is worth the case's priority-weighted waiting
    `priority * min(1 + waited / wait_unit, rescue)`; mismatch, load and avoid costs are deducted from it.
    """

    mismatch: float = 0.1  # per skill level the analyst is below the severity's target level
    balance: float = 0.05  # times the analyst's load ratio after taking the case: breaks ties
    avoid: float = 0.25  # for handing a case back to an analyst it was escalated away from
    stale: float = 0.25  # for an analyst sitting on an unacknowledged case: they are likely away
    # Multiplier on the value of a case whose ack SLA has not passed yet, so cases that can still make
    # it are served before those that cannot. It also bounds the other growth terms: waiting counts
    # for at most this factor, and the top severity escalates up to it (SchedulerPolicy.escalation_cap),
    # so 256 = 2**8 bounds how long a breached critical case yields: 8 windows (80 min).
    rescue: float = 256.0
    stale_after: timedelta = timedelta(minutes=5)
    wait_unit: timedelta = timedelta(minutes=10)

    def max_deduction(self, max_mismatch: int) -> float:
        return self.mismatch * max_mismatch + self.balance + self.avoid + self.stale


@dataclass(frozen=True)
class SchedulerPolicy:
    severity_weight: Mapping[str, float] = field(
        default_factory=lambda: _frozen({"info": 1.0, "warning": 4.0, "critical": 16.0})
    )
    # Exact scope ("topic:Earnings") or scope kind ("ticker") -> multiplier; unlisted scopes get 1.
    scope_weight: Mapping[str, float] = field(default_factory=lambda: _frozen({}))
    ack_sla: Mapping[str, timedelta] = field(
        default_factory=lambda: _frozen(
            {"info": timedelta(hours=4), "warning": timedelta(minutes=30), "critical": timedelta(minutes=10)}
        )
    )
    resolve_sla: Mapping[str, timedelta] = field(
        default_factory=lambda: _frozen(
            {"info": timedelta(hours=24), "warning": timedelta(hours=4), "critical": timedelta(hours=1)}
        )
    )
    # The skill level a severity deserves; analysts below it still qualify but cost `Weights.mismatch`.
    target_level: Mapping[str, int] = field(default_factory=lambda: _frozen({"info": 1, "warning": 3, "critical": 4}))
    # Severities strictly below this one are resolved by the machine; None sends everything to people.
    auto_resolve_below: Severity | None = "warning"
    routine_kinds: frozenset[str] = frozenset()
    escalation_factor: float = 2.0  # priority multiplier per escalation, up to `escalation_cap`
    # Closed cases are kept this long (for the API and replays of their anomaly), then dropped; and
    # at most `retain_closed_count` of each kind (resolved by an analyst, closed unattended, the machine's
    # routine closes), the most recently closed, so a burst of closures cannot grow the state without
    # bound (each case is its own record: streams/case_state.py) nor push out a recent close of another kind.
    retain_closed: timedelta = timedelta(days=2)
    retain_closed_count: int = 1000
    # An assigned case still unacknowledged after this share of its ack SLA is offered to the other
    # free analysts (every policy); None waits for the SLA breach before moving it.
    handoff_after: float | None = 0.5
    assignment: PolicyName = "optimal"  # the optimiser, or a baseline (ASSIGNMENTS)
    weights: Weights = Weights()
    # Severity -> how many escalations raise its priority (derived in __post_init__; see there).
    escalation_cap: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("severity_weight", "ack_sla", "resolve_sla", "target_level"):
            table = getattr(self, name)
            if set(table) != set(SEVERITIES):
                raise ValueError(f"SchedulerPolicy.{name} must have exactly the keys {SEVERITIES}, got {sorted(table)}")
            object.__setattr__(self, name, _frozen(table))
        object.__setattr__(self, "scope_weight", _frozen(self.scope_weight))
        if self.auto_resolve_below is not None and self.auto_resolve_below not in SEVERITIES:
            raise ValueError(f"auto_resolve_below must be one of {SEVERITIES} or None, got {self.auto_resolve_below!r}")
        if self.assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {self.assignment!r}")
        if self.handoff_after is not None and not 0 < self.handoff_after < 1:
            raise ValueError(f"handoff_after must be in (0, 1) or None, got {self.handoff_after!r}")
        if self.weights.rescue < 1:
            raise ValueError("Weights.rescue must be >= 1: a case that can still make its SLA is never worth less")
        if self.escalation_factor < 1:
            raise ValueError("escalation_factor must be >= 1: escalation never lowers priority")
        if any(w <= 0 for w in [*self.severity_weight.values(), *self.scope_weight.values()]):
            raise ValueError("severity and scope weights must be positive")
        weights = [self.severity_weight[s] for s in SEVERITIES]
        if any(low >= high for low, high in itertools.pairwise(weights)):
            raise ValueError(f"severity_weight must rise with severity {SEVERITIES}, got {weights}")
        object.__setattr__(self, "escalation_cap", _frozen(self._escalation_caps()))
        # Keep the optimiser work-conserving: taking a case must always beat leaving it waiting.
        lowest = min(self.severity_weight.values()) * min([1.0, *self.scope_weight.values()])
        if self.weights.max_deduction(max(self.target_level.values()) - 1) >= lowest:
            raise ValueError(
                f"Weights deduct up to {self.weights.max_deduction(max(self.target_level.values()) - 1):.3g} "
                f"from a case worth {lowest:.3g}: lower them so a free analyst never leaves a case waiting"
            )

    def _escalation_caps(self) -> dict[str, int]:
        """How many escalations count, per severity. Uncapped, a case nobody could take overnight grew
        past every fresher, more severe case (a warning reached 131072, a fresh critical is 16), washed
        the optimiser's skill and load costs out in float rounding, and overflowed at 1024 escalations.
        So a severity below the top climbs to just under the next severity's weight (a critical always
        outranks a warning that merely waited), and the top one to `Weights.rescue`, where a case that
        missed its SLA is worth a fresh one again (the optimiser's anti-starvation bound)."""
        factor = self.escalation_factor
        if factor == 1:
            return dict.fromkeys(SEVERITIES, 0)
        caps = {}
        for severity, higher in itertools.pairwise(SEVERITIES):
            low, high = self.severity_weight[severity], self.severity_weight[higher]
            cap = math.floor(math.log(high / low, factor))
            while cap > 0 and low * factor**cap >= high:  # strictly below, whatever the float rounding
                cap -= 1
            if cap == 0:
                raise ValueError(
                    f"escalation_factor {factor} lifts a {severity} case to a {higher} one in one escalation: "
                    f"keep it below severity_weight {higher}/{severity} = {high / low:.3g}"
                )
            caps[severity] = cap
        caps[SEVERITIES[-1]] = max(1, math.ceil(math.log(self.weights.rescue, factor)))
        return caps

    def priority(self, severity: str, scope: str, escalations: int) -> float:
        """Severity x scope weight x escalation_factor per escalation, the escalations counted up to
        `escalation_cap[severity]`: bounded, so a severity order is kept and no escalation count overflows."""
        kind = scope.partition(":")[0]
        scope_factor = self.scope_weight.get(scope, self.scope_weight.get(kind, 1.0))
        boost = self.escalation_factor ** min(escalations, self.escalation_cap[severity])
        return self.severity_weight[severity] * scope_factor * boost

    def machine_reason(self, severity: str, kind: str) -> str | None:
        """Why the machine may close a case on its own, or None if a person must see it."""
        if kind in self.routine_kinds:
            return f"kind {kind!r} is configured as routine"
        if self.auto_resolve_below is not None and SEVERITIES.index(severity) < SEVERITIES.index(
            self.auto_resolve_below
        ):
            return f"severity {severity} is below the auto-resolve threshold {self.auto_resolve_below}"
        return None
