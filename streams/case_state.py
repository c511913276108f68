"""The scheduler's state as the worker holds it: the roster, the policy, the state table, who the
writer is, and the outcomes the analyst API waits for.

Shared by the scheduler agent (the single writer), the analyst API and the anomaly pages (readers).
Every input that can change case state passes through the single partition of `scheduler.inbox`;
the worker that owns it keeps the `Scheduler` state in `scheduler-state` as scheduler/storage.py
lays it out: one record per case under `case:<case id>`, and the counters and the journal of the
last input under `scheduler`, so no record grows with the number of cases.
"""

from __future__ import annotations

import asyncio
import copy
from functools import cache
from typing import Any

import faust

from scheduler import ActionError, Roster, RosterError, RosterWatcher, Scheduler, SchedulerPolicy, storage
from scheduler.engine import STATE_VERSION
from streams.app import INBOX_TOPIC, app, settings
from streams.ownership import owns_recovered
from streams.tables import DurableTable
from streams.usage import config_exit

STATE_KEY = "scheduler"
CASE_PREFIX = "case:"

state_table: DurableTable = app.Table("scheduler-state", default=None, partitions=1, use_partitioner=True,
                                      schema=faust.Schema(key_serializer="json", value_serializer="json"))

POLICY = SchedulerPolicy(
    assignment=settings.scheduler_assignment,
    retain_closed_count=settings.scheduler_retain_closed_count,
    auto_resolve_below=None if settings.scheduler_auto_resolve_below == "none" else settings.scheduler_auto_resolve_below,
)
NO_ROSTER = Roster(analysts={}, sectors={})


@cache
def roster_watcher() -> RosterWatcher | None:
    """The roster file (FINSENTRY_ROSTER), read once: when the worker starts (streams/worker.py
    `configure`), not at import. A bad file stops start-up with one line."""
    if settings.roster is None:
        return None
    try:
        return RosterWatcher(settings.roster)
    except RosterError as exc:  # no earlier roster to keep: refuse to start, like any bad setting
        raise config_exit(f"roster (FINSENTRY_ROSTER): {exc}") from None


def roster() -> Roster:
    """The roster in force: the last good version of the file (a bad edit keeps the old one)."""
    watcher = roster_watcher()
    return watcher.roster if watcher is not None else NO_ROSTER


def is_owner() -> bool:
    """True on the one worker that owns the inbox and has its state table fully recovered."""
    return owns_recovered(INBOX_TOPIC)


def stored_head() -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the head record without its journal, the journal of an input not yet finished, or None)."""
    head = dict(state_table.get(STATE_KEY) or {"version": STATE_VERSION})
    if "scheduler" in head:  # the earlier layout, everything in this one record: finish it as a journal
        head, records = storage.split(head["scheduler"])
        return head, {"cases": records, "outbox": state_table[STATE_KEY]["outbox"]}
    return head, head.pop("journal", None)


def stored_cases() -> dict[str, Any]:
    """Every case record in the table, by case id."""
    return {key[len(CASE_PREFIX):]: value for key, value in state_table.items()
            if isinstance(key, str) and key.startswith(CASE_PREFIX) and value is not None}


def load() -> Scheduler:
    """A scheduler over a private copy of the stored state (with any unfinished journal applied): the
    engine mutates lists in place, and the table's values must change only through the writer."""
    head, journal = stored_head()
    state = storage.join(head, storage.journalled(stored_cases(), journal))
    return Scheduler(roster(), POLICY, copy.deepcopy(state))


# ---- outcomes for the HTTP API (same process: the API answers only on the owner) -------------------

_pending: dict[str, asyncio.Future[list[dict[str, Any]]]] = {}


def expect(action_id: str) -> asyncio.Future[list[dict[str, Any]]]:
    """A future the writer settles with the action's events, or its ActionError."""
    future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
    _pending[action_id] = future
    return future


def forget(action_id: str) -> None:
    _pending.pop(action_id, None)


def settle(action_id: Any, result: list[dict[str, Any]] | ActionError) -> None:
    future = _pending.pop(action_id, None) if isinstance(action_id, str) else None
    if future is None or future.done():
        return
    if isinstance(result, ActionError):
        future.set_exception(result)
    else:
        future.set_result(result)
