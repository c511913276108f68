"""A real HTTP webhook receiver on 127.0.0.1 for the delivery tests, with scripted responses."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from alerts.signing import verify


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    valid_signature: bool

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """`script` is consumed one response per request: (status, headers); then 200."""

    secret: bytes
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None
    arrival_times: list[float] = field(default_factory=list)
    clock: Callable[[], float] = time.time

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrival_times.append(time.monotonic())
        status, headers = self.script.pop(0) if self.script else (200, {})
        if status == 200:
            self.received.append(Received(dict(request.headers), body,
                                          verify(self.secret, request.headers, body, self.clock())))
        return web.Response(status=status, headers=headers, text="ok" if status == 200 else "no")

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
