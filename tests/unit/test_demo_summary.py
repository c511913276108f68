"""The demo's summary tells a case closed by rule from one the monitor resolved before anyone took it."""

from __future__ import annotations

from streams.demo import Tally


def test_the_demo_summary_says_when_no_analyst_took_a_case() -> None:
    tally = Tally("alerts.anomalies", "cases.events")
    tally.case({"event": "auto_resolved", "outcome": "unattended", "anomaly_id": "a1", "case_id": "case-a1",
                "reason": "no qualified analyst: nobody on the roster has a skill for topic:Credit"})
    tally.case({"event": "auto_resolved", "anomaly_id": "a2", "case_id": "case-a2",
                "reason": "severity info is below the auto-resolve threshold warning"})
    assert tally.cases["a1"] == ("closed before any analyst took it: no qualified analyst: nobody on the roster "
                                 "has a skill for topic:Credit")
    assert tally.cases["a2"].startswith("closed by the machine: severity info")
