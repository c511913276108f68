"""Baseline assignment policies, kept for comparison with the optimiser, and the policy registry.

Both baselines take cases first-come first-served and commit greedily, one case at a time: that is
what they are baselines for. They honour the same hard constraints as the optimiser because the
engine only offers them qualified, on-shift analysts with free capacity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from .assignment import Assign, Assignment, FreeAnalyst, WaitingCase
from .config import ASSIGNMENTS, PolicyName, SchedulerPolicy
from .optimizer import optimal

# (analyst, its load so far in this round, its last-assigned counter so far) -> sort key; lowest wins.
_Preference = Callable[[FreeAnalyst, int, int], tuple]


def _greedy(waiting: Sequence[WaitingCase], free: Sequence[FreeAnalyst], prefer: _Preference) -> list[Assignment]:
    load = {a.analyst_id: a.load for a in free}
    last = {a.analyst_id: a.last_assigned for a in free}
    counter = max(last.values(), default=0)
    out: list[Assignment] = []
    for case in sorted(waiting, key=lambda c: c.seq):
        qualified = [a for a in free if a.analyst_id in case.levels and load[a.analyst_id] < a.capacity]
        candidates = [a for a in qualified if a.analyst_id not in case.avoid] or qualified
        if not candidates:
            continue
        pick = min(candidates, key=lambda a: prefer(a, load[a.analyst_id], last[a.analyst_id]))
        counter += 1
        load[pick.analyst_id] += 1
        last[pick.analyst_id] = counter
        out.append((case.case_id, pick.analyst_id))
    return out


def round_robin(waiting: Sequence[WaitingCase], free: Sequence[FreeAnalyst]) -> list[Assignment]:
    """The qualified analyst whose last assignment is oldest goes next."""
    return _greedy(waiting, free, lambda a, load, last: (last,))


def least_loaded(waiting: Sequence[WaitingCase], free: Sequence[FreeAnalyst]) -> list[Assignment]:
    """The qualified analyst with the lowest load ratio goes next; among equal ratios the one assigned
    least recently (roster order broke ties before, so with cases arriving one at a time to an idle
    team the first analyst in the file took them all)."""
    return _greedy(waiting, free, lambda a, load, last: (load / a.capacity, last))


# Every assignment policy by its name (scheduler/config.py PolicyName, which the setting accepts):
# each takes the policy's knobs and returns an `Assign` (scheduler/assignment.py).
POLICIES: dict[PolicyName, Callable[[SchedulerPolicy], Assign]] = {
    "optimal": lambda policy: partial(optimal, weights=policy.weights),
    "round_robin": lambda policy: round_robin,
    "least_loaded": lambda policy: least_loaded,
}
assert set(POLICIES) == set(ASSIGNMENTS), "scheduler/config.py ASSIGNMENTS names every policy here"


def assigner(policy: SchedulerPolicy) -> Assign:
    return POLICIES[policy.assignment](policy)
