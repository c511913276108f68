"""A real HTTP server on 127.0.0.1 for the scraper tests, serving routes the test sets up.

Hostile routes too, each bounded so that a client that does not give up still finishes: headers sent
a byte at a time, an endless body (capped at `endless_bytes`), redirects to any URL."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from streams.sources.scrape import PollResult, SeenStore, poll_once

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    declare_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    drip_seconds: float = 0.0  # pause between single bytes, for a body that trickles in
    header_drip_seconds: float = 0.0  # pause between single bytes of the status line and headers
    location: str | None = None  # a Location header (with a 3xx status: a redirect)
    endless_bytes: int = 0  # > 0: after `body`, zeros until this many bytes were sent (a /dev/zero over HTTP)


@dataclass
class FeedServer:
    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, headers) per GET

    def url(self, path: str) -> str:
        return self.base_url + path

    def headers_for(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@contextmanager
def serve() -> Iterator[FeedServer]:
    state = FeedServer(base_url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.header_drip_seconds:
                self._drip_headers(route)
                return
            not_modified = (route.etag is not None and self.headers.get("If-None-Match") == route.etag) or (
                route.last_modified is not None and self.headers.get("If-Modified-Since") == route.last_modified
            )
            self.send_response(304 if not_modified else route.status)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            if not_modified:
                self.end_headers()
                return
            self.send_header("Content-Type", route.content_type)
            if route.location:
                self.send_header("Location", route.location)
            if route.declare_length and not route.endless_bytes:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            try:
                if route.endless_bytes:
                    self.wfile.write(route.body)
                    zeros, sent = bytes(64 * 1024), len(route.body)
                    while sent < route.endless_bytes:
                        self.wfile.write(zeros)
                        sent += len(zeros)
                elif route.drip_seconds:
                    for i in range(len(route.body)):
                        self.wfile.write(route.body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(route.drip_seconds)
                else:
                    self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on purpose: that is what some tests check

        def _drip_headers(self, route: Route) -> None:
            """Status line and headers a byte at a time (with padding headers), then the body at once."""
            padding = "".join(f"X-Pad-{n}: {'a' * 20}\r\n" for n in range(20))
            head = (f"HTTP/1.0 {route.status} OK\r\nContent-Type: {route.content_type}\r\n{padding}"
                    f"Content-Length: {len(route.body)}\r\n\r\n").encode()
            try:
                for i in range(len(head)):
                    self.wfile.write(head[i : i + 1])
                    self.wfile.flush()
                    time.sleep(route.header_drip_seconds)
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def poll(client: httpx.Client, url: str, store_path: Path, **kwargs: Any) -> tuple[PollResult, list[dict[str, Any]]]:
    """One poll of `url` with a store opened for the occasion, as a restarted process would; returns
    the result and the records it emitted."""
    emitted: list[dict[str, Any]] = []
    with SeenStore(store_path) as store:
        result = poll_once(client, url, store, emitted.append, now=time.time(), **kwargs)
    return result, emitted


def old_store(path: Path, feed: str, keys: list[str]) -> None:
    """A store as versions before story fingerprints wrote it: the seen table holds keys alone."""
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE seen (feed TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL, "
                         "PRIMARY KEY (feed, key)); CREATE TABLE feeds (feed TEXT PRIMARY KEY, etag TEXT, "
                         "last_modified TEXT, failures INTEGER NOT NULL, polled_at REAL NOT NULL);")
        db.executemany("INSERT INTO seen VALUES (?, ?, 0)", [(feed, key) for key in keys])
    db.close()
