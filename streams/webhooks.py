"""Webhook delivery as the agents do it: one HTTP client, and deliver-then-count-or-dead-letter.

`alerts.delivery.deliver` signs, sends and retries (pure of Kafka); this module adds what a worker
does with its result: every attempt is timed, retries and the outcome are counted per receiver,
and a delivery that failed for good goes to `alerts.deadletter`, acknowledged by the broker before
the caller moves on. Used by notify (anomaly alerts, which keeps a failed notification in its outbox
for another round: alerts/outbox.py) and case webhooks (analysts). Both limit what one receiver may
hold: `PER_RECEIVER` delivery slots (notify's outbox counts them itself; `ReceiverSlots` for senders
without one), so a receiver that times out cannot hold up another's notifications.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from alerts.delivery import DELIVERERS, DeliveryResult
from alerts.outbox import PER_RECEIVER
from alerts.receivers import Receiver
from streams import metrics
from streams.app import alerts_deadletter_topic

log = logging.getLogger(__name__)


class TimedTransport(httpx.AsyncHTTPTransport):
    """Times every webhook HTTP request, retries included, whatever its outcome."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return await super().handle_async_request(request)
        finally:
            metrics.WEBHOOK_SECONDS.observe(time.perf_counter() - started)


_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    """The worker's one webhook client (and Alertmanager's), created on first use inside the loop."""
    global _client
    if _client is None:
        _client = httpx.AsyncClient(transport=TimedTransport())
    return _client


class ReceiverSlots:
    """Delivery slots: at most `limit` deliveries at once in all, and `per_receiver` to any one receiver.

    A delivery waits for its receiver's slot before it takes one of all, so deliveries to a receiver
    that times out (each holding its slot up to the receiver's `max_elapsed`) hold at most
    `per_receiver` of the shared ones, and another receiver's are not held up behind them.
    """

    def __init__(self, limit: int, per_receiver: int = PER_RECEIVER) -> None:
        self._all = asyncio.Semaphore(limit)
        self.per_receiver = per_receiver
        self._each: dict[str, tuple[asyncio.Semaphore, int]] = {}  # receiver -> (its slots, users): none idle

    @asynccontextmanager
    async def hold(self, receiver: str) -> AsyncIterator[None]:
        slots, users = self._each.get(receiver) or (asyncio.Semaphore(self.per_receiver), 0)
        self._each[receiver] = (slots, users + 1)
        try:
            async with slots, self._all:
                yield
        finally:
            slots, users = self._each[receiver]
            if users > 1:
                self._each[receiver] = (slots, users - 1)
            else:
                del self._each[receiver]


async def attempt(receiver: Receiver, payload: dict, notification_id: str | None = None) -> DeliveryResult:
    """One delivery round of `payload` to `receiver` (its retries within its budget), counted:
    attempts beyond the first as `retried`, success as `delivered`. The caller decides what a failure
    means: `dead_letter` it, or try again later."""
    result = await DELIVERERS[receiver.type](client(), receiver, payload, now_fn=time.time,
                                             notification_id=notification_id)
    if result.attempts > 1:
        metrics.WEBHOOK_DELIVERIES.labels(receiver.name, metrics.RETRIED).inc(result.attempts - 1)
    if result.outcome == "delivered":
        metrics.WEBHOOK_DELIVERIES.labels(receiver.name, metrics.DELIVERED).inc()
    return result


async def dead_letter(result: DeliveryResult, what: str) -> None:
    """Write a failed delivery to `alerts.deadletter`, acknowledged by the broker, and count it.
    `what` names the sender in the log ("notify: webhook")."""
    log.error("%s to %s failed for good after %d attempt(s): %s", what, result.receiver, result.attempts,
              result.last_error)
    await (await alerts_deadletter_topic.send(key=result.receiver.encode(), value=result.deadletter()))
    metrics.WEBHOOK_DELIVERIES.labels(result.receiver, metrics.DEAD_LETTERED).inc()
