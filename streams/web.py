"""HTTP endpoints on each worker's Faust web server: /metrics, /healthz and /readyz.

Ready means what an orchestrator needs before sending traffic or counting the worker as healthy:
partitions of the agents' topics assigned by the broker and the model loaded (streams/health.py,
which also keeps `finsentry_ready` current between calls).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.app import app
from streams.health import readiness


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
    return web.json({"ready": ready, **checks}, status=200 if ready else 503)
