"""Alerts and the Prometheus Alertmanager webhook payload (version "4").

Shape as documented for Alertmanager's webhook_config, so any receiver written for Alertmanager
(and Alertmanager's own tooling) can consume finsentry notifications unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from alerts.records import AnomalyEvent, iso_utc

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing
Status = Literal["firing", "resolved"]

_FNV64_OFFSET = 14695981039346656037
_FNV64_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF  # never occurs in UTF-8, so "a"+"bc" and "ab"+"c" hash apart


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, as its webhook payload writes it (16 hex digits).

    Prometheus common/model `labelSetToFingerprint`: FNV-1a 64 over the label names in sorted
    order, each name and each value followed by the separator byte 0xff; `Fingerprint.String()`
    prints it as %016x. Go sorts names by bytes, which for UTF-8 is Python's code point order.
    """
    h = _FNV64_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV64_PRIME) & _MASK64
            h = ((h ^ _SEPARATOR) * _FNV64_PRIME) & _MASK64
    return f"{h:016x}"


@dataclass(frozen=True)
class Alert:
    status: Status
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    generator_url: str
    fingerprint: str

    @property
    def key(self) -> str:
        """The alert's identity across label changes: its anomaly id (a label), else its fingerprint.

        The fingerprint follows the labels, so it changes when the severity does; the anomaly id
        names the same alert from its open to its resolve.
        """
        return self.labels.get("anomaly_id") or self.fingerprint

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, d: dict) -> Alert:
        return cls(d["status"], dict(d["labels"]), dict(d["annotations"]), d["startsAt"], d["endsAt"],
                   d["generatorURL"], d["fingerprint"])


def ended_now(alert: dict, now: float) -> dict:
    """An `Alert.to_json()` firing copy resolved at `now` (epoch seconds): what a receiver that knows
    the alert by this label set must hear when the set changes (an escalation is a new alert to
    Alertmanager and to receivers keyed by fingerprint). endsAt is never before startsAt: a window
    may start up to the monitor's future skew ahead of this clock, and Alertmanager refuses (400) an
    alert that ends before it starts, and with it every other alert of the push."""
    try:
        starts = datetime.fromisoformat(alert["startsAt"]).timestamp()
    except ValueError:  # a foreign event's window: now is all there is to say
        starts = now
    return {**alert, "status": "resolved", "endsAt": iso_utc(max(now, starts))}


def alert_from_event(event: AnomalyEvent, generator_url: str = "") -> Alert:
    """The alert an anomaly event stands for; its fingerprint is Alertmanager's hash of its labels.

    The anomaly id label keeps two successive anomalies of one kind and scope apart, as distinct
    alerts, and is the alert's identity (`Alert.key`) while its severity changes.
    """
    resolved = event.event == "resolve"
    summary = (f"{event.kind.replace('_', ' ')} in {event.scope}: observed {event.observed:g}, "
               f"expected {event.expected:.2f} (score {event.score:.1f})")
    labels = {"alertname": event.kind, "scope": event.scope, "severity": event.severity,
              "anomaly_id": event.anomaly_id}
    return Alert(
        status="resolved" if resolved else "firing",
        labels=labels,
        annotations={
            "summary": summary,
            "headlines": "\n".join(event.headlines),
            "sample_ids": ",".join(event.sample_ids),
            "observed": f"{event.observed:g}",
            "expected": f"{event.expected:g}",
            "score": f"{event.score:g}",
        },
        starts_at=event.window_start,
        ends_at=event.window_end if resolved else ZERO_TIME,
        generator_url=generator_url,
        fingerprint=fingerprint(labels),
    )


def merged(older: dict, newer: dict) -> dict:
    """One group's notification payload that stands for two not yet delivered, in order: `newer`'s
    alerts, and those of `older` it does not carry (by fingerprint). The dispatcher counts an alert as
    told once it is in a notification, so each must still reach the receiver: a resolve (sent once,
    then forgotten), or a firing alert that `newer` leaves out because it was silenced meanwhile
    (sent, it is what the receiver would have got without the fold; dropped, the receiver would not
    hear it fire until repeat_interval after the silence ends)."""
    carried = {a["fingerprint"] for a in newer["alerts"]}
    alerts = [Alert.from_json(a) for a in newer["alerts"] + [a for a in older["alerts"] if a["fingerprint"] not in carried]]
    return build_payload(newer["receiver"], newer["groupLabels"], alerts, newer["externalURL"],
                         newer.get("truncatedAlerts", 0), key=newer.get("groupKey"))


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}


def group_labels(group_by: tuple[str, ...] | list[str], labels: dict[str, str]) -> dict[str, str]:
    """A group's labels, as grouping and `group_key` use them: the alert's value of every `group_by`
    label, "" for one it lacks (so an alert without the label groups with those that have it empty,
    and the key of an existing group is what it was when the group was made)."""
    return {name: labels.get(name, "") for name in group_by}


def group_key(receiver: str, group_labels: dict[str, str]) -> str:
    """`{}/<receiver>:{name="value", ...}`, labels sorted by name, values as they are (unquoted).
    Receivers key groups on this string, and state and outbox items saved by earlier versions carry
    it, so its form is kept as it was: it must not change for a group that exists."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return f"{{}}/{receiver}:{{{inner}}}"


def shown_group_labels(group_labels: dict[str, str]) -> dict[str, str]:
    """The payload's `groupLabels`: as in Alertmanager, a grouping label the alerts lack (or have empty,
    which is the same to Prometheus) is left out. Shown only: grouping and the groupKey keep it as ""."""
    return {k: v for k, v in group_labels.items() if v}


def build_payload(receiver: str, group_labels: dict[str, str], alerts: list[Alert], external_url: str,
                  truncated: int = 0, key: str | None = None) -> dict:
    """The webhook payload of a group (`group_labels` as `group_labels()` makes them). `key`: the
    groupKey of a payload this one stands for (`merged`, a carried resolve), kept as it was, since its
    groupLabels no longer show the empty labels it was made from."""
    return {
        "version": "4",
        "groupKey": group_key(receiver, group_labels) if key is None else key,
        "truncatedAlerts": truncated,
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": shown_group_labels(group_labels),
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [a.to_json() for a in alerts],
    }
