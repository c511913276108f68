"""The notify coordinator's outbox of due notifications: which to start now, and what a failed
delivery round means. Pure, with time passed in, so its rules are tested without a receiver.

Alertmanager records a notification in its log only once it is delivered, so a failed one goes out
again at the group's next `group_interval`, and a resolved alert leaves its group only once a
notification carrying it is delivered. The outbox does the same for the notifications the
dispatcher has built: a delivery round that fails (its attempts or `max_elapsed` spent) keeps the
item, and it is tried again one `group_interval` later (or at the receiver's Retry-After, if later),
until it is delivered or given up: refused for good (a 3xx or a 4xx a resend cannot fix),
REFUSED_ROUNDS rounds refused with a status a later round may get past (401, 404, 408, 425, 429:
`DeliveryResult.soft_refused`), or `GIVE_UP_SECONDS` old. The caller dead-letters a given-up item.
If it carried resolved alerts, they are not lost with it: they go out again *alone*, as a new item
due one `group_interval` later that holds only them (a resolve is carried at most CARRIES times), so
a receiver that refused one notification still hears the resolve and is not left showing the alert
firing. Alone, because a receiver may refuse a notification for something in it (a 400 for one
alert's labels or annotations): folded into the group's next notification, the resolve that made it
refuse would have that one refused too, and the new firing alerts with it, CARRIES times over.

Order and fairness: the items of one receiver's group go out one at a time, in the order they were
made, so a resolve never lands before the firing it ends; and one receiver holds at most
`PER_RECEIVER` delivery slots, so a receiver that times out cannot hold up another's pages. Items of
one group never started are folded into the newest (`payload.merged`), as Alertmanager sends a
group's whole state, so a receiver that was down gets one notification with everything it missed;
and an item whose round failed is folded into the next of its group, so a payload a receiver fails
on is replaced by its group's next state, not retried alone for a day. A carried resolve is never
folded, nor anything into it; it waits behind the group's other items (one of a group is in flight
at a time), never holds them up, and loses to them: an item that starts takes out of the waiting
carried resolves every alert it states itself (the newer state), so a carried resolve never lands
after a newer firing of the same alert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from alerts.payload import Alert, build_payload, merged

GIVE_UP_SECONDS = 24 * 3600.0
PER_RECEIVER = 2
REFUSED_ROUNDS = 10  # rounds refused with a soft refusal (401, 404, 408, 425, 429) before giving up
CARRIES = 3  # times one resolved alert is carried on from a given-up notification
ALONE = "alone"  # an item's mark: a carried resolve, sent in a notification of its own


def queued(receiver: str, payload: dict, now: float) -> dict:
    """A new outbox item (JSON) for `payload` to `receiver`, due at once."""
    return {"receiver": receiver, "payload": payload, "queued_at": now, "next_at": now, "rounds": 0}


def _group(item: dict) -> tuple[str, str]:
    return item["receiver"], str(item["payload"].get("groupKey"))


def enqueue(outbox: dict[str, dict], item_id: str, item: dict) -> None:
    """Add `item`, folding into it the items of its group never started (`started`), oldest first, so
    the newest state wins: it gains their resolves it does not carry, the oldest's day and the latest
    retry time. Carried resolves (`ALONE`) are not folded. A started item may be in flight, here or on the coordinator before this one, so it is
    left to finish (or be folded by `retry` after its round) and `item` waits behind it."""
    waiting = [i for i, older in outbox.items()
               if not older.get("started") and not older.get(ALONE) and _group(older) == _group(item)]
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
    per receiver, counting those already `in_flight`; a carried resolve (`ALONE`) only once no other
    item of its group is under way or starts now. Each is marked `started` (for `enqueue`); a starting
    item takes the alerts it states out of its group's waiting carried resolves (dropping one left
    empty). The caller saves the outbox before it starts them."""
    running = [outbox[i]["receiver"] for i in in_flight if i in outbox]
    busy, total = Counter(running), len(running)
    under_way = {_group(outbox[i]) for i in in_flight if i in outbox}  # one item of a group at a time
    seen_groups: set[tuple[str, str]] = set()
    chosen = []
    for alone in (False, True):  # the groups' notifications in order first, then carried resolves
        for item_id, item in list(outbox.items()):
            if bool(item.get(ALONE)) != alone:
                continue
            group = _group(item)
            if not alone:
                if group in seen_groups:
                    continue  # waits for the older item of its group, delivered or given up
                seen_groups.add(group)
            if group in under_way or item.get("next_at", now) > now:
                continue
            if total >= limit or busy[item["receiver"]] >= PER_RECEIVER:
                continue
            chosen.append(item_id)
            item["started"] = True
            busy[item["receiver"]] += 1
            total += 1
            under_way.add(group)
            if not alone:
                _supersede(outbox, item_id)
    return chosen


