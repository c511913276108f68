"""GET /anomalies/{id}: where every alert's generatorURL points.

A browser (anything not asking for JSON) is sent to the console's page for the anomaly's case,
`/console/cases/case-<id>` (streams/console/views.py): one view of an anomaly and its case, behind the
console's sign-in, which brings the analyst back here afterwards. JSON (`Accept: application/json`)
is answered from the notify coordinator's record (alerts/pages.py) in the single-partition table
`notify-anomalies`; any worker answers by routing the request to that table's owner. The case is
named with its console page, never shown: this route needs no token (alerts link here), and who
holds a case and how it ended are the console's and the cases API's to show, to those allowed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import faust
from aiohttp import web

from scheduler.cases import case_id_for
from streams.app import app
from streams.notify_state import anomaly_pages

blueprint = faust.web.Blueprint("anomaly_page")


def wants_json(request: Any) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept.split(",")[0]


def console_page(anomaly_id: str) -> str:
    """The console's case page for an anomaly (every anomaly becomes a case, `case-<anomaly id>`)."""
    return "/console/cases/" + quote(case_id_for(anomaly_id), safe="")


@blueprint.route("/anomalies/{anomaly_id}", name="anomaly")
class AnomalyView(faust.web.View):
    async def get(self, request: Any, anomaly_id: str) -> Any:
        if not wants_json(request):  # before routing: any worker can send a browser on
            return web.Response(status=303, headers={"Location": console_page(anomaly_id)})
        return await self.record(request, anomaly_id)

    @app.table_route(table=anomaly_pages, match_info="anomaly_id")
    async def record(self, request: Any, anomaly_id: str) -> Any:
        page = anomaly_pages.get(anomaly_id)
        if page is None:
            return self.json({"error": f"no anomaly {anomaly_id!r} (unknown id, or not seen by this deployment)"},
                             status=404)
        return self.json({**page, "case": {"case_id": case_id_for(anomaly_id), "console": console_page(anomaly_id)}})
