"""Dashboard ranges are `$__rate_interval`, so an increase between two scrapes is in exactly one step.

`increase(x[$__interval])` at a step equal to its range leaves out the increase between the last
sample of one range and the first of the next: an anomaly opened there showed in no step at all (a
gap), and at a step of one or two scrapes most of them did. Grafana's `$__rate_interval` is the step
plus one scrape interval (at least four scrapes): consecutive ranges share one sample, so every
increase between two scrapes falls in exactly one range. The step must be at least four scrapes
(a panel's minimum `interval`, an annotation's `step`), or the range outgrows it and counts an event
in several steps.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .paths import DASHBOARDS, GRAFANA_DIR, PROMETHEUS_CONFIG, ROOT
from .promql import metric_names
from .test_dashboards import dashboard_exprs

RANGE = re.compile(r"\[([^\]]+)\]")
DURATION = re.compile(r"^(\d+)(s|m|h)$")


def seconds(duration: str) -> int:
    match = DURATION.match(duration)
    assert match, f"not a plain duration: {duration!r}"
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def scrape_seconds() -> int:
    """The scrape interval, which Grafana is told (timeInterval) to derive $__rate_interval from."""
    scrape = seconds(yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"])
    datasource = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert seconds(datasource["datasources"][0]["jsonData"]["timeInterval"]) == scrape
    return scrape


def rate_interval(step: int, scrape: int) -> int:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 * scrape interval)."""
    return max(step + scrape, 4 * scrape)


def panels(items: list[dict]):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def counting_queries() -> list[tuple[str, str, int | None]]:
    """(dashboard, where, the step's minimum in seconds or None) of every query with a range."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                if RANGE.search(target["expr"]):
                    found.append((path.stem, panel["title"], seconds(panel["interval"]) if "interval" in panel else None))
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if RANGE.search(annotation.get("expr", "")):
                found.append((path.stem, f"annotation {annotation['name']}", seconds(annotation["step"])))
    return found


def test_every_range_is_the_rate_interval():
    exprs = [(path.stem, expr) for path in DASHBOARDS for expr in dashboard_exprs(json.loads(path.read_text()))]
    ranges = {(name, expr, found) for name, expr in exprs for found in RANGE.findall(expr)}
    assert ranges, "no dashboard query has a range"
    assert not {r for r in ranges if r[2] != "$__rate_interval"}


def test_event_counts_step_at_least_four_scrapes():
    # increase() counts events per step: with a shorter step, $__rate_interval (at least four scrapes)
    # is longer than the step plus one scrape, and one event shows in several steps.
    scrape = scrape_seconds()
    counting = [(name, where, step) for name, where, step in counting_queries()
                if any("increase(" in e for e in exprs_of(name, where))]
    assert ("sentiment", "Anomaly events", 60) in counting and ("sentiment", "annotation Anomalies", 60) in counting
    for name, where, step in counting:
        assert step is not None and step >= 4 * scrape, (name, where, step)


def exprs_of(dashboard: str, where: str) -> list[str]:
    data = json.loads(next(p for p in DASHBOARDS if p.stem == dashboard).read_text())
    if where.startswith("annotation "):
        return [a.get("expr", "") for a in data["annotations"]["list"] if f"annotation {a['name']}" == where]
    return [t["expr"] for p in panels(data["panels"]) if p["title"] == where for t in p.get("targets", [])]


PROMTOOL = shutil.which("promtool")


def grafana_ranges(expr: str, step: int, scrape: int, offset: int) -> str:
    """The query as Prometheus runs it at a step of `step` seconds: Grafana's range variables as
    durations, each range `offset` seconds back (scrapes are not aligned to the steps)."""
    ranges = {"$__rate_interval": rate_interval(step, scrape), "$__interval": step}
    return RANGE.sub(lambda m: f"[{ranges[m[1]]}s] offset {offset}s" if m[1] in ranges else m[0], expr)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus, as .ci/run does)")
@pytest.mark.parametrize(("dashboard", "where"), [("sentiment", "Anomaly events"), ("sentiment", "annotation Anomalies")])
def test_one_event_shows_in_exactly_one_step(tmp_path: Path, dashboard: str, where: str):
    # A counter steps 0 -> 1 once, between two consecutive scrapes, one series for each pair of scrapes
    # a step holds; the dashboard's own query runs at each step (its minimum interval) through
    # Prometheus' increase(), with the ranges Grafana gives it. Each event shows in exactly one step.
    [expr] = exprs_of(dashboard, where)
    [metric] = metric_names(expr)
    [step] = [step for name, place, step in counting_queries() if (name, place) == (dashboard, where)]
    scrape, steps = scrape_seconds(), 10
    grouped = re.search(r"by \(([^)]*)\)", expr)
    assert grouped and "event" in grouped[1], expr
    constant = {name.strip(): "x" for name in grouped[1].split(",")}
    series, expected = [], []
    for gap in range(step // scrape):
        before = 8 + gap  # the event between scrape `before - 1` and scrape `before`
        labels = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted({**constant, "event": f"gap{gap}"}.items())) + "}"
        values = " ".join(["0"] * before + ["1"] * (steps * step // scrape + 4 - before))
        series.append({"series": metric + labels, "values": values})
        expected.append({"labels": labels, "value": 1})
    shown = f"(({grafana_ranges(expr, step, scrape, offset=5)}) > bool 0)"
    test = {"expr": f"sum_over_time({shown}[{steps * step}s:{step}s])", "eval_time": f"{steps * step}s",
            "exp_samples": expected}
    file = tmp_path / "ranges.test.yml"
    file.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": f"{step}s", "tests": [
        {"interval": f"{scrape}s", "input_series": series, "promql_expr_test": [test]}]}))
    result = subprocess.run([PROMTOOL, "test", "rules", str(file)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
