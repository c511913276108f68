"""GET /anomalies/{id}: the page every alert's generatorURL points to.

The notify coordinator keeps one record per anomaly (alerts/pages.py) in the single-partition
table `notify-anomalies`; any worker answers by routing the request to that table's owner. JSON
for `Accept: application/json`, an HTML page otherwise. The anomaly's case is included in full
when this worker also holds the scheduler state, else named by its id.
"""

from __future__ import annotations

from typing import Any

import faust

from alerts.pages import render_html
from scheduler.cases import case_id_for
from streams import case_state
from streams.app import app
from streams.notify_state import anomaly_pages

blueprint = faust.web.Blueprint("anomaly_page")


def wants_json(request: Any) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept.split(",")[0]


@blueprint.route("/anomalies/{anomaly_id}", name="anomaly")
class AnomalyView(faust.web.View):
    @app.table_route(table=anomaly_pages, match_info="anomaly_id")
    async def get(self, request: Any, anomaly_id: str) -> Any:
        page = anomaly_pages.get(anomaly_id)
        if page is None:
            message = f"no anomaly {anomaly_id!r} (unknown id, or not seen by this deployment)"
            if wants_json(request):
                return self.json({"error": message}, status=404)
            return self.html(render_missing(message), status=404)
        case_id = case_id_for(anomaly_id)
        here = case_state.is_owner()
        case = case_state.load().case(case_id) if here else None
        if wants_json(request):
            held = case if here else {"case_id": case_id, "detail": "held by the worker that owns the scheduler"}
            return self.json({**page, "case": held})
        return self.html(render_html(page, case, None if here else case_id))


def render_missing(message: str) -> str:
    from markupsafe import escape

    return f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>" \
           f"<body><h1>Not found</h1><p>{escape(message)}</p></body></html>"
