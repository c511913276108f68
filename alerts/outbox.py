"""The notify coordinator's outbox of due notifications: which to start now, and what a failed
delivery round means. Pure, with time passed in, so its rules are tested without a receiver.

Alertmanager records a notification in its log only once it is delivered, so a failed one goes out
again at the group's next `group_interval`. The outbox does the same for the notifications the
dispatcher has built: a delivery round that fails (its attempts or `max_elapsed` spent) keeps the
item, and it is tried again one `group_interval` later, until it is delivered, refused for good (an
HTTP 4xx other than 429, which a resend cannot fix), or `GIVE_UP_SECONDS` old. Only then is it
dead-lettered. A resolve is therefore not lost to a receiver that was down for a few minutes.

Order and fairness: the items of one receiver's group go out one at a time, in the order they were
made, so a resolve never lands before the firing it ends; and one receiver holds at most
`PER_RECEIVER` delivery slots, so a receiver that times out cannot hold up another's pages. Items of
one group never started are folded into the newest (`payload.merged`), as Alertmanager sends a
group's whole state, so a receiver that was down gets one notification with everything it missed;
and an item whose round failed is folded into the next of its group, so a payload a receiver fails
on is replaced by its group's next state, not retried alone for a day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from alerts.payload import merged

GIVE_UP_SECONDS = 24 * 3600.0
PER_RECEIVER = 2


def queued(receiver: str, payload: dict, now: float) -> dict:
    """A new outbox item (JSON) for `payload` to `receiver`, due at once."""
    return {"receiver": receiver, "payload": payload, "queued_at": now, "next_at": now, "rounds": 0}


def _group(item: dict) -> tuple[str, str]:
    return item["receiver"], str(item["payload"].get("groupKey"))


def enqueue(outbox: dict[str, dict], item_id: str, item: dict) -> None:
    """Add `item`, folding into it the items of its group never started (`started`), oldest first, so
    the newest state wins: it gains their resolves it does not carry, the oldest's day and the latest
    retry time. A started item may be in flight, here or on the coordinator before this one, so it is
    left to finish (or be folded by `retry` after its round) and `item` waits behind it."""
    waiting = [i for i, older in outbox.items() if not older.get("started") and _group(older) == _group(item)]
    folded = item
    for older_id in waiting:  # outbox order is the order they were made
        older = outbox.pop(older_id)
        if folded is not item:
            _fold(folded, older)
        folded = older
    if folded is not item:
        _fold(folded, item)
    outbox[item_id] = item


def startable(outbox: dict[str, dict], in_flight: Collection[str], now: float, limit: int) -> list[str]:
    """The ids of the items to start delivering now, in outbox order: due (`next_at` reached), first of
    their (receiver, groupKey) still in the outbox, within `limit` deliveries in all and PER_RECEIVER
    per receiver, counting those already `in_flight`. Each is marked `started` (for `enqueue`); the
    caller saves the outbox before it starts them."""
    running = [outbox[i]["receiver"] for i in in_flight if i in outbox]
    busy, total = Counter(running), len(running)
    seen_groups: set[tuple[str, str]] = set()
    chosen = []
    for item_id, item in outbox.items():
        group = _group(item)
        if group in seen_groups:
            continue  # waits for the older item of its group, delivered or given up
        seen_groups.add(group)
        if item_id in in_flight or item.get("next_at", now) > now:
            continue
        if total >= limit or busy[item["receiver"]] >= PER_RECEIVER:
            continue
        chosen.append(item_id)
        item["started"] = True
        busy[item["receiver"]] += 1
        total += 1
    return chosen


def retry(outbox: dict[str, dict], item_id: str, refused: bool, now: float, retry_in: float) -> bool:
    """After a failed delivery round of `item_id` (`refused`: for good, `DeliveryResult.refused`). True
    when it is to be dead-lettered now: refused, or GIVE_UP_SECONDS old. Else it stays for another
    round in `retry_in` seconds, no longer in flight (so a newer item of its group may fold it in), or
    is folded now into the next item of its group if one waits (which then carries both)."""
    item = outbox[item_id]
    if refused or now - item.setdefault("queued_at", now) >= GIVE_UP_SECONDS:
        return True
    item["next_at"] = now + retry_in
    item["rounds"] = item.get("rounds", 0) + 1
    item.pop("started", None)
    later = next((i for i, other in outbox.items() if i != item_id and _group(other) == _group(item)), None)
    if later is not None:  # (enqueue keeps at most one waiting behind the one in flight)
        del outbox[item_id]
        _fold(item, outbox[later])
    return False


def _fold(older: dict, newer: dict) -> None:
    """`older` into `newer` (items saved by versions before these fields lack their times)."""
    newer["payload"] = merged(older["payload"], newer["payload"])
    days = [at for at in (older.get("queued_at"), newer.get("queued_at")) if at is not None]
    if days:
        newer["queued_at"] = min(days)
    newer["next_at"] = max(newer.get("next_at", 0.0), older.get("next_at", 0.0))
