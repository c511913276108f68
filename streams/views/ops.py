"""HTTP endpoints on each worker's Faust web server: /metrics, /healthz and /readyz.

Ready means what an orchestrator needs before sending traffic or counting the worker as healthy:
partitions of the agents' topics assigned by the broker, every table recovered, the model loaded,
and no agent crashed (streams/health.py, which also keeps `finsentry_ready` current between calls).
The body lists the failing checks and, after a crash, the agents and their errors.
"""

from __future__ import annotations

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.failures import FAILURES
from streams.health import readiness, stalled

blueprint = faust.web.Blueprint("ops")


@blueprint.route("/metrics", name="metrics")
async def metrics_view(web, request):
    return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@blueprint.route("/healthz", name="healthz")
async def healthz(web, request):
    return web.json({"status": "ok"})


@blueprint.route("/readyz", name="readyz")
async def readyz(web, request):
    checks = readiness()
    ready = all(checks.values())
    body = {"ready": ready, **checks, "failing": [name for name, ok in checks.items() if not ok]}
    if FAILURES.any:
        body["crashed_agents"] = dict(FAILURES.crashed)
    if not checks["partitions_progressing"]:
        body["stalled_partitions"] = {f"{tp.topic}/{tp.partition}": round(seconds) for tp, seconds in stalled().items()}
    return web.json(body, status=200 if ready else 503)
