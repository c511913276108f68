"""Routes anomalies to analysts as cases: capacity, skills, shifts, SLAs, and the machine/human split.

Plain Python (numpy/scipy only): the Faust agent in `streams/` feeds `Scheduler` and publishes
what it returns.
"""

from .cases import AnomalyError, Status
from .config import SEVERITIES, SchedulerPolicy, Weights
from .engine import ActionError, Scheduler
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
