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


def test_the_demo_summary_tells_a_case_an_analyst_saw_from_one_nobody_saw() -> None:
    tally = Tally("alerts.anomalies", "cases.events")
    tally.case({"event": "auto_resolved", "outcome": "unfinished", "anomaly_id": "a3", "case_id": "case-a3",
                "reason": "last acknowledged by ana-2"})
    # an analyst's own resolve whose free-text outcome happens to read "unattended" is theirs
    tally.case({"event": "resolved", "outcome": "unattended", "anomaly_id": "a4", "case_id": "case-a4",
                "analyst": "ana-3"})
    assert tally.cases["a3"] == "closed while it waited for its next analyst: last acknowledged by ana-2"
    assert tally.cases["a4"] == "resolved by ana-3"


def test_the_topic_table_adds_up_to_the_stories_scored() -> None:
    # It showed the ten largest topics only: 1,704 of 2,200 stories, and a topic in "latest" was missing.
    from streams.demo import TOPICS_SHOWN, render

    tally = Tally("alerts.anomalies", "cases.events")
    for n in range(TOPICS_SHOWN + 3):
        for i in range(n + 1):
            tally.add("news.scored", {"id": f"s{n}-{i}", "topic": f"Topic {n:02d}", "sentiment": "negative",
                                      "sentiment_score": -0.5, "headline": f"Contoso item {n} {i}"})
    table = render(tally, sent=0, bad=0, elapsed=1.0)
    totals = [int(line.split()[-1]) for line in table.splitlines()
              if line.startswith("  Topic ") or "other topic(s)" in line]
    assert sum(totals) == len(tally.ids) == sum(range(1, TOPICS_SHOWN + 4))
    assert "  3 other topic(s)" in table
