"""Alertmanager-style grouping and throttling, with time injected so it is pure and replayable.

Routing is decided once, when an alert first fires: the receivers whose filters want it then
*hold* it. From then on every holder hears every change of the alert and its resolve, whatever its
labels have become; a receiver's filter decides whether it starts following an alert, never
whether it hears the end. A change of labels (a severity escalation or de-escalation) is also
offered to the receivers that the new labels route to, which then hold it too.

Per receiver, alerts are grouped by the receiver's `group_by` labels (a label an alert lacks counts
as "", so the groupKey of a group is the one it always had; the payload's groupLabels leave such a
label out, as Alertmanager's do). A new group is flushed after
`group_wait`; after that it is checked every `group_interval` and a notification goes out when an
alert is new, changed status or changed labels (its fingerprint), or, with nothing changed, when
firing alerts have not been sent for `repeat_interval`. A resolved alert is sent once, to the
receivers that were told it was firing, then forgotten. Silenced firing alerts are left out of
notifications (one comes back when its silence ends); a resolve is never held back from a receiver
that was told the alert fired.

An alert is identified by `Alert.key` (its anomaly id). After its resolve, a firing copy with the
same key and start (a replay after a crash) is ignored for `ENDED_RETENTION` seconds; a firing with
a later start is a new episode.

The dispatcher considers a notification sent once `due()` returns it: the caller (notify's outbox,
alerts/outbox.py) delivers it, tries a failed one again, and dead-letters one it gives up, sending
its resolved alerts again in a notification of their own, so nothing is dropped silently, a resolve
is not lost to one refusal, and nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from alerts.payload import Alert, build_payload, ended_now, group_key, group_labels
from alerts.receivers import Receiver
from alerts.silences import Silences

ENDED_RETENTION = 7 * 86400.0  # how long a resolved alert's key is remembered against replays


@dataclass(frozen=True)
class Notification:
    receiver: Receiver
    payload: dict


def _mark(alert: dict) -> str:
    """What a receiver was last told about an alert: its status and label set."""
    return f"{alert['status']}:{alert['fingerprint']}"


@dataclass
class Group:
    receiver: str
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, dict] = field(default_factory=dict)  # key -> Alert.to_json()
    sent: dict[str, str] = field(default_factory=dict)  # key -> _mark() last notified
    last_sent_at: float | None = None


@dataclass
class Dispatcher:
    receivers: tuple[Receiver, ...]
    silences: Silences = field(default_factory=Silences)
    external_url: str = ""
    groups: dict[str, Group] = field(default_factory=dict)
    holders: dict[str, list[str]] = field(default_factory=dict)  # key -> receivers following the alert
    ended: dict[str, dict] = field(default_factory=dict)  # key -> {starts_at, at}: resolved episodes

    def ingest(self, alert: Alert, now: float) -> bool:
        """Take a new alert or a newer state of a known one, and place it with every receiver holding it.
        False when the alert changes nothing (a replay of an ended episode, or the resolve of an alert
        that never fired here): the caller must not act on it either."""
        key = alert.key
        self._forget_ended(now)
        ended = self.ended.get(key)
        if ended is not None and alert.starts_at <= ended["starts_at"]:
            return False  # this episode is over: a replayed firing or a repeated resolve changes nothing
        held = self.holders.get(key)
        if held is None and alert.status == "resolved":
            return False  # never fired here: nobody was told, so nobody needs the end
        names = list(held or [])
        if alert.status == "firing":
            names += [r.name for r in self.receivers if r.wants(alert.labels) and r.name not in names]
            self.holders[key] = names
        else:
            self.holders.pop(key, None)
            self.ended[key] = {"starts_at": alert.starts_at, "at": now}
        by_name = {r.name: r for r in self.receivers}
        for name in names:
            receiver = by_name.get(name)
            if receiver is not None:
                self._place(receiver, key, alert, now)
        return True

    def _place(self, receiver: Receiver, key: str, alert: Alert, now: float) -> None:
        labels = group_labels(receiver.group_by, alert.labels)
        gkey = group_key(receiver.name, labels)
        sent = None
        for other_key, other in self.groups.items():
            previous = other.alerts.get(key) if other.receiver == receiver.name else None
            if previous is None:
                continue
            if previous["fingerprint"] != alert.fingerprint and other.sent.get(key) == _mark(previous):
                # The receiver knows the alert firing under its old label set: that one ends now, in
                # its own group, as Alertmanager would; the new label set is news to the receiver.
                ended = f"{key}@{previous['fingerprint']}"
                other.alerts[ended] = ended_now(previous, now)
                other.sent[ended] = other.sent.pop(key)
            if other_key != gkey:  # a relabelled alert moves group, not duplicates
                other.alerts.pop(key)
                sent = other.sent.pop(key, sent)
        group = self.groups.setdefault(gkey, Group(receiver.name, labels, now + receiver.group_wait))
        unsent_end = f"{key}@{alert.fingerprint}"
        if unsent_end in group.alerts:  # back to a label set whose end was not sent yet: it never ended
            del group.alerts[unsent_end]
            sent = group.sent.pop(unsent_end)
        group.alerts[key] = alert.to_json()
        if sent is not None:  # what the receiver was told travels with the alert
            group.sent[key] = sent

    def _forget_ended(self, now: float) -> None:
        if any(now - e["at"] > ENDED_RETENTION for e in self.ended.values()):
            self.ended = {k: e for k, e in self.ended.items() if now - e["at"] <= ENDED_RETENTION}

    def due(self, now: float) -> list[Notification]:
        """Notifications to deliver now; call it periodically (every second or so)."""
        by_name = {r.name: r for r in self.receivers}
        notifications = []
        for key, group in list(self.groups.items()):
            receiver = by_name.get(group.receiver)
            if receiver is None:  # receiver removed from config since the state was saved
                del self.groups[key]
                continue
            if now < group.next_flush:
                continue
            payload = self._flush(group, receiver, now)
            if payload is not None:
                notifications.append(Notification(receiver, payload))
            if not group.alerts:
                del self.groups[key]
        return notifications

    def _told_firing(self, group: Group, key: str) -> bool:
        sent = group.sent.get(key, "")
        return sent == "firing" or sent.startswith("firing:")  # bare "firing": state saved before marks

    def _flush(self, group: Group, receiver: Receiver, now: float) -> dict | None:
        group.next_flush = now + receiver.group_interval
        visible = {
            k: a for k, a in group.alerts.items()
            if (a["status"] == "resolved" and self._told_firing(group, k))
            or (a["status"] == "firing" and self.silences.match(a["labels"], now) is None)
        }
        changed = any(group.sent.get(k) != _mark(a) for k, a in visible.items())
        firing = any(a["status"] == "firing" for a in visible.values())
        stale = group.last_sent_at is None or now - group.last_sent_at >= receiver.repeat_interval
        payload = None
        if visible and (changed or (firing and stale)):
            alerts = [Alert.from_json(a) for a in visible.values()]
            payload = build_payload(receiver.name, group.labels, alerts, self.external_url)
            group.sent.update({k: _mark(a) for k, a in visible.items()})
            group.last_sent_at = now
        for k, a in list(group.alerts.items()):
            if a["status"] == "resolved" and k not in visible or group.sent.get(k, "").startswith("resolved:"):
                del group.alerts[k]  # announced, or nothing to announce: the receiver never heard it fire
                group.sent.pop(k, None)
        return payload

    def to_dict(self) -> dict:
        return {"groups": {k: asdict(g) for k, g in self.groups.items()}, "silences": self.silences.to_dict(),
                "holders": self.holders, "ended": self.ended}

    @classmethod
    def from_dict(cls, d: dict, receivers: tuple[Receiver, ...], external_url: str = "") -> Dispatcher:
        groups = {k: Group(**g) for k, g in d["groups"].items()}
        if "holders" in d:
            holders = {k: list(v) for k, v in d["holders"].items()}
        else:  # state saved before holders were kept: whoever has a firing alert in a group holds it
            holders = {}
            for group in groups.values():
                for k, a in group.alerts.items():
                    if a["status"] == "firing" and group.receiver not in holders.setdefault(k, []):
                        holders[k].append(group.receiver)
        return cls(receivers, Silences.from_dict(d["silences"]), external_url, groups, holders,
                   dict(d.get("ended", {})))
