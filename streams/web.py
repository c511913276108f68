"""HTTP endpoints on each worker's Faust web server: /metrics, /healthz and /readyz.

Ready means what an orchestrator needs before sending traffic or counting the worker as healthy:
partitions assigned by the broker and the model loaded.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import metrics
from streams.agents.classify import classifier
from streams.app import app


def readiness() -> dict[str, bool]:
    try:
        assigned = bool(app.consumer.assignment())
    except Exception:  # consumer not started yet
        assigned = False
    return {"partitions_assigned": assigned, "model_loaded": classifier() is not None}


@app.page("/metrics")
async def metrics_view(web, request):
    return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@app.page("/healthz")
async def healthz(web, request):
    return web.json({"status": "ok"})


@app.page("/readyz")
async def readyz(web, request):
    checks = readiness()
    ready = all(checks.values())
    metrics.READY.set(1 if ready else 0)
    return web.json({"ready": ready, **checks}, status=200 if ready else 503)
