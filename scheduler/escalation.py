"""Which cases have outrun their SLA. Pure, so the rule can be read and tested on its own."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from .cases import Case, Status


class Breach(StrEnum):
    ACK = "ack"  # nobody acknowledged it in time: raise priority, take it off its holder
    RESOLVE = "resolve"  # acknowledged but not resolved in time: raise priority, tell the holder once


def overdue(cases: Iterable[Case], now: datetime) -> list[tuple[Case, Breach]]:
    """Breaches as of `now`, most urgent first so escalations are emitted in a useful order."""
    found = []
    for case in cases:
        if case.status in (Status.WAITING, Status.ASSIGNED) and now >= case.ack_due:
            found.append((case, Breach.ACK))
        elif case.status is Status.ACKNOWLEDGED and not case.resolve_escalated and now >= case.resolve_due:
            found.append((case, Breach.RESOLVE))
    return sorted(found, key=lambda cb: (-cb[0].priority, cb[0].seq))