def _supersede(outbox: dict[str, dict], item_id: str) -> None:
    """Take the alerts `item_id` states out of its group's carried resolves (none is in flight: one
    item of a group is at a time): it is newer, so what it says of them stands."""
    item = outbox[item_id]
    stated = {a["fingerprint"] for a in item["payload"]["alerts"]}
    for other_id, other in list(outbox.items()):
        if not other.get(ALONE) or _group(other) != _group(item):
            continue
        old = other["payload"]
        kept = [a for a in old["alerts"] if a["fingerprint"] not in stated]
        if not kept:
            del outbox[other_id]
        elif len(kept) < len(old["alerts"]):
            other["payload"] = _rebuilt(old, kept)


def _rebuilt(old: dict, alerts: list[dict]) -> dict:
    """`old` (a payload) with only `alerts`, under its own groupKey."""
    return build_payload(old["receiver"], old["groupLabels"], [Alert.from_json(a) for a in alerts],
                         old["externalURL"], old.get("truncatedAlerts", 0), key=old.get("groupKey"))


def retry(outbox: dict[str, dict], item_id: str, refused: bool, now: float, retry_in: float, *,
          soft: bool = False, not_before: float | None = None) -> bool:
    """After a failed delivery round of `item_id` (`refused`: for good, `DeliveryResult.refused`;
    `soft`: `DeliveryResult.soft_refused`; `not_before`: `DeliveryResult.retry_at`). True when it is
    to be dead-lettered now: refused, REFUSED_ROUNDS soft refusals, or GIVE_UP_SECONDS old; the caller
    then removes it, and its resolved alerts have been carried on (`_carry`: a new item holding them
    alone, whose id is left in the item's "carry"). Else it stays for another round in `retry_in`
    seconds (not before `not_before`), no longer in flight (so a newer item of its group may fold it
    in), or is folded now into the next item of its group if one waits (which then carries both); a
    carried resolve (`ALONE`) is never folded."""
    item = outbox[item_id]
    if soft:
        item["refusals"] = item.get("refusals", 0) + 1
    next_at = max(now + retry_in, not_before or 0.0)
    if refused or item.get("refusals", 0) >= REFUSED_ROUNDS or now - item.setdefault("queued_at", now) >= GIVE_UP_SECONDS:
        item["carry"] = _carry(outbox, item_id, now, next_at)
        return True
    item["next_at"] = next_at
    item["rounds"] = item.get("rounds", 0) + 1
    item.pop("started", None)
    later = None if item.get(ALONE) else _next_of_group(outbox, item_id)
    if later is not None:  # (enqueue keeps at most one waiting behind the one in flight)
        del outbox[item_id]
        _fold(item, outbox[later])
    return False


def _next_of_group(outbox: dict[str, dict], item_id: str) -> str | None:
    """The next item of `item_id`'s group that items may be folded into (a carried resolve is not)."""
    group = _group(outbox[item_id])
    return next((i for i, other in outbox.items()
                 if i != item_id and not other.get(ALONE) and _group(other) == group), None)


def _carry(outbox: dict[str, dict], item_id: str, now: float, next_at: float) -> str | None:
    """Carry a given-up item's resolved alerts on, those carried fewer than CARRIES times, as a new item
    due at `next_at` that holds only them (`ALONE`: never folded into the group's next notification,
    which a resolve the receiver refuses would take down with it). The new item's id, or None (no
    resolve to carry: a firing alert the receiver missed is re-sent at its repeat_interval, as the
    dispatcher counted it told)."""
    item = outbox[item_id]
    counts: dict[str, int] = dict(item.get("carried", {}))
    resolved = [a for a in item["payload"]["alerts"]
                if a["status"] == "resolved" and counts.get(a["fingerprint"], 0) < CARRIES]
    if not resolved:
        return None
    counts.update({a["fingerprint"]: counts.get(a["fingerprint"], 0) + 1 for a in resolved})
    carry_id = f"{item_id}-r"
    while carry_id in outbox:
        carry_id += "r"
    outbox[carry_id] = {"receiver": item["receiver"], "payload": _rebuilt(item["payload"], resolved),
                        "queued_at": now, "next_at": next_at, "rounds": 0, "carried": counts, ALONE: True}
    return carry_id


def _fold(older: dict, newer: dict) -> None:
    """`older` into `newer` (items saved by versions before these fields lack their times)."""
    newer["payload"] = merged(older["payload"], newer["payload"])
    days = [at for at in (older.get("queued_at"), newer.get("queued_at")) if at is not None]
    if days:
        newer["queued_at"] = min(days)
    newer["next_at"] = max(newer.get("next_at", 0.0), older.get("next_at", 0.0))
    if older.get("refusals") or newer.get("refusals"):
        newer["refusals"] = max(older.get("refusals", 0), newer.get("refusals", 0))
    if older.get("carried") or newer.get("carried"):
        counts = dict(newer.get("carried", {}))
        for fp, n in older.get("carried", {}).items():
            counts[fp] = max(n, counts.get(fp, 0))
        newer["carried"] = counts
