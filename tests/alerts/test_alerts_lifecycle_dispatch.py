"""Alert lifecycle as receivers rely on it (issue 16): whoever was told an alert fired is told it
resolved, exactly once; changes of severity are notified; nothing fires after its resolve. A change
of severity is a new label set, so a new fingerprint, as in Alertmanager: the old label set is
resolved then, so a receiver keyed by fingerprint or groupKey never keeps it open.

Driven with the real `alert_from_event` and `Dispatcher`, time injected, `due()` polled."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.dispatch import Dispatcher
from alerts.payload import Alert, alert_from_event
from alerts.receivers import Receiver
from alerts.records import SEVERITIES, AnomalyEvent, iso_utc
from alerts.silences import Matcher, Silence

T0 = 1_714_557_600.0  # 2024-05-01T10:00:00Z


def event(aid: str, step: str, severity: str, at: float, scope: str = "ticker:ACME", opened: float = 0.0) -> Alert:
    return alert_from_event(AnomalyEvent(aid, step, "negative_surge", scope, iso_utc(T0 + opened),  # type: ignore[arg-type]
                                         iso_utc(T0 + at), 9.0, 0.5, 7.0, severity))  # type: ignore[arg-type]


@dataclass
class Log:
    """Every alert each receiver was sent, in order: (t, anomaly id, status, severity, fingerprint)."""

    seen: dict[str, list[tuple[float, str, str, str, str]]] = field(default_factory=dict)

    def take(self, t: float, notifications) -> None:
        for n in notifications:
            for a in n.payload["alerts"]:
                self.seen.setdefault(n.receiver.name, []).append(
                    (t, a["labels"]["anomaly_id"], a["status"], a["labels"]["severity"], a["fingerprint"]))

    def of(self, receiver: str, aid: str | None = None) -> list[tuple[float, str, str]]:
        return [(t, s, sev) for t, i, s, sev, _ in self.seen.get(receiver, []) if aid is None or i == aid]


def check_invariants(log: Log) -> None:
    """Per receiver and alert (one episode each): every label set (fingerprint) a receiver heard fire
    is resolved exactly once after each time it fired, and the alert's last word is a resolve."""
    for receiver, rows in log.seen.items():
        for aid in {r[1] for r in rows}:
            statuses = [s for _, i, s, _, _ in rows if i == aid]
            assert statuses[0] == "firing" and statuses[-1] == "resolved", (receiver, aid, statuses)
            for fp in {r[4] for r in rows if r[1] == aid}:
                of_fp = [s for _, i, s, _, f in rows if i == aid and f == fp]
                assert of_fp[0] == "firing" and of_fp[-1] == "resolved", (receiver, aid, fp, of_fp)
                assert "resolved,resolved" not in ",".join(of_fp), (receiver, aid, fp, of_fp)


WARN = Receiver("warn-desk", "http://127.0.0.1:1/w", b"k", severities=frozenset({"warning"}),
                group_wait=0, group_interval=60, repeat_interval=3600)
ALL = Receiver("all-desk", "http://127.0.0.1:1/a", b"k", group_wait=0, group_interval=60, repeat_interval=3600)
PAGER = Receiver("pager", "http://127.0.0.1:1/p", b"k", severities=frozenset({"critical"}),
                 group_wait=0, group_interval=60, repeat_interval=3600)


