"""Analysts' case-notification receivers (`analyst-<id>`) have their delivery series at 0 before their
first delivery, as the configured alert receivers do.

A series born at 1 is invisible to `increase()`: an analyst's first dead-lettered case notification
never fired FinsentryWebhookDeadLetter ("one is enough to page"). The series are created at start-up
for every analyst the roster notifies by webhook, and when a roster reload adds one, without waiting
for a case to reach them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from scheduler import RosterWatcher
from scheduler.tokens import hash_token
from streams import metrics, worker
from streams.agents import case_webhooks
from streams.app import app, settings
from streams.failures import FAILURES, TIMERS


def analyst(ident: str) -> str:
    return (f"  - id: {ident}\n    name: {ident.title()}\n    capacity: 1\n"
            f"    shifts: [\"Mon-Sun 00:00-24:00 UTC\"]\n    skills: {{topics: {{Earnings: 3}}}}\n"
            f"    notify: https://hooks.example.invalid/{ident}\n"
            f"    token_hash: {hash_token(f'{ident}-own-token-long-enough', n=16)}\n")


def series(receiver: str) -> dict[str, float | None]:
    return {outcome: REGISTRY.get_sample_value("finsentry_webhook_deliveries_total",
                                               {"receiver": receiver, "outcome": outcome})
            for outcome in metrics.WEBHOOK_OUTCOMES}


@pytest.fixture
def roster_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "roster.yaml"
    path.write_text("analysts:\n" + analyst("zephyrine"))
    watcher = RosterWatcher(path, settle_seconds=0)
    monkeypatch.setattr(case_webhooks, "roster_watcher", lambda: watcher)
    monkeypatch.setattr(case_webhooks, "webhook_secret", lambda: b"shared-case-webhook-secret")
    return path


def test_start_up_creates_each_notified_analysts_series_at_zero(roster_file, monkeypatch):
    monkeypatch.setattr(worker, "ensure_topics", lambda *args, **kwargs: "not-tansu")
    worker.prepare(app, settings)
    assert series("analyst-zephyrine") == dict.fromkeys(metrics.WEBHOOK_OUTCOMES, 0.0)


def test_an_analyst_without_a_secret_to_sign_with_gets_no_series(roster_file, monkeypatch):
    # no shared secret and no notify_secret_file: never notified by webhook (streams/agents/case_webhooks.py)
    monkeypatch.setattr(case_webhooks, "webhook_secret", lambda: None)
    roster_file.write_text(roster_file.read_text() + analyst("corvina"))
    case_webhooks.poll_roster()  # the edit seen; read at the next poll, once it has settled
    case_webhooks.target_for("zephyrine")
    assert "corvina" in case_webhooks.roster_watcher().roster.analysts  # reloaded
    assert set(series("analyst-corvina").values()) == {None}


def test_a_roster_reload_that_adds_an_analyst_creates_their_series_before_any_case(roster_file, monkeypatch):
    retried = []
    monkeypatch.setattr(case_webhooks, "retry_resolves", lambda now: retried.append(now) or 0)
    assert set(series("analyst-thessaly").values()) == {None}
    roster_file.write_text(roster_file.read_text() + analyst("thessaly"))
    monkeypatch.setattr("streams.failures.os.kill", lambda *args: None)  # a crash is asserted, not acted on
    for _ in range(2):  # the timer, with no case event at all: its first round sees the edit, its next reads it
        asyncio.run(TIMERS["case-webhooks-retry"]())
    assert retried and "case-webhooks-retry" not in FAILURES.crashed, FAILURES.crashed
    assert series("analyst-thessaly") == dict.fromkeys(metrics.WEBHOOK_OUTCOMES, 0.0)


def test_a_reload_seen_while_handling_a_case_event_creates_them_too(roster_file):
    roster_file.write_text(roster_file.read_text() + analyst("wystan"))
    case_webhooks.poll_roster()  # the edit seen; read at the next poll, once it has settled
    assert case_webhooks.target_for("zephyrine") == "https://hooks.example.invalid/zephyrine"
    assert series("analyst-wystan") == dict.fromkeys(metrics.WEBHOOK_OUTCOMES, 0.0)
