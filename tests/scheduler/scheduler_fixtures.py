"""Builders shared by the scheduler tests (a module, not conftest, so tests import it explicitly)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler import Roster, RosterWatcher, parse_roster
from scheduler.tokens import hash_token

# Monday 2024-03-04 10:00 UTC: 10:00 in London (GMT), 05:00 in New York.
MONDAY_10 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
TOKEN_HASH = hash_token("test", n=16)  # a cheap scrypt cost keeps the tests fast; the format is the same

ROSTER_YAML = f"""\
sectors:
  Technology: [AAPL, MSFT]
analysts:
  - id: alice
    name: Alice
    capacity: 2
    shifts: ["Mon-Fri 08:00-17:00 Europe/London"]
    skills:
      topics: {{Earnings: 5, Macro: 2}}
      sectors: {{Technology: 4}}
    notify: https://hooks.example.com/alice
    token_hash: {TOKEN_HASH}
  - id: bob
    name: Bob
    capacity: 2
    shifts: ["Mon-Fri 08:00-17:00 Europe/London"]
    skills:
      topics: {{Earnings: 2, Macro: 5}}
    notify: https://hooks.example.com/bob
    token_env: FINSENTRY_TOKEN_BOB
  - id: nina
    name: Nina
    capacity: 3
    shifts: ["Mon-Fri 09:00-18:00 America/New_York"]
    skills:
      topics: {{Earnings: 4}}
      tickers: {{AAPL: 5}}
    notify: https://hooks.example.com/nina
    token_file: /run/secrets/nina
"""


def roster(text: str = ROSTER_YAML) -> Roster:
    return parse_roster(text, "roster.yaml")


def anomaly(anomaly_id: str, scope: str = "topic:Earnings", severity: str = "warning", **extra: Any) -> dict:
    return {
        "anomaly_id": anomaly_id,
        "kind": "surge",
        "scope": scope,
        "severity": severity,
        "score": 4.2,
        "sample_ids": [f"{anomaly_id}-n1"],
        "headlines": [f"headline for {anomaly_id}"],
        **extra,
    }


def action(kind: str, case_id: str, analyst: str, action_id: str, **extra: Any) -> dict:
    return {"action": kind, "case_id": case_id, "analyst": analyst, "action_id": action_id, **extra}


def write_roster(path: Path, text: str, bump: float) -> None:
    """Write a roster file with its mtime `bump` seconds on, so filesystems with coarse mtimes still see a change."""
    path.write_text(text)
    stamp = time.time() + bump
    os.utime(path, (stamp, stamp))


def settled(watcher: RosterWatcher) -> Roster | None:
    """Poll twice, as the scheduler's ticks do: the first poll sees the edit and waits for the file to
    settle (scheduler/roster.py), the second judges it."""
    assert watcher.poll() is None, "a change was read before the file had settled"
    return watcher.poll()
