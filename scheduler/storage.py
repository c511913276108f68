"""How the scheduler's state is laid out in a key-value table: one record per case, plus one small
record for the rest, so no record grows with the number of cases.

A single record for everything reached Kafka's 1 MiB record limit with a few dozen large closed
cases, and the worker could then neither save nor restart. Here each case is a record with the
action ids that named it (kept for idempotent replays, the last `MAX_ACTION_IDS`), and the head
record holds the counters and a journal: the case records one input changed, and the events it
produced. The journal is the commit point (one record, written first), so a writer that dies while
writing case records or sending events leaves the journal for the next writer to finish, as the
single record did before.

Plain dicts in and out (JSON-serialisable); the streams package decides the keys' table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ACTION_IDS = 200  # per case: replays come soon after the original, not 200 actions later


def split(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`Scheduler.to_dict()` -> (head without cases or action ids, {case_id: case record})."""
    named: dict[str, list[str]] = {}
    for action_id, case_id in state.get("actions", {}).items():
        named.setdefault(case_id, []).append(action_id)
    head = {k: v for k, v in state.items() if k not in ("cases", "actions")}
    records = {cid: {"case": case, "actions": named.get(cid, [])[-MAX_ACTION_IDS:]}
               for cid, case in state.get("cases", {}).items()}
    return head, records


def join(head: Mapping[str, Any], records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The inverse of `split`: a state `Scheduler` reads."""
    state = {k: v for k, v in head.items() if k != "journal"}
    state["cases"] = {cid: r["case"] for cid, r in records.items()}
    state["actions"] = {aid: cid for cid, r in records.items() for aid in r["actions"]}
    return state


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The case records to write: new or changed ones, and None for each case that is gone."""
    out: dict[str, Any] = {cid: record for cid, record in new.items() if old.get(cid) != record}
    out.update({cid: None for cid in old if cid not in new})
    return out


def journalled(records: Mapping[str, Any], journal: Mapping[str, Any] | None) -> dict[str, Any]:
    """Case records as they are once `journal` is applied (it may not be yet, after a crash)."""
    if not journal:
        return dict(records)
    out = {**records, **journal["cases"]}
    return {cid: r for cid, r in out.items() if r is not None}
