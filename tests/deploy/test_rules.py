"""Alert rules are actionable (severity, summary, description, a runbook that exists) and
docs/OPERATIONS.md's metrics table is the catalogue in streams/metrics.py."""

from __future__ import annotations

import re

import pytest
import yaml

from .paths import OPERATIONS, PROMETHEUS_CONFIG, RULES

SEVERITIES = {"critical", "warning", "info"}
# The alerts the deployment promises (issue: Prometheus metrics, Grafana dashboards, compose).
REQUIRED_ALERTS = {
    "FinsentryPipelineStalled", "FinsentryDeadLetterRateHigh", "FinsentryConsumerLagHigh",
    "FinsentryConsumerLagGrowing", "FinsentryWebhookFailing", "FinsentryWebhookDeadLetter", "FinsentryCasesOverSLA",
    "FinsentryModelProviderUnexpected", "FinsentryWorkerNotReady", "FinsentryAlertmanagerPushFailing",
    "FinsentryLateStories",  # the detectors miss late stories: a feed polled less often than the lateness
}
# runbook_url: an absolute link from the `runbook_base` external label, with a default (issue 16).
RUNBOOK = re.compile(r'^\{\{ or \$externalLabels\.runbook_base "(https://[^"]+)" \}\}/OPERATIONS\.md#(\w+)$')


def _alerts() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)}


def test_required_alerts_exist_once_each():
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names))
    assert REQUIRED_ALERTS <= set(names), REQUIRED_ALERTS - set(names)


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_is_actionable(alert):
    assert alert["labels"]["severity"] in SEVERITIES
    notes = alert["annotations"]
    assert notes["summary"].strip() and notes["description"].strip()
    link = RUNBOOK.match(notes["runbook_url"])
    assert link, f"runbook_url must be absolute, from runbook_base: {notes['runbook_url']!r}"
    anchor = link.group(2)
    assert anchor == alert["alert"].lower()
    assert anchor in _anchors(OPERATIONS.read_text()), f"no '### {alert['alert']}' section in docs/OPERATIONS.md"


def test_runbook_base_is_set_once_and_dropped_from_alert_labels():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    base = config["global"]["external_labels"]["runbook_base"]
    assert base.startswith("https://")
    assert {"action": "labeldrop", "regex": "runbook_base"} in config["alerting"]["alert_relabel_configs"]
    defaults = {RUNBOOK.match(a["annotations"]["runbook_url"]).group(1) for a in _alerts()}
    assert defaults == {base}


def test_metrics_table_matches_the_catalogue():
    from prometheus_client.metrics import MetricWrapperBase

    import streams.metrics as catalogue

    suffix = {"counter": "_total", "histogram": "_bucket", "info": "_info"}
    declared = {
        m._name + suffix.get(m._type, ""): (m._type, set(m._labelnames))
        for m in vars(catalogue).values() if isinstance(m, MetricWrapperBase)
    }
    documented = {}
    for row in re.findall(r"^\| `(finsentry_\w+)`[^|]*\| (\w+) \|([^|]*)\|", OPERATIONS.read_text(), re.MULTILINE):
        name, kind, labels = row
        documented[name] = (kind, set(re.findall(r"`(\w+)`", labels)))
    # Info labels are set when the model loads (streams/agents/classify.py), not declared.
    for name, (kind, labels) in declared.items():
        if kind == "info":
            declared[name] = (kind, documented.get(name, (kind, set()))[1])
            assert declared[name][1] >= {"provider", "version"}
    assert documented == declared
