"""The pure dispatcher: group_wait, group_interval, repeat_interval, resolved once, silences."""

from __future__ import annotations

import json

from alerts.dispatch import Dispatcher
from alerts.engine import AnomalyEvent
from alerts.payload import alert_from_event
from alerts.receivers import Receiver
from alerts.silences import Matcher, Silence

RECEIVER = Receiver("ops", "http://127.0.0.1:1/hook", b"k", group_by=("scope",), group_wait=10, group_interval=60,
                    repeat_interval=600)
CRITICAL_ONLY = Receiver("pager", "http://127.0.0.1:1/p", b"k", severities=frozenset({"critical"}))


def alert(aid: str, scope: str = "ticker:ACME", step: str = "open", severity: str = "warning"):
    return alert_from_event(AnomalyEvent(aid, step, "negative_surge", scope, "2024-05-01T10:00:00.000Z",  # type: ignore[arg-type]
                                         "2024-05-01T10:01:00.000Z", 8, 0.5, 6, severity))  # type: ignore[arg-type]


def fingerprints(notifications) -> list[list[tuple[str, str]]]:
    """(anomaly id, status) per alert per notification: the id is the alert's identity."""
    return [[(a["labels"]["anomaly_id"], a["status"]) for a in n.payload["alerts"]] for n in notifications]


def test_group_wait_then_interval_then_repeat_and_resolved_once() -> None:
    d = Dispatcher((RECEIVER, CRITICAL_ONLY))
    d.ingest(alert("a"), now=0)
    d.ingest(alert("b"), now=5)  # same scope, same group, within group_wait
    assert d.due(9) == []
    first = d.due(10)
    assert fingerprints(first) == [[("a", "firing"), ("b", "firing")]] and first[0].receiver.name == "ops"
    assert d.due(70) == []  # nothing changed, repeat interval not reached
    d.ingest(alert("c"), now=75)
    assert d.due(100) == []  # changes wait for the group interval
    assert fingerprints(d.due(130)) == [[("a", "firing"), ("b", "firing"), ("c", "firing")]]
    assert d.due(190) == [] and d.due(700) == []  # 700 - 130 < 600
    assert len(d.due(760)) == 1  # repeat of unchanged firing group
    d.ingest(alert("a", step="resolve"), now=761)
    assert fingerprints(d.due(820)) == [[("a", "resolved"), ("b", "firing"), ("c", "firing")]]
    d.ingest(alert("b", step="resolve"), now=821)
    d.ingest(alert("c", step="resolve"), now=821)
    assert fingerprints(d.due(880)) == [[("b", "resolved"), ("c", "resolved")]]
    assert d.due(2000) == [] and d.groups == {}


def test_groups_by_label_and_filters_by_severity() -> None:
    d = Dispatcher((RECEIVER, CRITICAL_ONLY))
    d.ingest(alert("a", "ticker:ACME"), now=0)
    d.ingest(alert("b", "ticker:BETA", severity="critical"), now=0)
    out = d.due(30)
    keys = sorted((n.receiver.name, n.payload["groupKey"]) for n in out)
    assert keys == [("ops", '{}/ops:{scope="ticker:ACME"}'), ("ops", '{}/ops:{scope="ticker:BETA"}'),
                    ("pager", '{}/pager:{scope="ticker:BETA"}')]


def test_silenced_alerts_are_held_back_until_the_silence_ends() -> None:
    d = Dispatcher((RECEIVER,))
    d.silences.add(Silence((Matcher("scope", "ticker:.*", is_regex=True),), ends_at=100))
    d.ingest(alert("a"), now=0)
    assert d.due(10) == [] and d.due(70) == []
    assert fingerprints(d.due(130)) == [[("a", "firing")]]


def test_state_round_trips_through_json() -> None:
    d = Dispatcher((RECEIVER,))
    d.ingest(alert("a"), now=0)
    d.due(10)
    restored = Dispatcher.from_dict(json.loads(json.dumps(d.to_dict())), (RECEIVER,))
    d.ingest(alert("b"), now=20)
    restored.ingest(alert("b"), now=20)
    assert fingerprints(d.due(70)) == fingerprints(restored.due(70)) == [[("a", "firing"), ("b", "firing")]]
