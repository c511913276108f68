"""notify's outbox rules (alerts/outbox.py): a failed delivery round is tried again, not dropped;
one receiver group's notifications go out in order, the waiting ones folded into one with the group's
whole state; a failing receiver cannot take every slot."""

from __future__ import annotations

import asyncio
import time

import httpx
from alerts_http_receiver import Receiver as HttpReceiver

from alerts.delivery import deliver
from alerts.outbox import GIVE_UP_SECONDS, PER_RECEIVER, enqueue, queued, retry, startable
from alerts.payload import build_payload
from alerts.receivers import Receiver


def payload(group: str, n: int, *alerts: tuple[str, str]) -> dict:
    """A group's payload with alerts (fingerprint, status); `n` tells payloads apart in a test."""
    built = build_payload("desk", {"scope": group}, [], "", n)
    built["alerts"] = [{"status": status, "labels": {"n": str(n)}, "annotations": {}, "startsAt": "2026-11-30T10:00:00Z",
                        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fp} for fp, status in alerts]
    return built


def test_one_receiver_groups_notifications_go_out_one_at_a_time_in_order() -> None:
    outbox: dict[str, dict] = {}
    enqueue(outbox, "f1", queued("desk", payload("g1", 1, ("a", "firing")), 0))
    enqueue(outbox, "x1", queued("desk", payload("g2", 1, ("x", "firing")), 0))
    assert startable(outbox, set(), 0, 8) == ["f1", "x1"]  # both marked started
    enqueue(outbox, "r1", queued("desk", payload("g1", 2, ("a", "resolved")), 0))  # f1 may be in flight: not folded
    assert list(outbox) == ["f1", "x1", "r1"]
    assert startable(outbox, {"f1", "x1"}, 0, 8) == []  # the resolve waits for its firing
    del outbox["f1"]  # delivered
    assert startable(outbox, {"x1"}, 0, 8) == ["r1"]


def test_waiting_notifications_of_a_group_are_folded_into_the_newest_with_its_whole_state() -> None:
    outbox: dict[str, dict] = {}
    enqueue(outbox, "n1", queued("desk", payload("g1", 1, ("old", "resolved"), ("a", "firing")), 0))
    outbox["n1"]["next_at"] = 300.0  # due again at 300
    enqueue(outbox, "n2", queued("desk", payload("g1", 2, ("a", "resolved"), ("b", "firing")), 100))
    assert list(outbox) == ["n2"]  # one notification for the group, with everything the receiver missed
    assert [(a["fingerprint"], a["status"]) for a in outbox["n2"]["payload"]["alerts"]] == [
        ("a", "resolved"), ("b", "firing"), ("old", "resolved")]  # the newer state of `a` wins
    assert (outbox["n2"]["queued_at"], outbox["n2"]["next_at"]) == (0, 300.0)  # the oldest's day, the retry's time


def test_three_waiting_notifications_fold_in_the_order_they_were_made() -> None:
    # folded oldest-last, A's firing of X once beat B's resolve of it: X stayed firing at the receiver
    outbox: dict[str, dict] = {}
    for item_id, alerts in (("A", [("X", "firing")]), ("B", [("X", "resolved")]), ("C", [("Y", "firing")])):
        enqueue(outbox, item_id, queued("desk", payload("g1", 1, *alerts), 0))
    assert list(outbox) == ["C"]
    assert [(a["fingerprint"], a["status"]) for a in outbox["C"]["payload"]["alerts"]] == [("Y", "firing"),
                                                                                          ("X", "resolved")]


def test_a_firing_alert_the_newer_state_leaves_out_still_reaches_the_receiver() -> None:
    # n2 leaves Y out (silenced meanwhile), yet the dispatcher counted Y as told when n1 was made:
    # dropped in the fold, the receiver would not hear it fire until repeat_interval after the silence
    outbox: dict[str, dict] = {}
    enqueue(outbox, "n1", queued("desk", payload("g1", 1, ("Y", "firing"), ("Z", "firing")), 0))
    enqueue(outbox, "n2", queued("desk", payload("g1", 2, ("Z", "firing")), 10))
    assert [a["fingerprint"] for a in outbox["n2"]["payload"]["alerts"]] == ["Z", "Y"]


def test_an_item_saved_by_an_older_version_folds_without_its_times() -> None:
    outbox = {"o": {"receiver": "desk", "payload": payload("g1", 1, ("X", "resolved"))}}  # no queued_at, next_at
    enqueue(outbox, "n", queued("desk", payload("g1", 2, ("Y", "firing")), 50.0))
    assert list(outbox) == ["n"] and outbox["n"]["queued_at"] == 50.0
    assert [a["fingerprint"] for a in outbox["n"]["payload"]["alerts"]] == ["Y", "X"]


