"""Grafana dashboards and Prometheus rules only name metrics the worker declares.

A renamed metric in streams/metrics.py silently empties a panel or disarms an alert; these tests
turn that into a failure. Declared names come from `prometheus_client.REGISTRY` after importing
streams.metrics, so the catalogue itself is the reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml

from .paths import COMPOSE, DASHBOARDS, GRAFANA_DIR, RULES
from .promql import BUILTIN_SERIES, exposed_series, is_recorded, metric_names

EXPECTED_DASHBOARDS = {"pipeline", "sentiment", "analysts", "model"}


def dashboard_exprs(dashboard: dict) -> Iterator[str]:
    """Every PromQL expression in a dashboard: panel targets (rows included) and annotations."""
    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        expr = annotation.get("expr") or annotation.get("target", {}).get("expr")
        if expr:
            yield expr


def rule_exprs() -> Iterator[str]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]


def recorded_names() -> set[str]:
    return {r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "record" in r}


@pytest.fixture(scope="module")
def declared() -> set[str]:
    from prometheus_client import REGISTRY

    import streams.metrics  # noqa: F401  (registers every metric)

    names = {n for n in exposed_series(REGISTRY.collect()) if n.startswith("finsentry_")}
    assert len(names) > 20, "streams.metrics registered suspiciously few metrics"
    return names


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in DASHBOARDS}


def _referenced(exprs) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for expr in exprs:
        for name in metric_names(expr):
            out.setdefault(name, set()).add(expr)
    return out


def _check_names(referenced: dict[str, set[str]], declared: set[str], recorded: set[str]) -> list[str]:
    problems = []
    for name, exprs in sorted(referenced.items()):
        if name in BUILTIN_SERIES:
            continue
        known = recorded if is_recorded(name) else declared
        if name not in known:
            problems.append(f"{name} (in {min(exprs)!r})")
    return problems


def test_dashboard_queries_name_declared_metrics(dashboards, declared):
    exprs = [e for d in dashboards.values() for e in dashboard_exprs(d)]
    assert not _check_names(_referenced(exprs), declared, recorded_names())


def test_rules_name_declared_metrics(declared):
    assert not _check_names(_referenced(rule_exprs()), declared, recorded_names())


def test_every_declared_metric_is_shown_or_alerted_on(dashboards, declared):
    # _sum/_count of a histogram count as using it when its _bucket is used, and the reverse.
    used = set(_referenced([e for d in dashboards.values() for e in dashboard_exprs(d)] + list(rule_exprs())))
    families = {n.removesuffix(s) for n in used for s in ("_bucket", "_sum", "_count") if n.endswith(s)}
    unused = {n for n in declared if n not in used and not any(n == f + s for f in families
                                                                for s in ("_bucket", "_sum", "_count"))}
    assert not unused, f"metrics no dashboard or rule uses: {sorted(unused)}"


def test_the_checker_catches_an_unknown_name(declared):
    # Guards the guard: a typo must be reported, a recorded series must come from the rules file.
    referenced = _referenced(['sum(rate(finsentry_recrods_in_total[5m]))', "stage:nothing:rate5m", "up"])
    assert _check_names(referenced, declared, recorded_names()) == [
        "finsentry_recrods_in_total (in 'sum(rate(finsentry_recrods_in_total[5m]))')",
        "stage:nothing:rate5m (in 'stage:nothing:rate5m')",
    ]


def test_dashboards_are_provisionable_grafana_json(dashboards):
    datasource = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert set(dashboards) == EXPECTED_DASHBOARDS
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards)
    for name, d in dashboards.items():
        assert 36 <= d["schemaVersion"] <= 41, name
        assert d["title"] and d["uid"] and "id" not in d, f"{name}: provisioned dashboards carry no id"
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in d["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{name}/{panel['title']} is wider than the grid"
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, f"{name}/{panel['title']}"
            assert panel["targets"], f"{name}/{panel['title']} has no query"
            for target in panel["targets"]:
                assert target["expr"].strip() and target["datasource"]["uid"] == uid
        _assert_no_overlap(name, d["panels"])


def _assert_no_overlap(name: str, panels: list[dict]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{name}: {panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_sentiment_dashboard_annotates_anomalies(dashboards):
    annotations = [a for a in dashboards["sentiment"]["annotations"]["list"] if a.get("expr")]
    assert annotations and all(a["enable"] for a in annotations)
    assert any("finsentry_anomalies_total" in metric_names(a["expr"]) for a in annotations)


def test_provisioning_points_at_the_mounted_dashboards():
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    paths = {p["options"]["path"] for p in provider["providers"]}
    grafana = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert paths == {mounts["./deploy/grafana/dashboards"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (GRAFANA_DIR / "dashboards" / home.removeprefix(mounts["./deploy/grafana/dashboards"] + "/")).is_file()


# How panels that count events choose their ranges: test_dashboard_ranges.py.
