"""The anomaly record behind every alert's generatorURL: one per anomaly, built from its lifecycle
events. `GET /anomalies/{id}` answers it as JSON; a browser is sent to the console's case page, which
shows it (streams/views/anomaly_page.py, streams/console/templates/case.html).

`record(previous, event, received_at)` folds one `AnomalyEvent` into the page record; it is pure,
so the coordinator can keep the records in a table and tests can build them by hand.
"""

from __future__ import annotations

from typing import Any

from alerts.records import AnomalyEvent

MAX_HEADLINES = 50  # the page lists the stories behind the anomaly, up to this many


def page_url(external_url: str, anomaly_id: str) -> str:
    """An anomaly's page under a deployment's URL (`https://finsentry.example.com` ->
    `https://finsentry.example.com/anomalies/<id>`): every alert's generatorURL, anomalies' and
    cases' alike; "" where no URL is known."""
    return f"{external_url.rstrip('/')}/anomalies/{anomaly_id}" if external_url else ""


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
