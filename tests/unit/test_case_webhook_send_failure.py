"""A case webhook whose sender raises is dead-lettered as a failed delivery, with the error, and its
event acknowledged: the exception must not leave the agent (every worker reading the event in turn
would crash on it)."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

from alerts.delivery import DeliveryResult
from alerts.receivers import Receiver
from streams import webhooks
from streams.agents import case_webhooks


class Table(dict):
    async def written(self) -> None:
        return None


def test_a_sender_that_raises_is_dead_lettered_with_its_error_and_the_event_acknowledged(monkeypatch) -> None:
    dead: list[tuple[DeliveryResult, str]] = []
    acked: list[int] = []

    async def attempt(receiver: Receiver, payload: dict) -> DeliveryResult:
        raise ValueError("no scheme in URL")

    async def dead_letter(result: DeliveryResult, what: str) -> None:
        dead.append((result, what))

    monkeypatch.setattr(case_webhooks.webhooks, "attempt", attempt)
    monkeypatch.setattr(case_webhooks.webhooks, "dead_letter", dead_letter)
    for name, value in {"alerts_table": Table(), "_slots": webhooks.ReceiverSlots(case_webhooks.MAX_IN_FLIGHT),
                        "_lanes": case_webhooks.Lanes(), "_planned": {},
                        "_pending": Counter(), "_waiting": Counter(), "_tasks": set(), "secret_for": lambda who: b"secret"}.items():
        monkeypatch.setattr(case_webhooks, name, value)
    value = {"event": "assigned", "case_id": "case-d1", "anomaly_id": "d1", "at": "2024-03-04T10:00:00+00:00",
             "severity": "warning", "scope": "topic:Earnings", "analyst": "dora",
             "notify": {"analyst": "dora", "target": "hooks.example.test/dora"}}
    event = SimpleNamespace(value=value, message=SimpleNamespace(value=b"", key=b"case-d1", topic="cases.events",
                                                                 partition=0, offset=7), ack=lambda: acked.append(7))

    async def run() -> None:
        await case_webhooks.handle(event)
        while case_webhooks._tasks:  # the delivery and the acknowledgement, in the background
            await asyncio.wait(set(case_webhooks._tasks))

    asyncio.run(run())
    [(result, what)] = dead
    assert what == "case webhook"
    assert (result.outcome, result.attempts, result.status) == ("failed", 0, None)
    assert result.last_error == "ValueError: no scheme in URL"
    assert (result.receiver, result.url) == ("analyst-dora", "hooks.example.test/dora")
    assert result.payload["alerts"][0]["labels"]["case_id"] == "case-d1"
    assert result.started_at == result.finished_at > 0
    assert acked == [7]
