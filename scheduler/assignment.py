"""The contract every assignment policy (optimiser and baselines) implements.

Policies see only what they may decide on: waiting cases with the analysts already qualified for
them, and the analysts who are on shift with free capacity. Shift and skill filtering is the
engine's job, so no policy can break those constraints, and all policies are compared fairly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WaitingCase:
    case_id: str
    seq: int  # arrival order
    priority: float
    age_s: float  # since the case was created: a bounced case keeps the waiting it already did
    levels: Mapping[str, int]  # analyst id -> skill level, only qualified analysts who are free now
    target_level: int
    avoid: frozenset[str]  # analysts to pass over if anyone else qualifies
    # Seconds left until the acknowledge SLA (counted from creation) is breached; <= 0 once it is
    # (the default, for callers without deadlines, which leaves the plain priority objective).
    slack_s: float = 0.0


@dataclass(frozen=True)
class FreeAnalyst:
    analyst_id: str
    load: int  # cases held now
    capacity: int
    last_assigned: int  # assignment counter at this analyst's last assignment; 0 = never
    stale: bool  # holds a case unacknowledged for longer than Weights.stale_after: probably away

    @property
    def free(self) -> int:
        return self.capacity - self.load


Assignment = tuple[str, str]  # (case_id, analyst_id)


class Assign(Protocol):
    def __call__(self, waiting: Sequence[WaitingCase], free: Sequence[FreeAnalyst]) -> list[Assignment]: ...
