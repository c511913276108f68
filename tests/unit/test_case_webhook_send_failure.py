"""A case webhook whose sender raises is dead-lettered as a failed delivery, with the error, and its
event acknowledged: the exception must not leave the agent (every worker reading the event in turn
would crash on it)."""

from __future__ import annotations

import asyncio
from unittest import mock

from alerts.delivery import DeliveryResult
from alerts.receivers import Receiver
from streams.agents import case_webhooks


def test_a_sender_that_raises_is_dead_lettered_with_its_error_and_the_event_acknowledged(monkeypatch) -> None:
    receiver = Receiver("analyst-dora", "https://hooks.example.test/dora", b"secret")
    payload = {"groupKey": "analyst-dora", "alerts": []}
    event = mock.Mock()
    dead: list[tuple[DeliveryResult, str]] = []

    async def attempt(receiver: Receiver, payload: dict) -> DeliveryResult:
        raise ValueError("no scheme in URL")

    async def dead_letter(result: DeliveryResult, what: str) -> None:
        dead.append((result, what))

    monkeypatch.setattr(case_webhooks.webhooks, "attempt", attempt)
    monkeypatch.setattr(case_webhooks.webhooks, "dead_letter", dead_letter)
    asyncio.run(case_webhooks.send(receiver, payload, event))

    [(result, what)] = dead
    assert what == "case webhook"
    assert (result.outcome, result.attempts, result.status) == ("failed", 0, None)
    assert result.last_error == "ValueError: no scheme in URL"
    assert (result.receiver, result.url, result.payload) == ("analyst-dora", "https://hooks.example.test/dora", payload)
    assert result.started_at == result.finished_at > 0
    event.ack.assert_called_once()
