"""Webhook delivery as the agents do it: one HTTP client, and deliver-then-count-or-dead-letter.

`alerts.delivery.deliver` signs, sends and retries (pure of Kafka); this module adds what a worker
does with its result: every attempt is timed, retries and the outcome are counted per receiver,
and a delivery that exhausts its retries goes to `alerts.deadletter`, acknowledged by the broker
before the caller moves on. Used by notify (anomaly alerts) and case webhooks (analysts).
"""

from __future__ import annotations

import logging
import time

import httpx

from alerts.delivery import DELIVERERS
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


async def deliver_counted(receiver: Receiver, payload: dict, what: str) -> bool:
    """Deliver `payload` to `receiver` with retries; count the outcome, and dead-letter a delivery that
    failed for good. True when delivered. `what` names the sender in the log ("notify: webhook")."""
    result = await DELIVERERS[receiver.type](client(), receiver, payload, now_fn=time.time)
    if result.attempts > 1:
        metrics.WEBHOOK_DELIVERIES.labels(receiver.name, metrics.RETRIED).inc(result.attempts - 1)
    if result.outcome == "delivered":
        metrics.WEBHOOK_DELIVERIES.labels(receiver.name, metrics.DELIVERED).inc()
        return True
    log.error("%s to %s failed after %d attempt(s): %s", what, receiver.name, result.attempts, result.last_error)
    await (await alerts_deadletter_topic.send(key=receiver.name.encode(), value=result.deadletter()))
    metrics.WEBHOOK_DELIVERIES.labels(receiver.name, metrics.DEAD_LETTERED).inc()
    return False