def test_a_failed_round_is_folded_into_the_next_notification_of_its_group() -> None:
    outbox: dict[str, dict] = {}
    enqueue(outbox, "n1", queued("desk", payload("g1", 1, ("a", "firing")), 0))
    assert startable(outbox, set(), 0, 8) == ["n1"]
    enqueue(outbox, "n2", queued("desk", payload("g1", 2, ("a", "resolved")), 10))
    assert retry(outbox, "n1", False, 20.0, 300.0) is False
    assert list(outbox) == ["n2"] and outbox["n2"]["next_at"] == 320.0
    assert [(a["fingerprint"], a["status"]) for a in outbox["n2"]["payload"]["alerts"]] == [("a", "resolved")]


def test_a_failing_receiver_holds_at_most_its_share_of_the_slots() -> None:
    outbox = {f"dead{i}": queued("dead", payload(f"g{i}", 1), 0) for i in range(16)}
    outbox |= {f"pager{i}": queued("pager", payload(f"p{i}", 1), 0) for i in range(4)}
    first = startable(outbox, set(), 0, 8)
    assert sum(i.startswith("dead") for i in first) == PER_RECEIVER  # once all 8 went to the dead one
    assert [i for i in first if i.startswith("pager")] == ["pager0", "pager1"]
    assert len(first) == 2 * PER_RECEIVER


def test_a_failed_round_is_tried_again_a_group_interval_later_until_a_day_has_passed() -> None:
    outbox = {"n": queued("desk", payload("g1", 1), 1000.0)}
    assert startable(outbox, set(), 1000.0, 8) == ["n"] and outbox["n"]["started"]
    assert retry(outbox, "n", False, 1100.0, 300.0) is False  # a receiver that is down: kept
    assert (outbox["n"]["next_at"], outbox["n"]["rounds"]) == (1400.0, 1)
    assert "started" not in outbox["n"]  # its round is over: a newer state of its group may fold it in
    assert startable(outbox, set(), 1399.0, 8) == [] and startable(outbox, set(), 1400.0, 8) == ["n"]
    assert retry(outbox, "n", False, 1500.0, 300.0) is False
    assert retry(outbox, "n", False, 1000.0 + GIVE_UP_SECONDS, 300.0) is True  # a day old: dead-lettered


def test_a_notification_refused_for_good_is_given_up_at_once() -> None:
    assert retry({"n": queued("desk", payload("g1", 1), 0.0)}, "n", True, 1.0, 300.0) is True


def test_an_item_queued_by_an_older_version_gets_a_day_from_its_first_failure() -> None:
    old = {"receiver": "desk", "payload": payload("g1", 1)}  # no queued_at, next_at or rounds
    assert startable({"o": old}, set(), 5.0, 8) == ["o"]
    assert retry({"o": old}, "o", False, 5.0, 300.0) is False and old["queued_at"] == 5.0


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


def test_a_url_no_request_can_be_made_to_is_a_failed_delivery_not_an_exception() -> None:
    # raised out of deliver, it crashed the case-webhooks agent on every worker that read the event
    async def main() -> list[tuple[str, int, bool]]:
        async with httpx.AsyncClient() as client:
            results = [await deliver(client, Receiver("ops", url, b"k", timeout=5, max_attempts=3), payload("g1", 1),
                                     now_fn=time.time)
                       for url in ("http://desk:80x/hook", "http://xn--a.com/hook")]
        return [(r.outcome, r.attempts, r.refused) for r in results]

    assert asyncio.run(main()) == [("failed", 1, True), ("failed", 1, True)]


def test_a_failure_on_the_way_is_retried_not_refused_for_good() -> None:
    # a TLS record error or a body that does not decode is no reason to dead-letter a resolve at once
    import ssl

    class Failing(httpx.AsyncBaseTransport):
        def __init__(self, exc: Exception) -> None:
            self.exc, self.calls = exc, 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.calls += 1
            raise self.exc

    async def main(exc: Exception) -> tuple[str, int, bool]:
        transport = Failing(exc)
        async with httpx.AsyncClient(transport=transport) as client:
            result = await deliver(client, Receiver("ops", "https://desk.example/hook", b"k", max_attempts=3,
                                                    backoff_initial=0.01, backoff_max=0.01), payload("g1", 1),
                                   now_fn=time.time)
        return result.outcome, transport.calls, result.refused

    for exc in (ssl.SSLError("DECRYPTION_FAILED_OR_BAD_RECORD_MAC"), httpx.DecodingError("bad gzip"), RuntimeError("x")):
        assert asyncio.run(main(exc)) == ("failed", 3, False)


def test_a_punycode_host_no_request_can_be_made_to_is_no_webhook_url_not_a_crash() -> None:
    from alerts.receivers import webhook_url

    assert webhook_url("http://xn--a.example/hook") is False and webhook_url("https://desk.example/hook") is True
