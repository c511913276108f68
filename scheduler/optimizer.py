"""The assignment optimiser: a min-cost assignment of waiting cases to capacity slots.

Each free unit of an analyst's capacity is a column (a "slot"); each case may take at most one
slot or stay waiting (a zero-cost dummy column). A case that can still be acknowledged within its
SLA is worth `Weights.rescue` times one that has already missed it: under overload, serving a
breached case first only lets a fresh one breach too. Waiting counts for at most that factor, so a
case that missed its SLA, however long it waited, is never worth more than a fresh case of a higher
severity (whose weight its capped escalations stay below: SchedulerPolicy.escalation_cap). The k-th
slot of an analyst costs more than the (k-1)-th, which is what makes equal cases spread across
analysts instead of piling onto the first.
`scipy.optimize.linear_sum_assignment` solves it exactly; the model is in docs/SCHEDULER.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .assignment import Assignment, FreeAnalyst, WaitingCase
from .config import Weights

_FORBIDDEN = 1e12  # unqualified pairs; a dummy column (cost 0) always beats it


def optimal(waiting: Sequence[WaitingCase], free: Sequence[FreeAnalyst], weights: Weights) -> list[Assignment]:
    slots = [(analyst, k) for analyst in free for k in range(analyst.free)]
    if not waiting or not slots:
        return []
    cost = np.zeros((len(waiting), len(slots) + len(waiting)))
    cost[:, : len(slots)] = _FORBIDDEN
    wait_unit = weights.wait_unit.total_seconds()
    for i, case in enumerate(waiting):
        waited = min(1.0 + case.age_s / wait_unit, weights.rescue)
        value = case.priority * waited * (weights.rescue if case.slack_s > 0 else 1.0)
        for j, (analyst, k) in enumerate(slots):
            level = case.levels.get(analyst.analyst_id, 0)
            if level <= 0:
                continue
            cost[i, j] = (
                -value
                + weights.mismatch * max(0, case.target_level - level)
                + weights.balance * (analyst.load + k + 1) / analyst.capacity
                + weights.avoid * (analyst.analyst_id in case.avoid)
                + weights.stale * analyst.stale
            )
    rows, cols = linear_sum_assignment(cost)
    return [(waiting[r].case_id, slots[c][0].analyst_id) for r, c in zip(rows, cols) if c < len(slots)]
