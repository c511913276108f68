"""The silences API checks an operator's token as the cases API does: each attempt is counted before
scrypt runs (and taken back when it passes), and scrypt runs on the verifier's own bounded threads.
It ran scrypt for every request, unthrottled, on the event loop's default thread pool: concurrent
guesses got 401 after 401 and occupied the threads the agents use."""

from __future__ import annotations

import asyncio
import time

from scheduler import parse_roster
from scheduler.tokens import hash_token
from streams.views import cases, silences

OPS = "operator-token-of-enough-length"
FILE_TOKEN = "operator-file-token-of-enough-length"
ANALYST = f"""\
analysts:
  - {{id: alice, name: A, capacity: 5, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {{topics: {{E: 1}}}},
     notify: "https://h.example/a", token_hash: "{hash_token("alice-token-of-enough-length", n=16)}"}}
"""
OPERATOR = f"""\
operators:
  - {{id: ops, token_hash: "{hash_token(OPS, n=16)}"}}
"""


def silences_app():
    """An aiohttp app whose one route answers what `operator_refusal` says, else 200 {"ok": true}."""
    from aiohttp import web

    class Stub:
        @staticmethod
        def json(value: object, status: int = 200, headers: dict | None = None) -> web.Response:
            return web.json_response(value, status=status, headers=headers)

    async def handler(request: web.Request) -> web.StreamResponse:
        refusal = await silences.operator_refusal(Stub(), request)
        return refusal if refusal is not None else web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/api/v2/silences", handler)
    return app


def test_concurrent_wrong_operator_tokens_are_throttled_and_a_right_one_passes(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    desk = parse_roster(ANALYST + OPERATOR)
    monkeypatch.setattr(silences, "roster", lambda: desk)
    monkeypatch.setattr(silences, "operator_token", lambda: None)
    monkeypatch.setattr(silences, "LIMITER", cases.FailureLimiter())

    app = silences_app()

    async def scenario() -> tuple[list[int], int, int, int]:
        async with TestClient(TestServer(app)) as client:
            guesses = await asyncio.gather(*[client.get("/api/v2/silences",
                                                        headers={"Authorization": f"Bearer guess-{i}"})
                                             for i in range(30)])
            again = await client.get("/api/v2/silences", headers={"Authorization": "Bearer guess-again"})
            assert again.status == 429 and int(again.headers["Retry-After"]) > 1  # blocked: completed failures
            silences.LIMITER._failures.clear()  # the minute passes
            good = await client.get("/api/v2/silences", headers={"Authorization": f"Bearer {OPS}"})
            counted = len(silences.LIMITER._failures.get("127.0.0.1", ()))
            analyst = await client.get("/api/v2/silences",
                                       headers={"Authorization": "Bearer alice-token-of-enough-length"})
            return [g.status for g in guesses], good.status, counted, analyst.status

    statuses, good, counted, analyst = asyncio.run(scenario())
    # How many complete before the block depends on how fast scrypt runs here; the bounds do not: at
    # least the limit's 5, at most 4 + the 16 checks in progress an address may have (cases.py).
    assert statuses.count(403) + statuses.count(429) == 30 and 5 <= statuses.count(403) <= 20, statuses
    assert good == 200 and counted == 0, "an operator's attempt is taken back"
    assert analyst == 403  # an analyst is no operator


def run_requests(monkeypatch, desk, requests: list[str], before=None) -> list[int]:
    """The statuses of GETs with these bearer tokens, in turn, from one address."""
    from aiohttp.test_utils import TestClient, TestServer

    monkeypatch.setattr(silences, "roster", lambda: desk)
    monkeypatch.setattr(silences, "operator_token", lambda: FILE_TOKEN.encode())

    app = silences_app()

    async def scenario() -> list[int]:
        async with TestClient(TestServer(app)) as client:
            if before is not None:
                before()
            statuses = []
            for token in requests:
                response = await client.get("/api/v2/silences", headers={"Authorization": f"Bearer {token}"})
                statuses.append(response.status)
            return statuses

    return asyncio.run(scenario())


def test_the_silences_api_has_its_own_limiter_so_analysts_failures_do_not_lock_an_operator_out(monkeypatch) -> None:
    desk = parse_roster(ANALYST + OPERATOR)
    assert silences.LIMITER is not cases.LIMITER and isinstance(silences.LIMITER, cases.FailureLimiter)
    monkeypatch.setattr(silences, "LIMITER", cases.FailureLimiter())
    monkeypatch.setattr(cases, "LIMITER", cases.FailureLimiter())

    def analysts_fail_at_the_cases_api() -> None:  # five wrong tokens behind the proxy this address stands for
        for _ in range(5):
            cases.LIMITER.attempt("127.0.0.1", time.monotonic())

    statuses = run_requests(monkeypatch, desk, [OPS], before=analysts_fail_at_the_cases_api)
    assert statuses == [200]  # was: 429, the operator's token (not yet verified here) not even checked


def test_wrong_guesses_at_the_file_token_are_counted_and_the_right_one_always_passes(monkeypatch) -> None:
    desk = parse_roster(ANALYST)
    monkeypatch.setattr(silences, "LIMITER", cases.FailureLimiter())
    statuses = run_requests(monkeypatch, desk, [f"guess-{i}" for i in range(8)] + [FILE_TOKEN, "guess-9"])
    assert statuses == [403] * 5 + [429] * 3 + [200, 429]
    assert len(silences.LIMITER._failures["127.0.0.1"]) == 5  # a blocked address's guesses are not counted again
