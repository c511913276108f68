"""`finsentry receiver`: a webhook receiver that verifies finsentry's signature and prints each alert.

It checks X-Finsentry-Signature-V2 (over the timestamp, the notification id and the body) when the
request carries it, else the first signature; `--require-signature-v2` refuses a request without it.

For demos and docker-compose: it shows what a real receiver sees, and a wrong shared secret shows
up as 401s here and as dead-lettered deliveries at the worker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TextIO

from aiohttp import web

from alerts.signing import verify
from streams.commands.broker import port_arg
from streams.usage import UsageError

MAX_BODY = 1024 * 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("receiver", help="demo webhook receiver: verify signatures, print alerts")
    p.add_argument("--port", type=port_arg(1), default=9000, help="port to listen on (default 9000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only; "
                   "0.0.0.0 for every interface, as in a container)")
    p.add_argument("--secret-env", default="FINSENTRY_WEBHOOK_SECRET",
                   help="environment variable holding the shared secret (default FINSENTRY_WEBHOOK_SECRET)")
    p.add_argument("--require-signature-v2", action="store_true",
                   help="refuse a request without X-Finsentry-Signature-V2 (which also covers the notification id); "
                        "it is checked whenever present either way")
    p.set_defaults(handler=run)


def alert_lines(payload: dict) -> list[str]:
    """One line per alert: status, alertname, scope, severity, summary."""
    lines = []
    for alert in payload.get("alerts") or []:
        labels, annotations = alert.get("labels") or {}, alert.get("annotations") or {}
        lines.append(" ".join((alert.get("status", "?"), labels.get("alertname", "?"), labels.get("scope", "?"),
                               # a case notification keeps its severity in annotations: a changed label
                               # would be another alert (docs/SCHEDULER.md, "Case notifications")
                               labels.get("severity") or annotations.get("severity", "?"),
                               annotations.get("summary", ""))))
    return lines


def application(secret: bytes, out: TextIO = sys.stdout, require_v2: bool = False) -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(secret, request.headers, body, time.time(), require_v2=require_v2):
            print(f"rejected: bad or stale signature from {request.remote}", file=out, flush=True)
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            payload = json.loads(body)
            lines = alert_lines(payload)
        except (ValueError, AttributeError, TypeError):
            return web.json_response({"error": "not an Alertmanager webhook payload"}, status=400)
        for line in lines:
            print(line, file=out, flush=True)
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/{path:.*}", hook)
    return app


def run(args: argparse.Namespace) -> int:
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        raise UsageError(f"environment variable {args.secret_env} is unset or empty; export the shared "
                         "secret the workers' receivers file names")
    print(f"receiver on http://{args.host}:{args.port}/ (secret from {args.secret_env})", file=sys.stderr, flush=True)
    web.run_app(application(secret.encode(), require_v2=args.require_signature_v2), host=args.host, port=args.port,
                print=None)
    return 0
