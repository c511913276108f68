"""What the coordinator keeps to push to Alertmanager: an escalation is a new label set there, so
the anomaly's previous label set is pushed once more as resolved (issue 16)."""

from __future__ import annotations

from alerts.dispatch import Dispatcher
from alerts.payload import alert_from_event
from alerts.records import AnomalyEvent
from streams.agents.notify import track_for_alertmanager
from streams.notify_state import CoordinatorState


def alert(step: str, severity: str):
    return alert_from_event(AnomalyEvent("a1", step, "negative_surge", "ticker:ACME",  # type: ignore[arg-type]
                                         "2024-05-01T10:00:00.000Z", "2024-05-01T10:01:00.000Z", 9, 0.5, 7,
                                         severity))  # type: ignore[arg-type]


def test_escalation_resolves_the_previous_label_set_in_alertmanager() -> None:
    state = CoordinatorState(Dispatcher(()))
    warning, critical = alert("open", "warning"), alert("update", "critical")
    track_for_alertmanager(state, warning, 1_714_557_720.0)
    track_for_alertmanager(state, critical, 1_714_557_780.0)
    assert state.alertmanager[warning.fingerprint]["status"] == "resolved"
    assert state.alertmanager[warning.fingerprint]["endsAt"] == "2024-05-01T10:03:00.000Z"
    assert state.alertmanager[critical.fingerprint]["status"] == "firing"
    resolved = alert("resolve", "critical")
    track_for_alertmanager(state, resolved, 1_714_557_900.0)
    assert {fp: a["status"] for fp, a in state.alertmanager.items()} == {
        warning.fingerprint: "resolved", critical.fingerprint: "resolved"}


def test_state_kept_under_the_anomaly_id_by_an_older_version_is_replaced_not_resolved() -> None:
    state = CoordinatorState(Dispatcher(()))
    warning = alert("open", "warning")
    state.alertmanager["a1"] = {**warning.to_json(), "fingerprint": "a1"}
    track_for_alertmanager(state, alert("update", "warning"), 1_714_557_780.0)
    assert list(state.alertmanager) == [warning.fingerprint]