def run(d: Dispatcher, script: dict[float, list[Alert]], until: float, every: float = 60.0) -> Log:
    """Ingest each scripted alert at its time and poll due() every `every` seconds, as the issue did."""
    log = Log()
    times = sorted({*script, *(k * every for k in range(int(until // every) + 1))})
    for t in times:
        for a in script.get(t, []):
            d.ingest(a, t)
        if t % every == 0:
            log.take(t, d.due(t))
    return log


def test_issue_scenario_escalate_deescalate_resolve_and_reopen() -> None:
    d = Dispatcher((WARN, ALL, PAGER))
    script = {
        0: [event("a1", "open", "warning", 60)],
        120: [event("a1", "update", "critical", 180)],       # escalation
        300: [event("a1", "update", "warning", 360)],        # de-escalation (a relabel, not the engine's peak rule)
        600: [event("a1", "resolve", "warning", 660)],
        610: [event("a1", "update", "critical", 600)],       # a replayed firing after the resolve: ignored
        1500: [event("a2", "open", "warning", 1560, opened=1500)],  # re-open in the same scope, within repeat
        2000: [event("a2", "resolve", "warning", 2040, opened=1500)],
    }
    log = run(d, script, until=4 * 3600)
    # Each change of severity fires the new label set and resolves the one the receiver knew.
    assert log.of("warn-desk", "a1") == [(0, "firing", "warning"), (120, "firing", "critical"),
                                         (120, "resolved", "warning"), (300, "firing", "warning"),
                                         (300, "resolved", "critical"), (600, "resolved", "warning")]
    assert log.of("all-desk", "a1") == log.of("warn-desk", "a1")
    # The pager starts following at the escalation, hears the de-escalation and the resolve.
    assert log.of("pager", "a1") == [(120, "firing", "critical"), (300, "firing", "warning"),
                                     (300, "resolved", "critical"), (600, "resolved", "warning")]
    assert log.of("warn-desk", "a2") == [(1500, "firing", "warning"), (2040, "resolved", "warning")]
    assert log.of("pager", "a2") == []
    check_invariants(log)
    assert d.groups == {} and d.holders == {}


def test_issue_scenario_as_reported_now_resolves_warn_desk_and_notifies_the_escalation() -> None:
    d = Dispatcher((WARN, ALL))
    log = run(d, {0: [event("a1", "open", "warning", 60)], 120: [event("a1", "update", "critical", 180)],
                  600: [event("a1", "resolve", "critical", 660)]}, until=4 * 3600)
    for name in ("warn-desk", "all-desk"):
        assert log.of(name) == [(0, "firing", "warning"), (120, "firing", "critical"),
                                (120, "resolved", "warning"), (600, "resolved", "critical")]


def test_an_escalation_resolves_the_old_group_when_severity_is_a_group_label() -> None:
    # grouped by severity, the warning's groupKey once never heard a resolve: a receiver that opens an
    # incident per groupKey (as PagerDuty integrations do) kept the warning open forever
    by_severity = Receiver("desk", "http://127.0.0.1:1/d", b"k", group_by=("scope", "severity"), group_wait=0,
                           group_interval=60, repeat_interval=3600)
    d = Dispatcher((by_severity,))
    sent = []
    for t, alerts in {0: [event("a1", "open", "warning", 60)], 120: [event("a1", "update", "critical", 180)],
                      600: [event("a1", "resolve", "critical", 660)]}.items():
        for alert in alerts:
            d.ingest(alert, t)
        sent += sorted((t, n.payload["groupLabels"]["severity"], n.payload["status"]) for n in d.due(t))
    assert sent == [(0, "warning", "firing"), (120, "critical", "firing"), (120, "warning", "resolved"),
                    (600, "critical", "resolved")]
    assert d.groups == {}


def test_escalation_waits_for_the_group_interval_and_changes_the_fingerprint() -> None:
    d = Dispatcher((ALL,))
    d.ingest(event("a1", "open", "warning", 60), 0)
    first = d.due(0)
    d.ingest(event("a1", "update", "critical", 120), 10)
    assert d.due(30) == []  # changes wait for the group interval
    second = d.due(60)
    before, after = first[0].payload["alerts"][0], second[0].payload["alerts"][0]
    assert after["labels"]["severity"] == "critical" and before["fingerprint"] != after["fingerprint"]


def test_annotation_only_updates_are_not_a_change() -> None:
    d = Dispatcher((ALL,))
    d.ingest(event("a1", "open", "warning", 60), 0)
    assert len(d.due(0)) == 1
    d.ingest(event("a1", "update", "warning", 120), 10)  # same labels, new window_end/score
    assert d.due(60) == [] and d.due(120) == []


def test_resolve_reaches_a_receiver_even_when_it_is_silenced_now() -> None:
    d = Dispatcher((ALL,))
    d.ingest(event("a1", "open", "warning", 60), 0)
    assert len(d.due(0)) == 1
    d.silences.add(Silence((Matcher("scope", "ticker:ACME"),), ends_at=10_000))
    d.ingest(event("a1", "resolve", "warning", 120), 100)
    out = d.due(120)
    assert [[a["status"] for a in n.payload["alerts"]] for n in out] == [["resolved"]]


def test_state_saved_before_holders_still_resolves() -> None:
    d = Dispatcher((WARN, ALL))
    d.ingest(event("a1", "open", "warning", 60), 0)
    d.due(0)
    old = json.loads(json.dumps(d.to_dict()))
    del old["holders"], old["ended"]
    for group in old["groups"].values():
        group["sent"] = {k: "firing" for k in group["sent"]}  # the marks of the old format
    restored = Dispatcher.from_dict(old, (WARN, ALL))
    restored.ingest(event("a1", "resolve", "critical", 120), 100)
    out = restored.due(120)
    assert sorted(n.receiver.name for n in out) == ["all-desk", "warn-desk"]


# --- property: random filters, random histories --------------------------------------------------

receivers_st = st.lists(
    st.tuples(st.sets(st.sampled_from(SEVERITIES), min_size=1), st.sampled_from([("scope",), ("severity",), ()]),
              st.sampled_from([0, 30]), st.sampled_from([60, 90]), st.sampled_from([300, 3600])),
    min_size=1, max_size=4,
)
# One anomaly's history: a severity per step, the gaps between steps; the last step resolves.
history_st = st.tuples(st.lists(st.sampled_from(SEVERITIES), min_size=1, max_size=6),
                       st.lists(st.integers(1, 400), min_size=6, max_size=6),
                       st.sampled_from(["ticker:ACME", "ticker:BETA"]), st.integers(0, 600))


silence_st = st.none() | st.tuples(st.sampled_from(["ticker:ACME", "ticker:BETA"]), st.integers(0, 1500),
                                   st.integers(1, 1500))


@settings(max_examples=150, deadline=None)
@given(receivers_st, st.lists(history_st, min_size=1, max_size=4), st.booleans(), silence_st)
def test_every_firing_gets_exactly_one_resolve_and_nothing_fires_after_it(specs, histories, replay, silence) -> None:
    receivers = tuple(
        Receiver(f"r{i}", "http://127.0.0.1:1/x", b"k", severities=frozenset(sev), group_by=gb, group_wait=gw,
                 group_interval=gi, repeat_interval=ri)
        for i, (sev, gb, gw, gi, ri) in enumerate(specs)
    )
    script: dict[float, list[Alert]] = {}
    last = 0.0
    for n, (severities, gaps, scope, start) in enumerate(histories):
        aid, t = f"a{n}", float(start)
        for step, severity in enumerate(severities):
            kind = "open" if step == 0 else "update"
            script.setdefault(t, []).append(event(aid, kind, severity, t, scope, opened=start))
            t += gaps[step]
        script.setdefault(t, []).append(event(aid, "resolve", severities[-1], t, scope, opened=start))
        if replay:  # a crash re-sends the last firing after the resolve
            script.setdefault(t + 1, []).append(event(aid, "update", severities[-1], t, scope, opened=start))
        last = max(last, t + 1)
    d = Dispatcher(receivers)
    if silence is not None:  # silences hold back firings; they must never swallow a resolve owed
        scope, begin, length = silence
        d.silences.add(Silence((Matcher("scope", scope),), ends_at=begin + length, starts_at=begin))
    log = Log()
    for t in sorted({*script, *range(0, int(last) + 4000, 10)}):
        for a in script.get(t, []):
            d.ingest(a, t)
        log.take(t, d.due(t))
    check_invariants(log)
    # Whoever the first firing routed to heard of the alert, if it lasted past a group's first flush.
    for n, (severities, gaps, scope, start) in enumerate(histories):
        lasted = sum(gaps[:len(severities)])
        if silence is not None and silence[0] == scope:
            continue
        for r in receivers:
            if severities[0] in r.severities and lasted > r.group_wait + r.group_interval + 10:
                assert log.of(r.name, f"a{n}"), (r.name, n)
    assert d.groups == {} and d.holders == {}
