"""The console's pure parts: sessions and CSRF, escaping in every template, the SVG charts, the chart feed,
where sign-in may return to, and the machine-closed case's explanation."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from scheduler import SchedulerPolicy
from streams.console import charts, feed
from streams.console.sessions import SECURITY_HEADERS, Session, Sessions, cookie_attributes, csrf_ok

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_and_are_random_and_bounded() -> None:
    clock = Clock()
    sessions = Sessions(lifetime=60, clock=clock, limit=3)
    one = sessions.create("alice", "ref")
    assert sessions.get(one.sid) is one and one.csrf != one.sid and len(one.sid) >= 40
    clock.now += 59
    assert sessions.get(one.sid) is one
    clock.now += 1
    assert sessions.get(one.sid) is None and len(sessions) == 0  # expired, and forgotten
    made = [sessions.create(f"a{i}", "ref") for i in range(4)]
    assert len(sessions) == 3 and sessions.get(made[0].sid) is None  # the oldest went first
    sessions.drop(made[1].sid)
    assert sessions.get(made[1].sid) is None
    assert sessions.get(None) is None and sessions.get("") is None and sessions.get("forged") is None


def test_csrf_and_cookie_and_headers() -> None:
    session = Sessions(lifetime=60).create("alice", "ref")
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, "") and not csrf_ok(session, session.csrf + "x")
    # aiohttp hands a cookie's bytes that are not UTF-8 on as lone surrogates: no match, not a 500
    assert not csrf_ok(Session("", "", "ab\udcffcd", 0), "abcd") and not csrf_ok(session, "\udcff")
    assert cookie_attributes(secure=True, max_age=60) == {"httponly": True, "samesite": "Lax", "secure": True,
                                                          "path": "/console", "max_age": 60}
    assert not cookie_attributes(secure=False, max_age=60)["secure"]
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    for part in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert part in csp
    assert "unsafe" not in csp


def case(**extra: object) -> dict:
    now = datetime.now(UTC)
    return {"case_id": "case-x", "anomaly_id": "x", "kind": "negative_surge", "scope": f"ticker:{HOSTILE}",
            "severity": "warning", "score": 5.0, "priority": 4.0, "status": "assigned", "analyst": "alice",
            "sample_ids": ["s1"], "headlines": [HOSTILE], "created_at": now.isoformat(),
            "ack_due": (now + timedelta(minutes=30)).isoformat(), "resolve_due": (now + timedelta(hours=4)).isoformat(),
            "outcome": HOSTILE, "reason": HOSTILE, "labels": [{"id": "s1", "sentiment": "positive"}], **extra}


@pytest.mark.parametrize("status", ["assigned", "acknowledged", "resolved", "auto_resolved"])
def test_every_template_escapes_attacker_text(status: str) -> None:
    from streams.console import views
    from streams.console.sessions import Session

    session = Session("sid", "<b>alice</b>", "tok", 0)
    c = views.row(case(status=status), datetime.now(UTC))
    record = {"anomaly_id": HOSTILE, "kind": "negative_surge", "scope": HOSTILE, "window_start": HOSTILE,
              "window_end": "2024-01-01T00:00:00+00:00", "observed": 3, "expected": 1.0, "score": 2.0,
              "status": "open", "severity": "warning",
              "history": [{"event": HOSTILE, "severity": "warning", "score": 1, "observed": 2, "expected": 1.0,
                           "window_end": HOSTILE}],
              "headlines": [{"id": "s1", "headline": HOSTILE, "sentiment": HOSTILE, "confidence": 0.5}]}
    rows = views.headlines(c, record)
    policy = SchedulerPolicy(routine_kinds=frozenset({HOSTILE}))
    pages = [
        views.render("case.html", session=session, case=c, record=record, headlines=rows,
                     confidence=views.confidence(rows), policy=policy,
                     chart=charts.scope_chart([(0, 1, 0.5)], (0, 60), HOSTILE), topics=[HOSTILE], targets=[{"id": HOSTILE, "problem": HOSTILE}],
                     labels_allowed=True),
        views.render("queue.html", session=session, cases=[{**c, "targets": [{"id": HOSTILE, "problem": None}]}],
                     notice=HOSTILE, updated="now"),
        views.render("overview.html", session=session, trends=[{"scope": HOSTILE, "stories": 1,
                                                                "spark": charts.sparkline([0.1], HOSTILE)}],
                     tickers=[{"scope": f"ticker:{HOSTILE}", "stories": 2, "spark": charts.sparkline([0.2], HOSTILE)}],
                     watchlist=False, busiest=12, anomalies=[record],
                     team=[{"id": HOSTILE, "name": HOSTILE, "open": 1, "capacity": 2}],
                     waiting=1, over_sla=0, queue=[{**c, "status": "waiting", "age": "5m", "case_id": HOSTILE,
                                                      "unserved": HOSTILE}],
                     machine_closed=[{**c, "case_id": HOSTILE, "reason": HOSTILE}]),
        views.render("problem.html", session=session, title=HOSTILE, message=HOSTILE, status=403, back="/console/"),
        views.render("pending.html", session=session, verb=HOSTILE, case_id=HOSTILE, action_id=HOSTILE,
                     back="/console/cases/case-x"),
        views.render("signin.html", session=None, pre="p", error=HOSTILE, back=f"/console/{HOSTILE}"),
    ]
    assert "<section" not in pages[2].split("<title>")[1].split("</title>")[0]  # the overview's title is text
    for html in pages:
        assert "<script>alert" not in html and "<img" not in html and "<b>alice" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html or "&lt;b&gt;alice" in html
        assert html.count("<script") == 1  # the console's own file, nothing inline
        assert 'src="/console/static/console.js"' in html


def test_scope_chart_marks_the_window_and_draws_volume_and_sentiment() -> None:
    bins = [(0.0, 2, -0.5), (300.0, 0, None), (600.0, 6, -1.0)]
    svg = str(charts.scope_chart(bins, (600.0, 900.0), "t"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'class="anomaly-window"' in svg and "<polyline" in svg and svg.count('fill="#90a4ae"') == 2
    assert "<script" not in str(charts.sparkline([None, 0.5, -0.2, None, 1.0], "<script>x</script>"))


def test_the_case_chart_labels_its_hours_shows_the_window_and_gives_its_numbers() -> None:
    # A 5-minute window in 6 hours was a 2-pixel sliver, the time axis had no labels, a scope with one
    # busy bin drew a line of one point (nothing), and a screen reader got no numbers at all.
    start = datetime(2026, 1, 5, 8, 35, tzinfo=UTC).timestamp()
    bins = [(start + 300 * i, 0, None) for i in range(78)]
    bins[60] = (bins[60][0], 4, -0.5)  # 13:35-13:40
    end = bins[60][0] + 300
    svg = str(charts.scope_chart(bins, (end - 60, end), "t"))  # the monitor's 1-minute window: 13:39-13:40
    hours = re.findall(r">(\d\d:\d\d)</text>", svg)
    assert hours == ["09:00", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]  # 08:35 to 15:05

    def window(svg: str) -> tuple[float, float]:
        x, wide = re.search(r'<rect x="([\d.]+)" y="\d+" width="([\d.]+)"[^>]*class="anomaly-window"', svg).groups()
        return float(x), float(wide)

    bin_px = 552 / 78
    assert window(svg) == (round(44 + 60 * bin_px, 1), round(bin_px, 1)) and ">anomaly</text>" in svg  # its bin
    assert window(str(charts.scope_chart(bins, (end - 300, end + 300), "t")))[1] == round(2 * bin_px, 1)
    assert window(str(charts.scope_chart(bins, (start - 600, start + 1), "t"))) == (44.0, round(bin_px, 1))
    for outside in [(start - 900, start - 300), (start + 78 * 300, start + 79 * 300)]:
        assert "anomaly-window" not in str(charts.scope_chart(bins, outside, "t"))  # not drawn at an edge
    assert '<circle cx=' in svg and "<polyline" not in svg
    assert charts.chart_table(bins, 300) == [{"bin": "13:35–13:40", "stories": "4", "sentiment": "-0.50"}]
    assert charts.hour_marks(3600.0 * 5, 3600.0 * 6) == [18000.0, 21600.0] and charts.hour_marks(10.0, 20.0) == []


def test_feed_counts_stories_per_scope_and_bins_them() -> None:
    at = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    series = charts.Series(clock=lambda: at.timestamp() + 600)  # stories are counted only around "now"
    for minute, sentiment in [(0, "negative"), (1, "negative"), (7, "positive")]:
        feed.record(json.dumps({"published_at": (at + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
                                "topic": "Earnings", "tickers": ["ACME"], "sentiment": sentiment}).encode(), series)
    feed.record(b'{"published_at": "not a date", "topic": "Earnings"}', series)  # skipped, never raised
    feed.record(b'"not an object"', series)
    feed.record(b"{not json", series)  # a foreign producer's bytes: skipped, the agent never crashes
    feed.record(b"\xff\xfe", series)
    feed.record(None, series)
    start = at.timestamp()
    assert series.binned("topic:Earnings", start, start + 600, 300) == [(start, 2, -1.0), (start + 300, 1, 1.0)]
    assert series.binned("ticker:ACME", start, start + 600, 600) == [(start, 3, -1 / 3)]
    assert series.of_kind("topic") == ["topic:Earnings"] and series.of_kind("ticker") == ["ticker:ACME"]
    series.prune(start + charts.KEEP_SECONDS + 3600)
    assert series.binned("topic:Earnings", start, start + 600, 600) == [(start, 0, None)]


def test_the_overview_charts_the_watched_tickers_or_else_the_busiest() -> None:
    from streams.console import views

    end = datetime(2024, 3, 4, 12, 0, tzinfo=UTC).timestamp()
    series = charts.Series(clock=lambda: end)  # stories are counted only around "now"
    for n, ticker in enumerate(["acme ", "BWTR", "BWTR", "ZED"] * 3):  # the feed's scopes are the monitor's
        feed.record(json.dumps({"published_at": datetime.fromtimestamp(end - 600 * (n + 1), UTC).isoformat(),
                                "topic": "Earnings", "tickers": [ticker], "sentiment": "negative"}).encode(), series)
    watched = views.ticker_trends(frozenset({"ACME", "QUIET"}), end, series)
    assert [(t["scope"], t["stories"]) for t in watched] == [("ticker:ACME", 3), ("ticker:QUIET", 0)]
    assert "<polyline" in str(watched[0]["spark"]) or "<circle" in str(watched[0]["spark"])
    busiest = views.ticker_trends(frozenset(), end, series)
    assert [(t["scope"], t["stories"]) for t in busiest] == [("ticker:BWTR", 6), ("ticker:ACME", 3), ("ticker:ZED", 3)]
    old = views.ticker_trends(frozenset(), end + 2 * 86_400, series)
    assert old == [], "a ticker without a story in the last 24 h is not among the busiest"


def test_the_demo_roster_signs_in_its_analyst_for_every_topic(tmp_path) -> None:
    from scheduler.roster import load_roster
    from streams.console import demo

    env, token = demo.roster(tmp_path)
    roster = load_roster(env["FINSENTRY_ROSTER"])
    [analyst] = roster.analysts.values()
    assert analyst.verify_token(token) and not analyst.verify_token(token + "x")
    assert token not in (tmp_path / "roster.yaml").read_text()
    assert {f"topic:{t}" for t in demo.topics()} <= set(analyst.skills)
    assert env["FINSENTRY_MONITOR_WARMUP_WINDOWS"] == "10"  # armed before the demo's planted surge


def test_an_outcome_is_capped_like_the_apis() -> None:
    from streams.console import views

    assert views.form_problem("resolve", {"outcome": "x" * views.MAX_OUTCOME}) is None
    assert "at most 2000" in views.form_problem("resolve", {"outcome": "x" * (views.MAX_OUTCOME + 1)})
    assert views.form_problem("ack", {}) is None


def test_a_machine_closed_case_says_why_and_offers_a_reopen() -> None:
    from streams.console import views
    from streams.console.sessions import Session

    c = views.row(case(status="auto_resolved", reason="severity info is below the auto-resolve threshold warning"),
                  datetime.now(UTC))
    rows = [{"id": "s1", "headline": "a", "confidence": 0.9}, {"id": "s2", "headline": "b", "confidence": 0.5},
            {"id": "s3", "headline": "c", "confidence": None}]
    assert views.confidence(rows) == {"mean": 0.7, "low": 0.5, "n": 2} and views.confidence(rows[2:]) is None
    html = views.render("case.html", session=Session("sid", "bob", "tok", 0), case=c, record=None, headlines=rows,
                        confidence=views.confidence(rows), policy=SchedulerPolicy(), chart="", topics=[], targets=[],
                        labels_allowed=True)
    assert "below the auto-resolve threshold warning" in html and "below severity <strong>warning</strong>" in html
    assert "mean <strong>0.70</strong>" in html and "lowest 0.50" in html
    assert 'action="/console/cases/case-x/reopen"' in html and 'name="csrf" value="tok"' in html


@pytest.mark.parametrize(("asked", "back"), [
    ("/console/cases/case-1", "/console/cases/case-1"),
    ("/anomalies/a1?x=1", "/anomalies/a1?x=1"),
    (None, "/console/"), ("", "/console/"),
    ("//evil.example/console/", "/console/"), ("https://evil.example/console/", "/console/"),
    ("/console/..//evil", "/console/"), ("/metrics", "/console/"), ("/console/\\evil", "/console/"),
    ("/console/\nSet-Cookie: x", "/console/"),
    # a browser resolves dot segments: each of these left /console/ and /anomalies/ for /evil
    ("/console/../../evil", "/console/"), ("/anomalies/../../evil", "/console/"), ("/console/%2e%2E/evil", "/console/"),
    ("/console/./cases/case-1", "/console/"), ("/console/cases/case-1?next=../x", "/console/cases/case-1?next=../x"),
])
def test_sign_in_returns_only_to_the_consoles_own_pages(asked: str | None, back: str) -> None:
    from streams.console import views

    assert views.safe_return(asked) == back


def test_alert_links_go_to_the_consoles_case_page() -> None:
    from streams.views import anomaly_page

    assert anomaly_page.console_page("3f1c0b6a") == "/console/cases/case-3f1c0b6a"
    assert anomaly_page.console_page("a/../b?c") == "/console/cases/case-a%2F..%2Fb%3Fc"


async def post_in_pieces(handler, body: bytes) -> tuple[int, bytes]:
    """POST `body` to `handler` on a real aiohttp server, as two TCP writes: the second only once the
    handler has started on the first, so it reads a body that has not all arrived."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    started = asyncio.Event()

    async def entered(request: web.Request) -> web.StreamResponse:
        started.set()
        return await handler(request)

    app = web.Application()
    app.router.add_post("/form", entered)
    async with TestServer(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"POST /form HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2])
        await writer.drain()
        await asyncio.wait_for(started.wait(), 60)
        writer.write(body[len(body) // 2:])
        await writer.drain()
        answer = await reader.read()
        writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


@pytest.mark.parametrize("outcome", ["confirmed: guidance cut, " * 20, "€" * 2000])
def test_a_form_sent_in_pieces_is_read_whole_up_to_the_longest_outcome(outcome: str) -> None:
    from aiohttp import web

    from streams.console import views

    assert len(outcome) <= views.MAX_OUTCOME

    async def echo(request: web.Request) -> web.Response:
        data = await views.form(request)
        return web.json_response(data, status=200 if data is not None else 413)

    body = urlencode({"csrf": "c" * 43, "back": "case", "outcome": outcome}).encode()
    status, payload = asyncio.run(post_in_pieces(echo, body))
    assert status == 200 and json.loads(payload)["outcome"] == outcome
    assert asyncio.run(post_in_pieces(echo, b"x" * (views.MAX_FORM + 1)))[0] == 413


def test_rotating_an_analysts_token_ends_their_console_sessions(tmp_path, monkeypatch) -> None:
    from types import SimpleNamespace

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from scheduler import Roster, parse_roster
    from scheduler.tokens import hash_token
    from streams import case_state
    from streams.console import views
    from streams.console.sessions import COOKIE, PRE_COOKIE

    def roster(alice: str, bob_file: Path) -> Roster:
        return parse_roster(f"""\
analysts:
  - {{id: alice, name: A, capacity: 1, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {{topics: {{E: 1}}}},
     notify: "https://h.example/a", token_hash: "{alice}"}}
  - {{id: bob, name: B, capacity: 1, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {{topics: {{E: 1}}}},
     notify: "https://h.example/b", token_file: "{bob_file}"}}
""")

    alice_token, bob_file = "alice-token-of-enough-length", tmp_path / "bob.token"
    bob_file.write_text("bob-token-of-enough-length-1\n")
    in_force = [roster(hash_token(alice_token, n=16), bob_file)]
    monkeypatch.setattr(case_state, "roster", lambda: in_force[0])

    async def signin_view(request: web.Request) -> web.StreamResponse:
        return await views.SigninView(None, None).post(request)

    async def sign_in(token: str) -> str:
        app = web.Application()
        app.router.add_post("/console/signin", signin_view)
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({PRE_COOKIE: "pre"})
            answer = await client.post("/console/signin", data={"csrf": "pre", "token": token}, allow_redirects=False)
            assert answer.status == 303, await answer.text()
            return answer.cookies[COOKIE].value

    def signed_in(sid: str) -> str | None:
        session = views.current(SimpleNamespace(cookies={COOKIE: sid}))
        return session.analyst if session else None

    alice, bob = asyncio.run(sign_in(alice_token)), asyncio.run(sign_in("bob-token-of-enough-length-1"))
    assert signed_in(alice) == "alice" and signed_in(bob) == "bob"
    in_force[0] = roster(in_force[0].analysts["alice"].token_hash, bob_file)  # reloaded, nothing changed
    assert signed_in(alice) == "alice" and signed_in(bob) == "bob"
    in_force[0] = roster(hash_token("alice-rotated-token-of-length", n=16), bob_file)
    assert signed_in(alice) is None and signed_in(bob) == "bob"
    bob_file.write_text("")  # rewritten in place (truncate, then write the same token): unknown is no change
    assert signed_in(bob) is None
    bob_file.unlink()
    assert signed_in(bob) is None
    bob_file.write_text("bob-token-of-enough-length-1\n")
    assert signed_in(bob) == "bob", "a token file briefly unreadable must not sign anyone out"
    bob_file.write_text("bob-token-of-enough-length-2\n")  # a token file is read afresh: no roster edit
    assert signed_in(bob) is None
    bob_file.write_text("bob-token-of-enough-length-1\n")
    assert signed_in(bob) is None, "an ended session stays ended"


def test_behind_a_trusted_proxy_one_guesser_does_not_lock_the_desk_out_of_sign_in(monkeypatch) -> None:
    # Every analyst behind the proxy shares its address; a throttled address gets no scrypt, so after a
    # restart (nothing verified yet) one guesser's failures locked every hashed-token analyst out.
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from scheduler import parse_roster
    from scheduler.tokens import hash_token
    from streams import case_state
    from streams.app import settings
    from streams.console import views
    from streams.console.sessions import PRE_COOKIE

    token = "dana-token-" + "x" * 20
    desk = parse_roster(f"""\
analysts:
  - {{id: dana, name: D, capacity: 1, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {{topics: {{E: 1}}}},
     notify: "https://h.example/d", token_hash: "{hash_token(token, n=16)}"}}
""")
    monkeypatch.setattr(case_state, "roster", lambda: desk)
    monkeypatch.setattr(views, "settings", settings.model_copy(update={"trusted_proxies": frozenset({"127.0.0.1"})}))
    # A fresh limiter whose window no busy machine outlasts: with the 60 s default, six scrypt checks
    # spread over more than a minute would let the first failure expire before the sixth attempt.
    from streams.views.cases import FailureLimiter
    monkeypatch.setattr(views, "LIMITER", FailureLimiter(window=3600.0))

    async def signin_view(request: web.Request) -> web.StreamResponse:
        return await views.SigninView(None, None).post(request)

    async def attempts() -> list[int]:
        app = web.Application()
        app.router.add_post("/console/signin", signin_view)
        statuses = []
        async with TestClient(TestServer(app)) as client:
            pre = "pre"
            client.session.cookie_jar.update_cookies({PRE_COOKIE: pre})
            for forwarded, presented in [("198.51.100.7", "guess")] * 6 + [("198.51.100.8", token)]:
                answer = await client.post("/console/signin", data={"csrf": pre, "token": presented},
                                           headers={"X-Forwarded-For": f"203.0.113.9, {forwarded}"},
                                           allow_redirects=False)
                statuses.append(answer.status)
                if PRE_COOKIE in answer.cookies:  # each sign-in page comes with a fresh form token
                    pre = answer.cookies[PRE_COOKIE].value
        return statuses

    # the guesser is throttled by its own address; the analyst behind the same proxy signs in
    assert asyncio.run(attempts()) == [401] * 5 + [429, 303]


def test_an_action_sent_but_not_yet_applied_says_so_instead_of_redirecting(monkeypatch) -> None:
    # On 202 (sent, not applied within OUTCOME_TIMEOUT) the console redirected back to a case that still
    # looked unchanged, so the analyst clicked again; the second action passed the dry run against the old
    # state and the scheduler refused it later ("Not possible now ... resolved") for something that worked.
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from scheduler import parse_roster
    from scheduler.tokens import hash_token
    from streams import case_state
    from streams.case_actions import Outcome
    from streams.console import views
    from streams.console.sessions import COOKIE

    desk = parse_roster(f"""\
analysts:
  - {{id: alice, name: A, capacity: 1, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {{topics: {{E: 1}}}},
     notify: "https://h.example/a", token_hash: "{hash_token("alice-token-of-enough-length", n=16)}"}}
""")
    monkeypatch.setattr(case_state, "roster", lambda: desk)
    monkeypatch.setattr(case_state, "is_owner", lambda: True)
    monkeypatch.setattr(views, "viewable", lambda case_id, session: (case(case_id=case_id), None))
    sent: list[dict] = []

    async def submit(action: dict) -> Outcome:
        sent.append(action)
        return Outcome(202, "not applied within 10s; watch cases.events")

    monkeypatch.setattr(views, "submit", submit)
    session = views.SESSIONS.create("alice", desk.analysts["alice"].fingerprint())

    async def action_view(request: web.Request) -> web.StreamResponse:
        return await views.CaseActionView(None, None).post(request, request.match_info["case_id"],
                                                           request.match_info["verb"])

    async def resolve() -> tuple[int, str, dict]:
        app = web.Application()
        app.router.add_post("/console/cases/{case_id}/{verb}", action_view)
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({COOKIE: session.sid})
            answer = await client.post("/console/cases/case-x/resolve", allow_redirects=False,
                                       data={"csrf": session.csrf, "back": "case", "outcome": "confirmed"})
            return answer.status, await answer.text(), dict(answer.headers)

    status, body, headers = asyncio.run(resolve())
    assert len(sent) == 1 and sent[0]["action"] == "resolve"
    assert status == 202 and "Location" not in headers, body
    assert sent[0]["action_id"] in body and "not yet applied" in body and "do not send it again" in body
    assert 'href="/console/cases/case-x"' in body and 'role="alert"' not in body
    assert headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert body.count("<script") == 1  # the console's own file, nothing inline


def test_the_client_address_is_the_peers_unless_the_peer_is_a_trusted_proxy() -> None:
    from types import SimpleNamespace

    from multidict import CIMultiDict

    from streams.views.http import client_address

    def request(peer: str, *forwarded: str) -> SimpleNamespace:
        return SimpleNamespace(remote=peer, headers=CIMultiDict([("X-Forwarded-For", f) for f in forwarded]))

    proxies = frozenset({"10.0.0.5", "10.0.0.6"})
    assert client_address(request("198.51.100.7", "1.2.3.4"), proxies) == "198.51.100.7"  # not a proxy: its header is a lie
    assert client_address(request("10.0.0.5", "1.2.3.4, 198.51.100.8"), proxies) == "198.51.100.8"  # the hop it appended
    assert client_address(request("10.0.0.5", "198.51.100.8, 10.0.0.6"), proxies) == "198.51.100.8"  # two proxies
    assert client_address(request("10.0.0.5", "1.2.3.4", "198.51.100.9"), proxies) == "198.51.100.9"  # two headers
    assert client_address(request("10.0.0.5"), proxies) == "10.0.0.5"  # no header: the proxy itself
    # a port some proxies append would make each connection a new key, never throttled
    assert client_address(request("10.0.0.5", "203.0.113.5:51234"), proxies) == "203.0.113.5"
    assert client_address(request("10.0.0.5", "[2001:db8::1]:443"), proxies) == "2001:db8::1"
    assert client_address(request("::ffff:10.0.0.5", "198.51.100.8"), proxies) == "198.51.100.8"  # dual-stack peer
    assert client_address(request("10.0.0.5", "198.51.100.8, unknown"), proxies) == "10.0.0.5"  # no address: stop


def machine_closed_page(outcome: str, reason: str) -> str:
    """The case page of a case the monitor resolved while it waited, as analyst bob sees it."""
    from streams.console import views
    from streams.console.sessions import Session

    c = views.row(case(status="auto_resolved", outcome=outcome, reason=reason), datetime.now(UTC))
    return views.render("case.html", session=Session("sid", "bob", "tok", 0), case=c, record=None, headlines=[],
                        confidence=None, policy=SchedulerPolicy(), chart="", topics=[], targets=[], labels_allowed=True)


def test_a_case_closed_before_any_analyst_took_it_is_not_shown_as_a_machine_rule() -> None:
    html = machine_closed_page("unattended", "the monitor resolved the anomaly before an analyst took the case (no "
                                             "qualified analyst: nobody on the roster has a skill for topic:Credit)")
    assert "Closed before any analyst took it" in html and "nobody on the roster has a skill for topic:Credit" in html
    assert "Why the machine closed it" not in html and "Thresholds in force" not in html
    assert 'action="/console/cases/case-x/reopen"' in html


def test_a_case_an_analyst_had_acknowledged_is_not_shown_as_unseen_nor_as_a_machine_rule() -> None:
    html = machine_closed_page("unfinished", "the monitor resolved the anomaly while the case waited for its next "
                                             "analyst (last acknowledged by ana-2; no qualified analyst for "
                                             "topic:Credit is on shift)")
    assert "Closed while it waited for its next analyst" in html and "last acknowledged by ana-2" in html
    assert "Closed before any analyst took it" not in html and "No analyst saw this case" not in html
    assert "Thresholds in force" not in html and 'action="/console/cases/case-x/reopen"' in html


def test_a_reopened_cases_age_counts_from_its_reopening() -> None:
    from streams.console import views

    now = datetime(2026, 11, 30, 15, 3, tzinfo=UTC)
    c = views.row(case(created_at="2026-11-30T09:00:00+00:00", reopened_at="2026-11-30T15:00:00+00:00"), now)
    assert c["age"] == views.duration(180)


def test_the_overview_lists_the_cases_nobody_holds_and_why() -> None:
    # only a count was shown: a critical case no analyst could take was invisible in the console
    from streams.console import views
    from streams.console.sessions import Session

    now = datetime.now(UTC)
    why = "no qualified analyst for topic:Credit is on shift"
    waiting = views.row(case(status="waiting", analyst=None, severity="critical", scope="topic:Credit", reason=None,
                             unserved=why, created_at=(now - timedelta(minutes=25)).isoformat()), now)
    html = views.render("overview.html", session=Session("sid", "bob", "tok", 0), trends=[], tickers=[],
                        watchlist=False, busiest=12, anomalies=[], team=[], waiting=1, over_sla=1,
                        queue=[waiting], machine_closed=[])
    section = html.split('id="waiting-h"')[1].split("</section>")[0]
    assert 'href="/console/cases/case-x"' in section and "topic:Credit" in section and why in section
    assert views.duration(25 * 60) in section and "None" not in section  # a new case has no stored reason


@pytest.mark.parametrize(("extra", "shown"), [
    ({"escalations": 1}, "missed once already (escalated)"),  # given back to her on a fresh clock, then acknowledged
    ({"escalations": 1, "resolve_escalated": True}, "met"),  # only the resolve SLA was breached
    ({}, "met"),
])
def test_an_acknowledge_sla_missed_once_is_not_shown_as_met(extra: dict, shown: str) -> None:
    # A case escalated past its acknowledge SLA and given back to the same analyst read "Acknowledge SLA:
    # met" on its page and "done" in the queue once acknowledged, while the overview counted it over SLA.
    from streams.console import views
    from streams.console.sessions import Session

    c = views.row(case(status="acknowledged", **extra), datetime.now(UTC))
    html = views.render("case.html", session=Session("sid", "alice", "tok", 0), case=c, record=None, headlines=[],
                        confidence=None, policy=SchedulerPolicy(), chart="", topics=[], targets=[], labels_allowed=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
    assert f"Acknowledge SLA: {shown} &middot; resolve SLA" in text
    rows = views.render("queue_rows.html", session=Session("sid", "alice", "tok", 0), cases=[c])
    assert ("missed" in rows) == (shown != "met") and ("done" in rows) == (shown == "met")


def test_the_case_page_says_which_stories_were_social_posts() -> None:
    from streams.console import views
    from streams.console.sessions import Session

    c = views.row({**case(status="assigned"), "sample_ids": ["w-1", "p-1"], "headlines": ["Vellmar sued", "$VLM tanking"],
                   "social_ids": ["p-1"]}, datetime.now(UTC))
    rows = views.headlines(c, None)
    assert [(r["id"], r["post"]) for r in rows] == [("w-1", False), ("p-1", True)]
    page = views.render("case.html", session=Session("sid", "alice", "tok", 0), case=c, record=None, headlines=rows,
                        confidence=None, policy=SchedulerPolicy(), chart="", topics=["Legal"], targets=[],
                        labels_allowed=True)
    post_row = page[page.index('data-story="p-1"'):]
    wire_row = page[page.index('data-story="w-1"'):page.index('data-story="p-1"')]
    assert "social post" in post_row.split("</tr>")[0] and "social post" not in wire_row
