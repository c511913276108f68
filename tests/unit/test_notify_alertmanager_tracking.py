"""What the coordinator keeps to push to Alertmanager: an escalation is a new label set there, so
the anomaly's previous label set is pushed once more as resolved (issue 16)."""

from __future__ import annotations

from alerts.dispatch import Dispatcher
from alerts.payload import alert_from_event
from alerts.records import AnomalyEvent
from streams.agents import notify
from streams.agents.notify import apply, track_for_alertmanager
from streams.app import settings
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


def test_an_escalation_before_its_window_starts_on_this_clock_never_ends_before_it_starts() -> None:
    # a window may start up to the monitor's future skew ahead: Alertmanager refuses endsAt < startsAt,
    # and with it the whole push, every minute
    state = CoordinatorState(Dispatcher(()))
    warning = alert("open", "warning")
    track_for_alertmanager(state, warning, 1_714_557_500.0)  # 09:58:20, before the 10:00 window
    track_for_alertmanager(state, alert("update", "critical"), 1_714_557_540.0)  # 09:59:00
    assert state.alertmanager[warning.fingerprint]["endsAt"] == warning.starts_at == "2024-05-01T10:00:00.000Z"


def test_a_replayed_open_after_the_resolve_is_not_pushed_as_firing_again(monkeypatch) -> None:
    monkeypatch.setattr(notify, "settings", settings.model_copy(update={"alertmanager_url": "http://am.invalid:9093"}))
    state = CoordinatorState(Dispatcher(()))
    for step in ("open", "resolve"):
        apply(state, {"anomaly": event(step)}, 1_714_557_780.0)
    state.alertmanager.clear()  # the resolve was pushed and settled
    apply(state, {"anomaly": event("open")}, 1_714_557_840.0)  # a crash replays the open
    assert state.alertmanager == {}, "the alert would fire again in Alertmanager after its resolve"


def event(step: str) -> dict:
    return AnomalyEvent("a1", step, "negative_surge", "ticker:ACME", "2024-05-01T10:00:00.000Z",  # type: ignore[arg-type]
                        "2024-05-01T10:01:00.000Z", 9, 0.5, 7, "warning").to_json()
