"""Delivery against a real aiohttp receiver on 127.0.0.1 (no mocked HTTP)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from email.utils import formatdate

import httpx
from alerts_http_receiver import Receiver as HttpReceiver
from alerts_http_receiver import free_port

from alerts.delivery import DeliveryResult, deliver, retry_after_seconds
from alerts.dispatch import Dispatcher
from alerts.engine import AnomalyEvent
from alerts.payload import alert_from_event
from alerts.receivers import Receiver

SECRET = b"shared-secret"


def config(url: str, **overrides) -> Receiver:
    # Generous request timeout and give-up time: on a busy machine a local answer can take seconds,
    # and no test here is about either running out.
    base = Receiver("ops", url, SECRET, group_wait=0, group_interval=1, repeat_interval=3, timeout=60,
                    max_attempts=5, max_elapsed=300, backoff_initial=0.05, backoff_max=0.3)
    return replace(base, **overrides)


def event(aid: str, scope: str = "ticker:ACME") -> AnomalyEvent:
    return AnomalyEvent(aid, "open", "negative_surge", scope, "2024-05-01T10:00:00.000Z", "2024-05-01T10:01:00.000Z",
                        8, 0.5, 6, "warning", ["s1"], ["Acme falls"])


async def send(receiver: Receiver, payload: dict, sleeps: list[float] | None = None) -> DeliveryResult:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        await asyncio.sleep(seconds)

    async with httpx.AsyncClient() as client:
        return await deliver(client, receiver, payload, now_fn=time.time, sleep_fn=sleep)


def dispatch_one(receiver: Receiver, *aids: str) -> dict:
    d = Dispatcher((receiver,))
    for aid in aids:
        d.ingest(alert_from_event(event(aid)), now=0)
    (notification,) = d.due(0)
    return notification.payload


def test_delivered_payload_has_v4_shape_and_valid_signature() -> None:
    async def main() -> None:
        server = HttpReceiver(SECRET)
        receiver = config(await server.start())
        try:
            result = await send(receiver, dispatch_one(receiver, "a1", "a2"))
        finally:
            await server.stop()
        assert (result.outcome, result.attempts, result.status) == ("delivered", 1, 200)
        (got,) = server.received
        assert got.valid_signature and got.headers["X-Finsentry-Notification-Id"] == result.notification_id
        assert got.payload["version"] == "4" and got.payload["receiver"] == "ops"
        assert [a["labels"]["anomaly_id"] for a in got.payload["alerts"]] == ["a1", "a2"]

    asyncio.run(main())


def test_grouping_and_repeat_interval_over_real_http() -> None:
    async def main() -> None:
        server = HttpReceiver(SECRET)
        receiver = config(await server.start())
        d = Dispatcher((receiver,))
        d.ingest(alert_from_event(event("a1")), now=0)
        d.ingest(alert_from_event(event("a2")), now=0)
        d.ingest(alert_from_event(event("b1", "ticker:BETA")), now=0)
        try:
            async with httpx.AsyncClient() as client:
                for now in (0, 1, 2, 3, 4):  # group_interval 1 s, repeat_interval 3 s
                    for n in d.due(now):
                        assert (await deliver(client, n.receiver, n.payload, now_fn=time.time)).outcome == "delivered"
        finally:
            await server.stop()
        batches = sorted([a["labels"]["anomaly_id"] for a in r.payload["alerts"]] for r in server.received)
        assert batches == [["a1", "a2"], ["a1", "a2"], ["b1"], ["b1"]]  # first flush and one repeat each
        assert all(r.valid_signature for r in server.received)

    asyncio.run(main())


def test_receiver_down_then_back_gets_every_notification_late_but_once() -> None:
    async def main() -> None:
        port = free_port()
        receiver = config(f"http://127.0.0.1:{port}/hook", max_attempts=30, backoff_max=0.2)
        payloads = [dispatch_one(receiver, f"x{i}") for i in range(3)]
        backoffs: list[list[float]] = [[] for _ in payloads]  # each delivery's sleeps between attempts
        server = HttpReceiver(SECRET)
        back_at: list[float] = []

        async def come_back() -> None:
            # Down until every delivery has failed at least once, then back.
            deadline = time.monotonic() + 300
            while not all(backoffs):
                assert time.monotonic() < deadline, "the deliveries never tried the receiver while it was down"
                await asyncio.sleep(0.05)
            back_at.append(time.monotonic())
            await server.start(port)

        results, _ = await asyncio.gather(asyncio.gather(*(send(receiver, p, b) for p, b in zip(payloads, backoffs))),
                                          come_back())
        await server.stop()
        assert all(r.outcome == "delivered" and r.attempts > 1 for r in results)
        assert "connection error" not in "".join(r.last_error for r in results)  # cleared on success
        fingerprints = sorted(a["labels"]["anomaly_id"] for r in server.received for a in r.payload["alerts"])
        assert fingerprints == ["x0", "x1", "x2"]  # each exactly once
        assert min(server.arrival_times) >= back_at[0]

    asyncio.run(main())


def test_503_is_retried_then_delivered() -> None:
    async def main() -> None:
        server = HttpReceiver(SECRET, script=[(503, {}), (503, {})])
        receiver = config(await server.start())
        result = await send(receiver, dispatch_one(receiver, "a"))
        await server.stop()
        assert (result.outcome, result.attempts, result.status) == ("delivered", 3, 200)
        assert len(server.received) == 1

    asyncio.run(main())


def test_429_honours_retry_after() -> None:
    async def main() -> None:
        server = HttpReceiver(SECRET, script=[(429, {"Retry-After": "1"})])
        receiver = config(await server.start())
        sleeps: list[float] = []
        result = await send(receiver, dispatch_one(receiver, "a"), sleeps)
        await server.stop()
        assert result.outcome == "delivered" and result.attempts == 2 and sleeps == [1.0]
        assert server.arrival_times[1] - server.arrival_times[0] >= 1.0

    asyncio.run(main())


def test_retry_after_http_date() -> None:
    assert retry_after_seconds(formatdate(1_000_030, usegmt=True), now=1_000_000) == 30
    assert retry_after_seconds("garbage", now=0) is None and retry_after_seconds("5", now=0) == 5


def test_400_is_not_retried_and_carries_a_deadletter_record() -> None:
    async def main() -> None:
        server = HttpReceiver(SECRET, script=[(400, {})])
        receiver = config(await server.start())
        payload = dispatch_one(receiver, "a")
        result = await send(receiver, payload)
        await server.stop()
        assert (result.outcome, result.attempts, result.status, result.refused) == ("failed", 1, 400, True)
        assert len(server.arrival_times) == 1 and result.last_error.startswith("HTTP 400")
        record = result.deadletter()
        assert record["original"] == payload and record["receiver"] == "ops" and record["stage"] == "webhook"

    asyncio.run(main())


def test_persistent_5xx_gives_up_after_max_attempts() -> None:
    async def main() -> None:
        server = HttpReceiver(SECRET, script=[(502, {})] * 10)
        receiver = config(await server.start(), max_attempts=3)
        result = await send(receiver, dispatch_one(receiver, "a"))
        await server.stop()
        assert (result.outcome, result.attempts, result.status) == ("failed", 3, 502)
        assert len(server.arrival_times) == 3 and "HTTP 502" in result.last_error

    asyncio.run(main())
