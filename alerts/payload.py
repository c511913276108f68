"""Alerts and the Prometheus Alertmanager webhook payload (version "4").

Shape as documented for Alertmanager's webhook_config, so any receiver written for Alertmanager
(and Alertmanager's own tooling) can consume finsentry notifications unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from alerts.records import AnomalyEvent

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing
Status = Literal["firing", "resolved"]


@dataclass(frozen=True)
class Alert:
    status: Status
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    generator_url: str
    fingerprint: str

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


def alert_from_event(event: AnomalyEvent, generator_url: str = "") -> Alert:
    """The alert an anomaly event stands for; the anomaly id is its fingerprint and a label.

    The id label keeps two successive anomalies of one kind and scope apart, as distinct alerts.
    """
    resolved = event.event == "resolve"
    summary = (f"{event.kind.replace('_', ' ')} in {event.scope}: observed {event.observed:g}, "
               f"expected {event.expected:.2f} (score {event.score:.1f})")
    return Alert(
        status="resolved" if resolved else "firing",
        labels={"alertname": event.kind, "scope": event.scope, "severity": event.severity,
                "anomaly_id": event.anomaly_id},
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
        fingerprint=event.anomaly_id,
    )


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}


def group_key(receiver: str, group_labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return f"{{}}/{receiver}:{{{inner}}}"


def build_payload(receiver: str, group_labels: dict[str, str], alerts: list[Alert], external_url: str,
                  truncated: int = 0) -> dict:
    return {
        "version": "4",
        "groupKey": group_key(receiver, group_labels),
        "truncatedAlerts": truncated,
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": dict(group_labels),
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [a.to_json() for a in alerts],
    }
