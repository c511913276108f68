"""Routes anomalies to analysts as cases: capacity, skills, shifts, SLAs, and the machine/human split.

Plain Python (numpy/scipy only): the Faust agent in `streams/` feeds `Scheduler` and publishes
what it returns.

The engine, which needs scipy, loads on first use of `Scheduler` or `ActionError` (PEP 562), so
importing `scheduler.config` (the policy vocabulary the worker's settings are checked against)
stays cheap for the command-line tools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cases import AnomalyError, Status
from .config import SEVERITIES, SchedulerPolicy, Weights
from .roster import Analyst, Operator, Roster, RosterError, RosterWatcher, Shift, load_roster, parse_roster

__all__ = [
    "SEVERITIES",
    "ActionError",
    "Analyst",
    "AnomalyError",
    "Operator",
    "Roster",
    "RosterError",
    "RosterWatcher",
    "Scheduler",
    "SchedulerPolicy",
    "Shift",
    "Status",
    "Weights",
    "load_roster",
    "parse_roster",
]

if TYPE_CHECKING:
    from .engine import ActionError, Scheduler


def __getattr__(name: str) -> object:
    if name in ("ActionError", "Scheduler"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
