"""notify's outbox rules (alerts/outbox.py): a failed delivery round is tried again, not dropped;
one receiver group's notifications go out in order; a failing receiver cannot take every slot."""

from __future__ import annotations

import asyncio
import time

import httpx
from alerts_http_receiver import Receiver as HttpReceiver

from alerts.delivery import deliver
from alerts.outbox import GIVE_UP_SECONDS, PER_RECEIVER, give_up, queued, startable
from alerts.receivers import Receiver


def payload(group: str, n: int) -> dict:
    return {"groupKey": group, "n": n}


def test_one_receiver_groups_notifications_go_out_one_at_a_time_in_order() -> None:
    outbox = {"f1": queued("desk", payload("g1", 1), 0), "r1": queued("desk", payload("g1", 2), 0),
              "x1": queued("desk", payload("g2", 1), 0)}
    assert startable(outbox, set(), 0, 8) == ["f1", "x1"]  # the resolve waits for its firing
    assert startable(outbox, {"f1", "x1"}, 0, 8) == []  # in flight: still waits
    del outbox["f1"]  # delivered (or given up)
    assert startable(outbox, {"x1"}, 0, 8) == ["r1"]


def test_a_failing_receiver_holds_at_most_its_share_of_the_slots() -> None:
    outbox = {f"dead{i}": queued("dead", payload(f"g{i}", 1), 0) for i in range(16)}
    outbox |= {f"pager{i}": queued("pager", payload(f"p{i}", 1), 0) for i in range(4)}
    first = startable(outbox, set(), 0, 8)
    assert sum(i.startswith("dead") for i in first) == PER_RECEIVER  # once all 8 went to the dead one
    assert [i for i in first if i.startswith("pager")] == ["pager0", "pager1"]
    assert len(first) == 2 * PER_RECEIVER


def test_a_failed_round_is_tried_again_a_group_interval_later_until_a_day_has_passed() -> None:
    item = queued("desk", payload("g1", 1), 1000.0)
    assert give_up(item, 503, 1100.0, 300.0) is False  # a receiver that is down: kept
    assert (item["next_at"], item["rounds"]) == (1400.0, 1)
    assert startable({"n": item}, set(), 1399.0, 8) == [] and startable({"n": item}, set(), 1400.0, 8) == ["n"]
    assert give_up(item, None, 1500.0, 300.0) is False  # no answer at all: kept
    assert give_up(item, 429, 1600.0, 300.0) is False  # asked to slow down: kept
    assert give_up(item, 503, 1000.0 + GIVE_UP_SECONDS, 300.0) is True  # a day old: dead-lettered


def test_a_notification_refused_for_good_is_given_up_at_once() -> None:
    for status in (400, 401, 404, 413):
        assert give_up(queued("desk", payload("g1", 1), 0.0), status, 1.0, 300.0) is True


def test_an_item_queued_by_an_older_version_gets_a_day_from_its_first_failure() -> None:
    old = {"receiver": "desk", "payload": payload("g1", 1)}  # no queued_at, next_at or rounds
    assert startable({"o": old}, set(), 5.0, 8) == ["o"]
    assert give_up(old, 503, 5.0, 300.0) is False and old["queued_at"] == 5.0


def test_the_senders_notification_id_is_the_header_so_a_reminder_is_not_dropped_as_a_retry() -> None:
    async def main() -> list[str]:
        server = HttpReceiver(b"k")
        receiver = Receiver("ops", await server.start(), b"k", timeout=60, max_attempts=1)
        try:
            async with httpx.AsyncClient() as client:
                for notification_id in ("first-flush", "reminder-flush"):  # the same body, 4 h apart
                    await deliver(client, receiver, payload("g1", 1), now_fn=time.time, notification_id=notification_id)
        finally:
            await server.stop()
        return [r.headers["X-Finsentry-Notification-Id"] for r in server.received]

    assert asyncio.run(main()) == ["first-flush", "reminder-flush"]
