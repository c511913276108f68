"""A real HTTP webhook receiver on 127.0.0.1, in a thread, for tests that drive a worker subprocess.

It records every POST with whether finsentry's signature verified, and answers with the status the
test scripts per path (default 200), so a failing receiver is a path away.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

from alerts.signing import verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    payload: dict
    valid_signature: bool
    at: float = 0.0  # time.time() on arrival


@dataclass
class WebhookSink:
    secret: bytes
    statuses: dict[str, int] = field(default_factory=dict)  # path -> status to answer
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = verify(self.secret, request.headers, body, time.time())
        self.received.append(Received(request.path, dict(request.headers), json.loads(body), valid, time.time()))
        return web.Response(status=self.statuses.get(request.path, 200))

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> WebhookSink:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            assert self._loop is not None
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        # A sink that never listened would show much later as a receiver that got nothing.
        assert ready.wait(120), "the webhook sink did not start listening within 120 s"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
