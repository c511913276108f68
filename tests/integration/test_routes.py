"""Every route the web port serves is deliberate: listed in docs/SECURITY.md with the credentials it
requires, and a running worker refuses each protected one without them."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
SECURITY = Path(__file__).resolve().parents[2] / "docs" / "SECURITY.md"
ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \| (none|analyst or operator|analyst|operator|session|sign-in) \|",
                 re.MULTILINE)


def documented() -> dict[tuple[str, str], str]:
    return {(method, path): auth for method, path, auth in ROW.findall(SECURITY.read_text())}


def served() -> set[tuple[str, str]]:
    """The routes of a worker's web server, as Faust builds them for `finsentry worker`."""
    import streams.app
    import streams.worker  # registers every agent and view

    web = streams.app.app.web

    async def build() -> set[tuple[str, str]]:
        web.blueprints.apply(web)
        return {(route.method, route.resource.canonical) for route in web.web_app.router.routes()
                if route.method != "HEAD" and route.resource is not None}

    return asyncio.run(build())


def test_every_served_route_is_documented_and_every_documented_route_served() -> None:
    table, routes = documented(), served()
    assert table, "docs/SECURITY.md has no route table"
    assert routes - table.keys() == set(), "served but not in docs/SECURITY.md"
    assert table.keys() - routes == set(), "in docs/SECURITY.md but not served"


def request(url: str, method: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = b"{}" if method in {"POST", "PUT", "PATCH"} else None
    req = urllib.request.Request(url, data=data, method=method, headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def without_redirects(url: str, method: str) -> int:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, parts.path, body=b"" if method == "POST" else None)
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_running_worker_refuses_protected_routes_without_credentials(start_worker_process, tmp_path: Path) -> None:
    token = tmp_path / "operator.token"
    token.write_text("an-operator-token-of-some-length\n")
    worker = start_worker_process(FINSENTRY_OPERATOR_TOKEN_FILE=str(token))
    for (method, path), auth in sorted(documented().items()):
        url = worker.url + re.sub(r"\{[^}]+\}", "x1", path)
        anonymous = request(url, method)
        if auth == "none":
            assert anonymous not in {401, 403}, f"{method} {path} is documented as open"
            continue
        if auth == "sign-in":  # the console's sign-in form: its own CSRF pair, then an analyst token
            assert without_redirects(url, method) == 403, f"{method} {path} took a post without its form"
            continue
        if auth == "session":  # the console: sign in first (GET), or refused (POST without session and CSRF)
            status = without_redirects(url, method)
            assert status == (303 if method == "GET" else 403), f"{method} {path} answered {status}"
            continue
        # 429 is a refusal too: the API slows an address after five failures a minute (docs/SECURITY.md).
        assert anonymous in {401, 429}, f"{method} {path} answered {anonymous} without credentials"
        assert request(url, method, "not-a-valid-token") in {401, 403, 429}, f"{method} {path} took a wrong token"
        # bytes that are not UTF-8 reach the views as lone surrogates: the silences answered 500
        assert request(url, method, "\xff\xfe") in {401, 403, 429}, f"{method} {path}: a token that is not UTF-8"
    assert request(worker.url + "/table/", "GET") == 404
    assert request(worker.url + "/router/", "GET") == 404
