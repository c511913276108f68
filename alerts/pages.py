"""The anomaly page behind every alert's generatorURL: one record per anomaly, built from its
lifecycle events, and its HTML rendering (Jinja2, everything escaped).

`record(previous, event, received_at)` folds one `AnomalyEvent` into the page record; it is pure,
so the coordinator can keep the records in a table and tests can build them by hand.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

from alerts.records import AnomalyEvent

MAX_HEADLINES = 50  # the page lists the stories behind the anomaly, up to this many


def record(previous: dict[str, Any] | None, event: AnomalyEvent, received_at: float) -> dict[str, Any]:
    """The page record after `event`; a repeated event (a replay) changes nothing but is harmless."""
    page = dict(previous) if previous else {
        "anomaly_id": event.anomaly_id, "kind": event.kind, "scope": event.scope,
        "window_start": event.window_start, "history": [], "headlines": [],
    }
    step = {"event": event.event, "severity": event.severity, "score": event.score, "observed": event.observed,
            "expected": event.expected, "window_end": event.window_end, "received_at": received_at}
    history = list(page["history"])
    if not any({**h, "received_at": 0} == {**step, "received_at": 0} for h in history):
        history.append(step)
    samples = event.samples or [{"id": i, "headline": h, "sentiment": None, "confidence": None}
                                for i, h in zip(event.sample_ids, event.headlines, strict=False)]
    headlines = list(page["headlines"])
    known = {h["id"] for h in headlines}
    for sample in samples:
        if sample["id"] not in known and len(headlines) < MAX_HEADLINES:
            headlines.append(dict(sample))
            known.add(sample["id"])
    latest = max(history, key=lambda h: h["window_end"])
    page.update(
        history=history, headlines=headlines, window_end=latest["window_end"], observed=latest["observed"],
        expected=latest["expected"], score=latest["score"], severity=latest["severity"],
        status="resolved" if any(h["event"] == "resolve" for h in history) else "open",
    )
    return page


def expired(items: list[tuple[str, dict[str, Any] | None]], cutoff: float) -> list[str]:
    """Keys of the pages of anomalies that resolved and heard nothing since `cutoff` (epoch seconds)."""
    return [key for key, page in items
            if page and page.get("status") == "resolved" and max(h["received_at"] for h in page["history"]) < cutoff]


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ p.kind | replace('_', ' ') }} in {{ p.scope }} ({{ p.severity }}, {{ p.status }})</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } .critical { color: #b00020; } .warning { color: #a05a00; } .num { text-align: right; }
</style></head>
<body>
<h1>{{ p.kind | replace('_', ' ') }} in {{ p.scope }}</h1>
<p><strong class="{{ p.severity }}">{{ p.severity }}</strong> &middot; {{ p.status }} &middot;
anomaly <code>{{ p.anomaly_id }}</code></p>
<table>
<tr><th>Scope</th><td>{{ p.scope }}</td></tr>
<tr><th>Window</th><td>{{ p.window_start }} &ndash; {{ p.window_end }}</td></tr>
<tr><th>Observed</th><td>{{ p.observed }}</td></tr>
<tr><th>Expected</th><td>{{ '%.2f' | format(p.expected) }}</td></tr>
<tr><th>Score</th><td>{{ p.score }}</td></tr>
<tr><th>Case</th><td>{% if case %}<code>{{ case.case_id }}</code> &middot; {{ case.status }}
{%- if case.analyst %} &middot; {{ case.analyst }}{% endif %}{% elif case_id %}<code>{{ case_id }}</code>
(state held by the scheduler's worker){% else %}none{% endif %}</td></tr>
</table>
<h2>Severity history</h2>
<table><tr><th>Event</th><th>Severity</th><th class="num">Score</th><th class="num">Observed</th>
<th class="num">Expected</th><th>Window end</th></tr>
{% for h in p.history %}<tr><td>{{ h.event }}</td><td class="{{ h.severity }}">{{ h.severity }}</td>
<td class="num">{{ h.score }}</td><td class="num">{{ h.observed }}</td><td class="num">{{ '%.2f' | format(h.expected) }}</td>
<td>{{ h.window_end }}</td></tr>
{% endfor %}</table>
<h2>Headlines</h2>
<table><tr><th>Headline</th><th>Label</th><th class="num">Confidence</th><th>Story id</th></tr>
{% for h in p.headlines %}<tr><td>{{ h.headline }}</td><td>{{ h.sentiment or '' }}</td>
<td class="num">{% if h.confidence is not none %}{{ '%.2f' | format(h.confidence) }}{% endif %}</td>
<td><code>{{ h.id }}</code></td></tr>
{% else %}<tr><td colspan="4">no sample stories recorded</td></tr>{% endfor %}</table>
</body></html>
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_PAGE = _ENV.from_string(_TEMPLATE)


def render_html(page: dict[str, Any], case: dict[str, Any] | None = None, case_id: str | None = None) -> str:
    return _PAGE.render(p=page, case=case, case_id=case_id)
