"""Metric names in PromQL, and the series names a registry or a /metrics page exposes.

Small on purpose: enough PromQL to pull the metric names out of the expressions this project
writes (dashboards, recording and alerting rules), not a parser. Used by the deploy tests against
`prometheus_client.REGISTRY`, and usable against a live worker:

    families = text_string_to_metric_families(httpx.get(".../metrics").text)
    missing = metric_names(expr) - exposed_series(families)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Words that look like identifiers but are PromQL syntax.
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
     "atan2", "inf", "nan"}
)
# Series Prometheus itself creates, not the worker.
BUILTIN_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABELS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
# Label lists after by/without/on/ignoring/group_left/group_right name labels, not metrics.
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_GRAFANA_VAR = re.compile(r"\$\{?\w+\}?")
# Not preceded by a word character, so the `e3` of 1e3 and the `h` of `offset 1h` are skipped.
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by one PromQL expression (Grafana $variables allowed)."""
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VAR.sub("1m", text)
    text = _LABELS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in KEYWORDS:
            continue  # a function or aggregation, or syntax
        names.add(name)
    return names


def is_recorded(name: str) -> bool:
    """Recording-rule outputs follow level:metric:operations and so contain a colon."""
    return ":" in name


def exposed_series(families: Iterable[object]) -> set[str]:
    """Series names a set of metric families exposes, whether or not they have samples yet.

    Accepts families from `REGISTRY.collect()` or from `text_string_to_metric_families` (objects
    with `.name` and `.type`). Labelled metrics with no children yet have no samples, so names are
    derived from the family type rather than read from samples: a counter `x` exposes `x_total`,
    a histogram `x_bucket`/`x_sum`/`x_count`, an Info `x` exposes `x_info`.
    """
    names: set[str] = set()
    for family in families:
        name, kind = family.name, family.type
        if kind == "counter":
            names.add(name if name.endswith("_total") else name + "_total")
        elif kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
        elif kind == "summary":
            names.update({name, name + "_sum", name + "_count"})
        elif kind == "info":
            names.add(name + "_info")
        else:  # gauge, untyped, and Info as the text format writes it (a gauge named x_info)
            names.add(name)
    return names
