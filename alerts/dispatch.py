"""Alertmanager-style grouping and throttling, with time injected so it is pure and replayable.

Per receiver, alerts are grouped by the receiver's `group_by` labels. A new group is flushed after
`group_wait`; after that it is checked every `group_interval` and a notification goes out when an
alert is new or changed status, or, with nothing changed, when firing alerts have not been sent for
`repeat_interval`. A resolved alert is sent once, then forgotten. Silenced alerts are left out of
notifications (a firing one comes back when its silence ends).

The dispatcher considers a notification sent once `due()` returns it: the caller delivers it and
dead-letters it if delivery fails, so nothing is dropped silently and nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from alerts.payload import Alert, build_payload, group_key
from alerts.receivers import Receiver
from alerts.silences import Silences


@dataclass(frozen=True)
class Notification:
    receiver: Receiver
    payload: dict


@dataclass
class Group:
    receiver: str
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, dict] = field(default_factory=dict)  # fingerprint -> Alert.to_json()
    sent: dict[str, str] = field(default_factory=dict)  # fingerprint -> status last notified
    last_sent_at: float | None = None


@dataclass
class Dispatcher:
    receivers: tuple[Receiver, ...]
    silences: Silences = field(default_factory=Silences)
    external_url: str = ""
    groups: dict[str, Group] = field(default_factory=dict)

    def ingest(self, alert: Alert, now: float) -> None:
        """Route an alert (new or a newer state of a known fingerprint) to every receiver that wants it."""
        for receiver in self.receivers:
            if not receiver.wants(alert.labels):
                continue
            labels = {name: alert.labels.get(name, "") for name in receiver.group_by}
            key = group_key(receiver.name, labels)
            for other_key, other in self.groups.items():  # a relabelled alert moves group, not duplicates
                if other.receiver == receiver.name and other_key != key:
                    other.alerts.pop(alert.fingerprint, None)
            group = self.groups.setdefault(key, Group(receiver.name, labels, now + receiver.group_wait))
            group.alerts[alert.fingerprint] = alert.to_json()

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

    def _flush(self, group: Group, receiver: Receiver, now: float) -> dict | None:
        group.next_flush = now + receiver.group_interval
        visible = {fp: a for fp, a in group.alerts.items() if self.silences.match(a["labels"], now) is None}
        changed = any(group.sent.get(fp) != a["status"] for fp, a in visible.items())
        firing = any(a["status"] == "firing" for a in visible.values())
        stale = group.last_sent_at is None or now - group.last_sent_at >= receiver.repeat_interval
        payload = None
        if visible and (changed or (firing and stale)):
            alerts = [Alert.from_json(a) for a in visible.values()]
            payload = build_payload(receiver.name, group.labels, alerts, self.external_url)
            group.sent.update({fp: a["status"] for fp, a in visible.items()})
            group.last_sent_at = now
        for fp, a in list(group.alerts.items()):
            if a["status"] == "resolved" and (group.sent.get(fp) == "resolved" or fp not in visible):
                del group.alerts[fp]
                group.sent.pop(fp, None)
        return payload

    def to_dict(self) -> dict:
        return {"groups": {k: asdict(g) for k, g in self.groups.items()}, "silences": self.silences.to_dict()}

    @classmethod
    def from_dict(cls, d: dict, receivers: tuple[Receiver, ...], external_url: str = "") -> Dispatcher:
        groups = {k: Group(**g) for k, g in d["groups"].items()}
        return cls(receivers, Silences.from_dict(d["silences"]), external_url, groups)
