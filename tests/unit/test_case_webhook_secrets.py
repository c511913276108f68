"""Each analyst's case webhooks are signed with their own secret (roster `notify_secret_file`), so
one analyst's receiver cannot forge notifications to another's; the shared secret is the fallback."""

from __future__ import annotations

import os
import time
from pathlib import Path

from scheduler import RosterWatcher
from streams.agents import case_webhooks

ANALYST = """\
  - id: {id}
    name: {id}
    capacity: 1
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Earnings: 5}}}}
    notify: http://127.0.0.1:9/{id}
    token_env: UNSET_TOKEN_{id}
"""


def write_roster(path: Path, secrets: dict[str, Path | None], bump: float) -> None:
    parts = []
    for analyst, secret in secrets.items():
        entry = ANALYST.format(id=analyst)
        parts.append(entry + (f"    notify_secret_file: {secret}\n" if secret else ""))
    path.write_text("analysts:\n" + "".join(parts))
    stamp = time.time() + bump
    os.utime(path, (stamp, stamp))


def test_an_analysts_own_secret_signs_their_webhooks_and_others_get_the_shared_one(tmp_path, monkeypatch) -> None:
    ana_secret = tmp_path / "ana.secret"
    ana_secret.write_text("ana-own-secret")
    roster = tmp_path / "roster.yaml"
    write_roster(roster, {"ana": ana_secret, "ben": None}, 0)
    watcher = RosterWatcher(roster, settle_seconds=0)
    monkeypatch.setattr(case_webhooks, "roster_watcher", lambda: watcher)
    monkeypatch.setattr(case_webhooks, "webhook_secret", lambda: b"shared-secret")
    assert case_webhooks.secret_for("ana") == b"ana-own-secret"
    assert case_webhooks.secret_for("ben") == b"shared-secret"
    assert case_webhooks.secret_for("someone-removed") == b"shared-secret"

    ben_secret = tmp_path / "ben.secret"
    ben_secret.write_text("ben-own-secret")
    write_roster(roster, {"ana": ana_secret, "ben": ben_secret}, 10)  # an edit reaches the agent
    assert case_webhooks.secret_for("ben") == b"shared-secret"  # seen, not read until it has settled
    assert case_webhooks.secret_for("ben") == b"ben-own-secret"


def test_without_any_secret_an_analyst_is_not_notified(monkeypatch) -> None:
    monkeypatch.setattr(case_webhooks, "roster_watcher", lambda: None)
    monkeypatch.setattr(case_webhooks, "webhook_secret", lambda: None)
    assert case_webhooks.secret_for("ana") is None
