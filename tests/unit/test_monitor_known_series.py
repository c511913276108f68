"""The monitor's and the scheduler's event counters exist at 0 from start-up, for every label value they can take.

A labelled counter is otherwise born at its first increment, and `increase()` cannot count the step
from "absent" to 1: the first anomaly of each kind, severity and event in each worker process, and
anomalies are rare, never showed on the dashboards; nor did the first case event of each type.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from prometheus_client import REGISTRY

from alerts.detectors import KINDS
from alerts.records import SEVERITIES, EventType
from streams import metrics

ROOT = Path(__file__).resolve().parents[2]


def test_every_anomaly_series_is_exposed_at_zero() -> None:
    metrics.expose_known_series((), (), (), ())
    for kind in KINDS:
        for severity in SEVERITIES:
            for event in get_args(EventType):
                labels = {"kind": kind, "severity": severity, "event": event}
                assert REGISTRY.get_sample_value("finsentry_anomalies_total", labels) is not None, labels


def test_every_case_event_series_is_exposed_at_zero() -> None:
    metrics.expose_known_series((), (), (), ())
    for event in metrics.CASE_EVENTS:
        assert REGISTRY.get_sample_value("finsentry_cases_total", {"event": event}) is not None, event


def test_the_case_events_are_the_ones_the_scheduler_makes() -> None:
    # CaseEvent.of("created", ...): the scheduler names every event where it makes it.
    made = set()
    for path in (ROOT / "scheduler").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "of"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "CaseEvent"):
                assert isinstance(node.args[0], ast.Constant), f"{path}: a case event named at run time"
                made.add(node.args[0].value)
    assert made and made == set(metrics.CASE_EVENTS), "keep streams.metrics.CASE_EVENTS the scheduler's events"
