"""Which cases have outrun their SLA. Pure, so the rules can be read and tested on their own."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from .cases import Case, Status
from .roster import Roster


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


def stranded(case: Case, roster: Roster, now: datetime) -> bool:
    """An acknowledged case past its resolve SLA whose holder is off shift (or off the roster).

    The resolve breach is announced once, to the holder; if they have gone home, nobody works it until
    their next shift (a Friday-evening critical waited the weekend). Such a case goes back to the pool.
    """
    if case.status is not Status.ACKNOWLEDGED or now < case.resolve_due:
        return False
    holder = roster.analysts.get(case.analyst or "")
    return holder is None or not holder.on_shift(now)
