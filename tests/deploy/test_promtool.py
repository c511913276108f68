"""promtool, Prometheus's own checker: the config, the rules, the rules' unit tests, and the
PromQL of every dashboard panel. Skipped where promtool is absent (CI installs it: .ci/run)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from .paths import DASHBOARDS, PROMETHEUS_CONFIG, ROOT, RULE_TESTS, RULES
from .test_dashboards import dashboard_exprs

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus, as .ci/run does)"
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_config_is_valid_and_loads_the_rules():
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    # rule_files is a glob: a wrong path matches nothing and still passes, so check it matched.
    assert "SUCCESS: 1 rule files found" in result.stdout, result.stdout
    assert f"Checking {RULES}" in result.stdout, result.stdout


def test_rules_are_valid():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load(RULES.read_text())["groups"]
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_alerts_fire_when_they_should_and_only_then():
    # finsentry.rules.test.yml feeds series through the rules and states which alerts fire
    # when, with which labels and annotations.
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_query_parses(tmp_path):
    # promtool has no "check expression"; a rules file of recording rules is the way to parse
    # PromQL with Prometheus's own parser. Grafana's interval variables become fixed ranges.
    rules = []
    for path in DASHBOARDS:
        for i, expr in enumerate(dashboard_exprs(json.loads(path.read_text()))):
            expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
            rules.append({"record": f"dashboard:{path.stem}:q{i}", "expr": expr})
    assert rules
    file = tmp_path / "dashboards.rules.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", str(file))
    assert result.returncode == 0, result.stdout + result.stderr
