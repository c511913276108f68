"""The assignment optimiser: a min-cost assignment of waiting cases to capacity slots.

Each free unit of an analyst's capacity is a column (a "slot"); each case may take at most one
slot or stay waiting (a zero-cost dummy column). A case that can still be acknowledged within its
SLA is worth `Weights.rescue` times one that has already missed it: under overload, serving a
breached case first only lets a fresh one breach too. Waiting counts for at most that factor, so a
case that missed its SLA, however long it waited, is never worth more than a fresh case of a higher
severity (whose weight its capped escalations stay below: SchedulerPolicy.escalation_cap). The k-th
slot of an analyst costs more than the (k-1)-th, which is what makes equal cases spread across
analysts instead of piling onto the first. Among choices that are otherwise equally good, the analyst
assigned least recently goes first (`_recency`): without it, cases arriving one at a time, each
finding every analyst idle, all went to the first analyst in the roster.
`scipy.optimize.linear_sum_assignment` solves it exactly; the model is in docs/SCHEDULER.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .assignment import Assignment, FreeAnalyst, WaitingCase
from .config import Weights

_FORBIDDEN = 1e12  # unqualified pairs; a dummy column (cost 0) always beats it


def _recency(free: Sequence[FreeAnalyst], rows: int, weights: Weights) -> dict[str, float]:
    """A bonus per analyst, largest for the least recently assigned (never assigned first, then roster
    order), deducted from the cost of each of their slots: the tie-breaker.

    It only decides ties: all the bonuses one solution can collect (one per case served) add up to less
    than one step of the load cost, `balance / capacity**2` at the largest capacity, the smallest amount
    by which two analysts' load costs for a case can differ. Deducted, never added, so it cannot make
    leaving a case waiting cheaper than serving it (SchedulerPolicy keeps the optimiser work-conserving).
    """
    order = sorted(range(len(free)), key=lambda j: free[j].last_assigned)
    widest = max(a.capacity for a in free)
    step = weights.balance / (widest * widest * len(free) * (rows + 1))
    return {free[j].analyst_id: step * (len(free) - 1 - rank) for rank, j in enumerate(order)}


def optimal(waiting: Sequence[WaitingCase], free: Sequence[FreeAnalyst], weights: Weights) -> list[Assignment]:
    slots = [(analyst, k) for analyst in free for k in range(analyst.free)]
    if not waiting or not slots:
        return []
    bonus = _recency(free, min(len(waiting), len(slots)), weights)
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
                - bonus[analyst.analyst_id]
            )
    rows, cols = linear_sum_assignment(cost)
    return [(waiting[r].case_id, slots[c][0].analyst_id) for r, c in zip(rows, cols) if c < len(slots)]
