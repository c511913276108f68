"""The console review's findings, each pinned: case ids as URL path segments (and refused ids), the
machine-closed list by closing time, waiting cases readable by any analyst (and no more), sessions
bounded per analyst, sign-in throttled before scrypt and scrypt bounded, charts that forget empty
scopes and say when a scope is not tracked, records that cannot 500 the case page, security headers
on every answer, lists that say when they are cut, and a Lax session cookie."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import pytest

from alerts.lifecycle import anomaly_id as monitor_anomaly_id
from alerts.records import AnomalyEvent
from scheduler import AnomalyError, SchedulerPolicy, parse_roster
from scheduler.engine import Scheduler
from scheduler.tokens import hash_token
from streams.console import charts, feed
from streams.console.sessions import COOKIE, PRE_COOKIE, SECURITY_HEADERS, Session, Sessions, cookie_attributes
from tests.waiting import until

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
ALICE, BOB = "alice-token-of-enough-length", "bob-token-of-enough-length-x"
PLANTED = "case-zz/../case-0123456789abcdef"


def desk_yaml() -> str:
    return f"""\
analysts:
  - {{id: alice, name: A, capacity: 5, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {{topics: {{E: 1}}}},
     notify: "https://h.example/a", token_hash: "{hash_token(ALICE, n=16)}"}}
  - {{id: bob, name: B, capacity: 5, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {{topics: {{M: 1}}}},
     notify: "https://h.example/b", token_hash: "{hash_token(BOB, n=16)}"}}
"""


def desk():
    return parse_roster(desk_yaml())


def anomaly(aid: str, scope: str = "topic:E", severity: str = "critical", event: str = "open") -> dict:
    return {"anomaly_id": aid, "event": event, "kind": "surge", "scope": scope, "severity": severity,
            "score": 9.0, "sample_ids": [f"{aid}-s1"], "headlines": [f"headline {aid}"]}


def event_json(**change: object) -> dict:
    base = {"anomaly_id": "0123456789abcdef", "event": "open", "kind": "surge", "scope": "topic:E",
            "window_start": "2026-01-05T09:00:00.000Z", "window_end": "2026-01-05T09:05:00.000Z",
            "observed": 40.0, "expected": 4.0, "score": 9.0, "severity": "critical", "sample_ids": ["s1"],
            "headlines": ["h"], "samples": [{"id": "s1", "headline": "h", "sentiment": "negative",
                                              "confidence": 0.97, "topic": "E"}]}
    return {**base, **change}


def case(**extra: object) -> dict:
    now = datetime.now(UTC)
    return {"case_id": "case-a1", "anomaly_id": "a1", "kind": "surge", "scope": "topic:E", "severity": "critical",
            "score": 9.0, "priority": 4.0, "status": "assigned", "analyst": "alice", "sample_ids": ["s1"],
            "headlines": ["h"], "created_at": now.isoformat(), "ack_due": (now + timedelta(minutes=15)).isoformat(),
            "resolve_due": (now + timedelta(hours=4)).isoformat(), "labels": [], **extra}


def links(html: str) -> list[str]:
    return re.findall(r'(?:href|action)="([^"]+)"', html)


# ---- 1. case ids in URLs ------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["assigned", "auto_resolved"])
def test_a_case_id_is_one_path_segment_in_every_link_and_form(status: str) -> None:
    # Jinja's urlencode keeps '/' and '.': the browser resolved 'case-zz/../case-<victim>' to the victim's
    # case, so the planted case's buttons acted on another analyst's case.
    from streams.console import views

    session = Session("sid", "alice", "tok", 0)
    c = views.row(case(case_id=PLANTED, status=status), datetime.now(UTC))
    pages = [
        views.render("queue_rows.html", session=session, cases=[c]),
        views.render("case.html", session=session, case=c, record=None, headlines=views.headlines(c, None),
                     confidence=None, policy=SchedulerPolicy(), chart="", topics=["E"], targets=[], labels_allowed=True),
        views.render("overview.html", session=session, trends=[], tickers=[], watchlist=False, busiest=12,
                     anomalies=[{"anomaly_id": "zz/../x", "kind": "surge", "scope": "topic:E", "severity": "info",
                                 "observed": 1, "expected": 1.0, "window_end": "",
                                 "case": {"readable": True, "id": PLANTED, "note": "waiting"}}],
                     team=[], waiting=1, over_sla=0, queue=[{**c, "unserved": "x"}], machine_closed=[c]),
        views.render("pending.html", session=session, verb="ack", case_id=PLANTED, action_id="a",
                     back=views.case_page(PLANTED)),
    ]
    seen = [u for html in pages for u in links(html) if "cases/" in u]
    assert len(seen) >= 4
    for url in seen:
        resolved = urljoin("http://worker:6066/console/", url)
        assert "/console/cases/case-zz%2F..%2Fcase-0123456789abcdef" in resolved, resolved
        assert "/console/cases/case-0123456789abcdef" not in resolved
    assert views.case_page(PLANTED, "ack") == "/console/cases/case-zz%2F..%2Fcase-0123456789abcdef/ack"


@pytest.mark.parametrize("bad", ["zz/../case-0123456789abcdef", "..", "a.b", "a b", "a%2F", "a?b", "a#b", "é", "",
                                 "x" * 129, "a\nb"])
def test_an_anomaly_id_outside_the_safe_alphabet_is_refused_where_records_are_parsed(bad: str) -> None:
    # notify-route dead-letters a ValueError from from_json (wrong_type); the scheduler's door
    # dead-letters an AnomalyError (invalid_anomaly): a refused record never reaches a case or a page.
    with pytest.raises(ValueError, match="anomaly_id"):
        AnomalyEvent.from_json(event_json(anomaly_id=bad))
    scheduler = Scheduler(desk(), SchedulerPolicy())
    with pytest.raises(AnomalyError, match="anomaly_id"):
        scheduler.on_anomaly(anomaly(bad), T0)
    assert scheduler.machine_closed() == [] and scheduler.waiting(T0) == []


def test_the_ids_the_monitor_and_the_tests_make_stay_valid() -> None:
    import uuid

    for good in (monitor_anomaly_id("topic:E", "negative_surge", 1_700_000_000.0), uuid.uuid4().hex[:12], "a1",
                 "info-3", "x_y", "A" * 128):
        assert AnomalyEvent.from_json(event_json(anomaly_id=good)).anomaly_id == good
        scheduler = Scheduler(desk(), SchedulerPolicy())
        scheduler.on_anomaly(anomaly(good), T0)
        assert scheduler.case(f"case-{good}") is not None


# ---- 2. machine-closed, newest closing first ----------------------------------------------------

def test_the_machine_closed_list_is_by_closing_time_not_arrival() -> None:
    from streams.console import views

    s = Scheduler(desk(), SchedulerPolicy())
    s.on_anomaly(anomaly("critical1", "topic:Credit"), T0)  # nobody has the skill: it waits
    for i in range(25):  # info: closed by rule at once
        s.on_anomaly(anomaly(f"info{i}", severity="info"), T0 + timedelta(minutes=i))
    s.on_anomaly(anomaly("critical1", "topic:Credit", event="resolve"), T0 + timedelta(hours=3))  # unattended
    shown = s.machine_closed(views.MACHINE_CLOSED_SHOWN)
    assert shown[0]["case_id"] == "case-critical1" and shown[0]["outcome"] == "unattended"
    assert [c["case_id"] for c in shown[1:4]] == ["case-info24", "case-info23", "case-info22"]
    closed = [c["closed_at"] for c in shown]
    assert closed == sorted(closed, reverse=True)


# ---- 3. a waiting case: anyone may read it, nobody but its holder acts ---------------------------

def console_app(monkeypatch, sched: Scheduler, roster) -> tuple[object, list[dict]]:
    """A console on a real aiohttp server over `sched`; the actions it would submit are recorded."""
    from aiohttp import web

    from streams import case_state
    from streams.case_actions import Outcome
    from streams.console import views

    monkeypatch.setattr(case_state, "roster", lambda: roster)
    monkeypatch.setattr(case_state, "load", lambda: sched)
    monkeypatch.setattr(case_state, "is_owner", lambda: True)
    monkeypatch.setattr(views, "anomaly_pages", {})
    monkeypatch.setattr(views, "model_topics", lambda settings: {"E", "M"})
    sent: list[dict] = []

    async def submit(action: dict) -> Outcome:
        sent.append(action)
        return Outcome(200, "ok")

    monkeypatch.setattr(views, "submit", submit)

    async def case_get(request: web.Request) -> web.StreamResponse:
        return await views.CaseView(None, None).get(request, request.match_info["case_id"])

    async def case_post(request: web.Request) -> web.StreamResponse:
        return await views.CaseActionView(None, None).post(request, request.match_info["case_id"],
                                                           request.match_info["verb"])

    async def overview(request: web.Request) -> web.StreamResponse:
        return await views.OverviewView(None, None).get(request)

    async def signin(request: web.Request) -> web.StreamResponse:
        return await views.SigninView(None, None).post(request)

    async def signin_get(request: web.Request) -> web.StreamResponse:
        return await views.SigninView(None, None).get(request)

    async def action_get(request: web.Request) -> web.StreamResponse:
        return await views.CaseActionView(None, None).get(request, request.match_info["case_id"],
                                                          request.match_info["verb"])

    async def root(request: web.Request) -> web.StreamResponse:
        return await views.ConsoleRootView(None, None).get(request)

    async def signout(request: web.Request) -> web.StreamResponse:
        return await views.SignoutView(None, None).post(request)

    async def queue(request: web.Request) -> web.StreamResponse:
        return await views.QueueView(None, None).get(request)

    app = web.Application()
    app.router.add_get("/console/cases/{case_id}", case_get)
    app.router.add_post("/console/cases/{case_id}/{verb}", case_post)
    app.router.add_get("/console/overview", overview)
    app.router.add_post("/console/signin", signin)
    app.router.add_get("/console/signin", signin_get)
    app.router.add_get("/console/cases/{case_id}/{verb}", action_get)
    app.router.add_get("/console", root)
    app.router.add_post("/console/signout", signout)
    app.router.add_get("/console/", queue)
    return app, sent


def test_any_analyst_may_read_a_waiting_case_but_not_act_on_it(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from streams.console import views

    roster = desk()
    sched = Scheduler(roster, SchedulerPolicy())
    now = datetime.now(UTC)
    sched.on_anomaly(anomaly("stranded1", "topic:Credit"), now)  # nobody has the skill
    sched.on_anomaly(anomaly("bobs1", "topic:M"), now)  # bob's
    assert sched.case("case-stranded1")["status"] == "waiting" and sched.case("case-bobs1")["analyst"] == "bob"
    app, sent = console_app(monkeypatch, sched, roster)
    alice = views.SESSIONS.create("alice", roster.analysts["alice"].fingerprint())

    async def scenario() -> dict:
        out = {}
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({COOKIE: alice.sid})
            answer = await client.get("/console/cases/case-stranded1")
            out["waiting"] = (answer.status, await answer.text())
            answer = await client.get("/console/cases/case-bobs1")
            out["bobs"] = (answer.status, await answer.text())
            out["actions"] = []
            for verb in ("ack", "resolve", "reassign", "label", "reopen"):
                answer = await client.post(f"/console/cases/case-stranded1/{verb}", allow_redirects=False,
                                           data={"csrf": alice.csrf, "outcome": "x", "story_id": "stranded1-s1",
                                                 "sentiment": "positive"})
                out["actions"].append((verb, answer.status, await answer.text()))
            answer = await client.get("/console/overview")
            out["overview"] = (answer.status, await answer.text())
        return out

    out = asyncio.run(scenario())
    status, body = out["waiting"]
    assert status == 200, body
    assert "Waiting for an analyst" in body and "Read-only" in body and "topic:Credit" in body
    assert "nobody on the roster has a skill" in body or "no qualified analyst" in body, body
    assert "/console/cases/case-stranded1/" not in body, "no action or correction form on a read-only page"
    assert out["bobs"][0] == 403 and "Not your case" in out["bobs"][1]  # a held case stays its holder's
    for verb, status, body in out["actions"]:
        assert status == 403 and "is not assigned to you" in body, (verb, status)
    assert sent == [], "nothing was submitted for a case the analyst does not hold"
    status, body = out["overview"]
    section = body.split('id="waiting-h"')[1].split("</section>")[0]
    assert status == 200 and 'href="/console/cases/case-stranded1"' in section


def test_the_reassign_list_shows_who_may_take_a_case_and_the_queue_says_where_it_went(monkeypatch) -> None:
    # The list offered every analyst on the roster, and a pick the scheduler refuses (no skill, off
    # shift, full) came back as a 409 page; after the action, nothing said where the case had gone.
    from aiohttp.test_utils import TestClient, TestServer

    from streams.case_actions import Outcome
    from streams.console import views

    roster = parse_roster(desk_yaml() + """\
  - {id: carol, name: C, capacity: 5, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {topics: {E: 1}},
     notify: "https://h.example/c", token_env: FINSENTRY_TOKEN_CAROL}
""")
    sched = Scheduler(roster, SchedulerPolicy())
    now = datetime.now(UTC)
    sched.on_anomaly(anomaly("a1"), now)
    assert sched.case("case-a1")["analyst"] == "alice"
    app, sent = console_app(monkeypatch, sched, roster)

    async def submit(action: dict) -> Outcome:  # the scheduler applies it, as the single writer would
        sent.append(action)
        return Outcome(200, "done", sched.on_action(action, datetime.now(UTC)))

    monkeypatch.setattr(views, "submit", submit)
    alice = views.SESSIONS.create("alice", roster.analysts["alice"].fingerprint())

    async def scenario() -> list[str]:
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({COOKIE: alice.sid})
            pages = [await (await client.get("/console/")).text()]
            answer = await client.post("/console/cases/case-a1/reassign", allow_redirects=False,
                                       data={"csrf": alice.csrf, "to": "carol"})
            assert answer.status == 303, await answer.text()
            done = answer.headers["Location"]
            assert done == f"/console/?done={sent[-1]['action_id']}"
            pages.append(await (await client.get("/console/")).text())  # another tab: not its notice
            pages += [await (await client.get(done)).text() for _ in range(2)]
            return pages

    before, other_tab, after, again = asyncio.run(scenario())
    assert '<option value="bob" disabled>B (bob): has no skill for topic:E</option>' in before
    assert '<option value="carol">C (carol)</option>' in before and '<option value="alice"' not in before
    assert 'class="notice"' not in other_tab, "a notice belongs to the page its action redirected to"
    assert '<p class="notice" role="status">Reassigned case-a1: now assigned to carol.</p>' in after
    assert 'class="notice"' not in again, "the notice is shown once"
    assert sched.case("case-a1")["analyst"] == "carol"


def test_a_session_keeps_only_its_newest_notices() -> None:
    session = Session("sid", "alice", "tok", 0)
    for i in range(40):
        session.tell(f"a{i}", f"notice {i}")
    assert list(session.notices) == [f"a{i}" for i in range(24, 40)]  # bounded: closed tabs never collect theirs


def test_after_an_action_the_notice_says_why_a_case_waits(monkeypatch) -> None:
    from streams import case_state
    from streams.console import views

    sched = Scheduler(desk(), SchedulerPolicy())
    events = sched.on_anomaly(anomaly("stranded1", "topic:Credit"), datetime.now(UTC))  # nobody has the skill
    monkeypatch.setattr(case_state, "load", lambda: sched)
    assert views.aftermath("reopen", "case-stranded1", "alice", events) == (
        "Reopened case-stranded1: waiting for an analyst "
        "(no qualified analyst: nobody on the roster has a skill for topic:Credit).")
    assert views.aftermath("resolve", "case-x", "alice", []) == "Resolved case-x."
    assigned = [{"event": "assigned", "case_id": "case-x", "analyst": "alice"}]
    assert views.aftermath("reopen", "case-x", "alice", assigned) == "Reopened case-x: now assigned to you."


def test_the_overview_links_an_open_anomaly_only_to_a_case_page_the_analyst_may_open() -> None:
    from streams.console import views

    page = {"anomaly_id": "a1", "status": "open"}
    assert views.with_case(page, case(status="waiting", analyst=None), "alice")["case"]["readable"]
    assert views.with_case(page, case(status="waiting", analyst=None), "alice")["case"]["note"] == "waiting for an analyst"
    assert views.with_case(page, case(status="assigned", analyst="alice"), "alice")["case"]["readable"]
    assert views.with_case(page, case(status="auto_resolved", analyst=None), "alice")["case"]["readable"]
    held = views.with_case(page, case(status="assigned", analyst="bob"), "alice")["case"]
    assert not held["readable"] and held["note"] == "held by another analyst"
    assert not views.with_case(page, None, "alice")["case"]["readable"]
    html = views.render("overview.html", session=Session("s", "alice", "t", 0), trends=[], tickers=[],
                        watchlist=False, busiest=12, team=[], waiting=0, over_sla=0, queue=[], machine_closed=[],
                        anomalies=[{**page, "kind": "surge", "scope": "topic:E", "severity": "critical",
                                    "observed": 3, "expected": 1.0, "window_end": "", "case": held}])
    section = html.split('id="anom-h"')[1].split("</section>")[0]
    assert "held by another analyst" in section and "href=" not in section


# ---- 4. sessions ----------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_one_analyst_signing_in_again_and_again_ends_only_their_own_oldest_sessions() -> None:
    sessions = Sessions(lifetime=3600, clock=Clock(), limit=100, per_analyst=3)
    alice = sessions.create("alice", "ref")
    mallory = [sessions.create("mallory", "ref") for _ in range(1000)]
    assert sessions.get(alice.sid) is alice
    assert sessions.of("mallory") == 3 and len(sessions) == 4
    assert [sessions.get(m.sid) for m in mallory[-3:]] == mallory[-3:] and sessions.get(mallory[-4].sid) is None


def test_a_full_table_never_evicts_others_in_favour_of_the_analyst_holding_the_most() -> None:
    clock = Clock()
    sessions = Sessions(lifetime=3600, clock=clock, limit=6, per_analyst=10)
    alice, bob = sessions.create("alice", "ref"), sessions.create("bob", "ref")
    mallory = [sessions.create("mallory", "ref") for _ in range(50)]
    assert sessions.get(alice.sid) is alice and sessions.get(bob.sid) is bob and len(sessions) == 6
    assert sessions.of("mallory") == 4 and sessions.get(mallory[-1].sid) is mallory[-1]
    carol = sessions.create("carol", "ref")  # room is made from whoever holds the most: mallory
    assert sessions.get(carol.sid) is carol and sessions.get(alice.sid) is alice and sessions.of("mallory") == 3
    clock.now += 3601  # all expired: they go first, before anyone live would
    dana = sessions.create("dana", "ref")
    assert len(sessions) == 1 and sessions.get(dana.sid) is dana


def test_ten_thousand_sign_ins_with_one_token_leave_the_others_signed_in(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from streams.console import views
    from streams.views.cases import FailureLimiter

    roster = desk()
    app, _ = console_app(monkeypatch, Scheduler(roster, SchedulerPolicy()), roster)
    monkeypatch.setattr(views, "SESSIONS", Sessions(3600, limit=50, per_analyst=5))
    monkeypatch.setattr(views, "LIMITER", FailureLimiter())

    async def sign_in(client, token: str) -> str:
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({PRE_COOKIE: "pre"})
        answer = await client.post("/console/signin", data={"csrf": "pre", "token": token}, allow_redirects=False)
        assert answer.status == 303
        return answer.cookies[COOKIE].value

    async def scenario() -> tuple[str, list[str]]:
        async with TestClient(TestServer(app)) as client:
            alice = await sign_in(client, ALICE)
            bob = [await sign_in(client, BOB) for _ in range(200)]
            return alice, bob

    alice, bob = asyncio.run(scenario())
    assert views.SESSIONS.get(alice).analyst == "alice"
    assert views.SESSIONS.of("bob") == 5 and views.SESSIONS.get(bob[-1]).analyst == "bob"


# ---- 5. sign-in throttle and bounded scrypt -----------------------------------------------------

class SlowChecks:
    """streams/views/cases.py `bearer_person` with its slow (scrypt) checks held: each waits for a
    permit (`let`), so a test sees what is in progress at once without timing anything."""

    def __init__(self) -> None:
        from streams.views import cases

        self.real = cases.bearer_person
        self.permits, self.lock = threading.Semaphore(0), threading.Lock()
        self.running, self.most, self.started = 0, 0, []

    def __call__(self, current: object, header: str | None, slow: bool = True) -> object:
        if slow:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
                self.started.append(header)
            try:
                assert self.permits.acquire(timeout=30), "a held check was never let go"
            finally:
                with self.lock:
                    self.running -= 1
        return self.real(current, header, slow)

    def let(self, n: int = 1000) -> None:
        self.permits.release(n)


def held_checks(monkeypatch, threads: int = 2, queue: int = 64):
    """A fresh limiter and verifier for the API and the console, with `SlowChecks` for scrypt."""
    from streams.console import views
    from streams.views import cases

    checks, limiter = SlowChecks(), cases.FailureLimiter()
    verifier = cases.Verifier(threads=threads, queue=queue)
    monkeypatch.setattr(cases, "bearer_person", checks)
    for module in (cases, views):
        monkeypatch.setattr(module, "LIMITER", limiter)
        monkeypatch.setattr(module, "VERIFIER", verifier)
    return checks, limiter, verifier


def desk_of(n: int) -> tuple[object, dict[str, str]]:
    """A roster of `n` hashed analysts with tokens no other test presented (none verified before)."""
    tokens = {f"a{i}": secrets.token_urlsafe(24) for i in range(n)}
    return parse_roster("analysts:\n" + "\n".join(
        f'  - {{id: {a}, name: {a}, capacity: 5, shifts: ["Mon-Sun 00:00-24:00 UTC"], skills: {{topics: {{E: 1}}}}, '
        f'notify: "https://h.example/{a}", token_hash: "{hash_token(t, n=16)}"}}' for a, t in tokens.items())), tokens


def api_app(monkeypatch, roster, by_header: bool = False):
    """The API's `gate` on a real aiohttp server; `by_header`: the client address is X-Client's."""
    from aiohttp import web

    from streams.views import cases

    monkeypatch.setattr(cases, "roster", lambda: roster)
    monkeypatch.setattr(cases, "is_owner", lambda: True)
    if by_header:
        monkeypatch.setattr(cases, "client_address", lambda request, proxies: request.headers["X-Client"])

    class Stub:
        @staticmethod
        def json(value: object, status: int = 200, headers: dict | None = None) -> web.Response:
            return web.json_response(value, status=status, headers=headers)

    async def handler(request: web.Request) -> web.StreamResponse:
        person, refusal = await cases.gate(Stub(), request)
        return refusal if person is None else web.json_response({"id": person.id})

    app = web.Application()
    app.router.add_get("/cases", handler)
    return app


# Changed expectation (in-flight attempts are no longer failures): thirty guesses at once used to give
# five 401s and twenty-five 429s; now at most FailureLimiter.in_flight (16) reach scrypt, the rest are
# told to retry in 1 s, and once those 16 have failed the address is blocked for the window.
def test_concurrent_wrong_guesses_reach_scrypt_only_up_to_the_in_flight_bound(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from streams.console import views

    roster = desk()
    app, _ = console_app(monkeypatch, Scheduler(roster, SchedulerPolicy()), roster)
    checks, limiter, verifier = held_checks(monkeypatch)

    async def scenario() -> tuple[list[tuple[int, str]], int, str, int]:
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({PRE_COOKIE: "pre"})
            guesses = [asyncio.ensure_future(client.post("/console/signin", allow_redirects=False,
                                                         data={"csrf": "pre", "token": f"guess-{i}"}))
                       for i in range(30)]
            await until(lambda: sum(g.done() for g in guesses) + verifier.pending == 30, "every guess placed")
            assert verifier.pending == 16 and checks.running == 2
            early = [(g.result().status, await g.result().text()) for g in guesses if g.done()]
            checks.let()
            answers = [(a.status, await a.text()) for a in await asyncio.gather(*guesses)]
            client.session.cookie_jar.clear()  # each answer set a fresh form token
            client.session.cookie_jar.update_cookies({PRE_COOKIE: "pre"})
            good = await client.post("/console/signin", data={"csrf": "pre", "token": ALICE}, allow_redirects=False)
            return early, [s for s, _ in answers].count(401), await good.text(), good.status

    try:
        early, failed, good_text, good = asyncio.run(scenario())
    finally:
        checks.let()
        verifier.pool.shutdown(wait=True)
    assert len(early) == 14 and all(s == 429 and "retry in 1 s" in t for s, t in early), early
    assert failed == 16 and checks.most == 2 and len(limiter._failures["127.0.0.1"]) == 16
    # hashed and never verified here: a blocked address gets no scrypt, and waits out its failures
    # the failures' window (60 s, less what a busy machine took since the first), not the in-flight "1 s"
    wait = re.search(r"retry in (\d+) s", good_text)
    assert good == 429 and wait and 1 < int(wait.group(1)) <= limiter.window and views.LIMITER is limiter


def test_a_successful_sign_in_takes_its_counted_attempt_back(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from streams.console import views
    from streams.views.cases import FailureLimiter

    roster = desk()
    app, _ = console_app(monkeypatch, Scheduler(roster, SchedulerPolicy()), roster)
    monkeypatch.setattr(views, "LIMITER", FailureLimiter())

    async def scenario() -> list[int]:
        statuses = []
        async with TestClient(TestServer(app)) as client:
            for token in ["g1", "g2", "g3", "g4", ALICE, ALICE, BOB, "g5", "g6"]:
                client.session.cookie_jar.clear()  # each answer sets a fresh form token
                client.session.cookie_jar.update_cookies({PRE_COOKIE: "pre"})
                answer = await client.post("/console/signin", data={"csrf": "pre", "token": token},
                                           allow_redirects=False)
                statuses.append(answer.status)
        return statuses

    assert asyncio.run(scenario()) == [401, 401, 401, 401, 303, 303, 303, 401, 429]


# Changed expectation, as the console's above: 16 guesses reach scrypt, 14 are told Retry-After: 1;
# Retry-After counts from the completed failures only.
def test_the_apis_token_check_bounds_checks_in_progress_and_blocks_on_completed_failures(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    roster = desk()
    checks, limiter, verifier = held_checks(monkeypatch)
    app = api_app(monkeypatch, roster)

    async def scenario() -> tuple[list[str], list[int], str, int]:
        async with TestClient(TestServer(app)) as client:
            guesses = [asyncio.ensure_future(client.get("/cases", headers={"Authorization": f"Bearer guess-{i}"}))
                       for i in range(30)]
            await until(lambda: sum(g.done() for g in guesses) + verifier.pending == 30, "every guess placed")
            early = [g.result().headers["Retry-After"] for g in guesses if g.done() and g.result().status == 429]
            checks.let()
            statuses = [a.status for a in await asyncio.gather(*guesses)]
            blocked = await client.get("/cases", headers={"Authorization": "Bearer guess-again"})
            limiter._failures.clear()  # the minute passes
            good = await client.get("/cases", headers={"Authorization": f"Bearer {BOB}"})
            return early, statuses, blocked.headers["Retry-After"], good.status

    try:
        early, statuses, blocked_after, good = asyncio.run(scenario())
    finally:
        checks.let()
        verifier.pool.shutdown(wait=True)
    assert early == ["1"] * 14 and statuses.count(401) == 16 and statuses.count(429) == 14, statuses
    assert int(blocked_after) >= 59, "blocked for the window, from the completed failures"
    assert good == 200 and not limiter._failures.get("127.0.0.1"), "a valid token is no failure"


def test_scrypt_runs_on_a_bounded_number_of_threads_with_a_bounded_queue(monkeypatch) -> None:
    from streams.views import cases

    release, lock = threading.Event(), threading.Lock()
    running = {"now": 0, "most": 0}

    def slow_check(current: object, header: str | None, slow: bool = True) -> None:
        """No match, ever; the slow (scrypt) check holds its thread until released."""
        if slow:
            with lock:
                running["now"] += 1
                running["most"] = max(running["most"], running["now"])
            release.wait(30)
            with lock:
                running["now"] -= 1

    monkeypatch.setattr(cases, "bearer_person", slow_check)
    verifier = cases.Verifier(threads=2, queue=3)

    async def scenario() -> list[object]:
        checks = [asyncio.ensure_future(verifier.person(None, f"Bearer g{i}", True)) for i in range(8)]
        await until(lambda: running["now"] == 2 and verifier.pending == 5, "two checks running and three waiting")
        await until(lambda: sum(c.done() for c in checks) == 3, "the checks beyond the queue refused")
        assert running["most"] == 2
        release.set()
        return await asyncio.gather(*checks, return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        release.set()
        verifier.pool.shutdown(wait=True)
    assert sum(isinstance(r, cases.VerifierBusy) for r in results) == 3 and results.count(None) == 5
    assert running["most"] == 2 and verifier.pending == 0


# ---- 5b. analysts behind one proxy; floods from one IPv6 /64 -------------------------------------

def test_analysts_being_checked_behind_one_proxy_never_block_its_valid_tokens(monkeypatch) -> None:
    # Counting every attempt as a failure until it passed made five analysts being checked at once
    # block the proxy's address: the sixth valid (uncached) token was refused "retry in 60 s".
    from aiohttp.test_utils import TestClient, TestServer

    roster, tokens = desk_of(20)
    checks, limiter, verifier = held_checks(monkeypatch)
    app = api_app(monkeypatch, roster)

    async def scenario() -> tuple[list[tuple[int, str | None]], list[int], int]:
        async with TestClient(TestServer(app)) as client:
            desk = [asyncio.ensure_future(client.get("/cases", headers={"Authorization": f"Bearer {token}"}))
                    for token in list(tokens.values())[:17]]
            await until(lambda: sum(a.done() for a in desk) + verifier.pending == 17, "every sign-in placed")
            early = [(a.result().status, a.result().headers.get("Retry-After")) for a in desk if a.done()]
            checks.let()
            statuses = [a.status for a in await asyncio.gather(*desk)]
            later = [await client.get("/cases", headers={"Authorization": f"Bearer {token}"})
                     for token in list(tokens.values())[17:]]
            return early, statuses + [a.status for a in later], len(limiter._failures.get("127.0.0.1", ()))

    try:
        early, statuses, failures = asyncio.run(scenario())
    finally:
        checks.let()
        verifier.pool.shutdown(wait=True)
    # 16 checks from one address at once; the 17th is told to retry in a second, not a minute
    assert early == [(429, "1")], early
    assert statuses.count(200) == 19 and failures == 0


def test_a_proxy_desk_signing_in_at_shift_start_is_not_refused_for_failures(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    roster, tokens = desk_of(12)
    app, _ = console_app(monkeypatch, Scheduler(roster, SchedulerPolicy()), roster)
    checks, limiter, verifier = held_checks(monkeypatch)

    async def sign_in(client, token: str):
        return await client.post("/console/signin", data={"csrf": "pre", "token": token}, allow_redirects=False)

    async def scenario() -> tuple[list[int], list[int]]:
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({PRE_COOKIE: "pre"})
            desk = [asyncio.ensure_future(sign_in(client, token)) for token in tokens.values()]
            desk += [asyncio.ensure_future(sign_in(client, f"guess-{i}-of-enough-length-x")) for i in range(4)]
            await until(lambda: sum(a.done() for a in desk) + verifier.pending == 16, "every sign-in placed")
            assert verifier.pending == 16, "the desk and four guesses are all being checked"
            checks.let()
            answers = await asyncio.gather(*desk)
            return [a.status for a in answers[:12]], [a.status for a in answers[12:]]

    try:
        analysts, guesses = asyncio.run(scenario())
    finally:
        checks.let()
        verifier.pool.shutdown(wait=True)
    assert analysts == [303] * 12 and guesses == [401] * 4
    assert len(limiter._failures["127.0.0.1"]) == 4 and not limiter._running


def test_addresses_in_one_ipv6_64_are_one_client_for_the_failure_limiter() -> None:
    from streams.views.cases import NOT_FOUND_LIMITER, FailureLimiter
    from streams.views.http import address_group

    assert address_group("2001:db8::1") == address_group("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_group("2001:db8:0:1::1") == "2001:db8:0:1::/64"
    assert address_group("198.51.100.7") == "198.51.100.7" and address_group("unknown") == "unknown"
    limiter = FailureLimiter()
    for i in range(5):
        limiter.fail(f"2001:db8::{i + 1:x}", 0.0)
    assert limiter.retry_after("2001:db8::beef", 1.0) == pytest.approx(59.0)
    assert limiter.admit("2001:db8::cafe", 1.0) is not None
    assert limiter.retry_after("2001:db8:0:1::1", 1.0) is None and limiter.admit("198.51.100.7", 1.0) is None
    assert not NOT_FOUND_LIMITER.group_addresses  # its keys are analyst ids


def test_a_flood_from_one_ipv6_64_cannot_keep_a_valid_sign_in_out_of_the_verifier(monkeypatch) -> None:
    # 40 guessers on 40 addresses of one /64, each within the per-address limits, filled the shared
    # queue: a valid (uncached) token retried every second was told "busy" every time.
    from aiohttp.test_utils import TestClient, TestServer

    roster, tokens = desk_of(3)
    checks, limiter, verifier = held_checks(monkeypatch, threads=2, queue=14)  # 16 slots in all
    app = api_app(monkeypatch, roster, by_header=True)

    async def scenario() -> tuple[list[str], int, int]:
        async with TestClient(TestServer(app)) as client:
            flood = [asyncio.ensure_future(client.get("/cases", headers={
                "Authorization": f"Bearer guess-{i}", "X-Client": f"2001:db8::{i + 1:x}"})) for i in range(40)]
            await until(lambda: sum(f.done() for f in flood) + verifier.pending == 40, "every guess placed")
            assert verifier.pending == 16 and checks.running == 2  # one client's in-flight bound: the whole queue
            valid = asyncio.ensure_future(client.get("/cases", headers={
                "Authorization": f"Bearer {tokens['a1']}", "X-Client": "198.51.100.7"}))
            await until(lambda: sum(f.done() for f in flood) == 25, "a slot taken from the flood for the valid one")
            checks.let(2)  # the two flood checks running end: the next is one of the flood's, then the valid one
            await until(lambda: len(checks.started) == 4, "the next two checks started")
            assert f"Bearer {tokens['a1']}" in checks.started[2:], "served in turn, not after the whole flood"
            checks.let()
            answer = await valid
            await asyncio.gather(*flood)
            return checks.started, answer.status, len(limiter._failures["2001:db8::/64"])

    try:
        started, status, failures = asyncio.run(scenario())
    finally:
        checks.let()
        verifier.pool.shutdown(wait=True)
    assert status == 200 and failures == 15 and len(started) == 16


def test_the_verifier_caps_each_clients_slots_and_serves_clients_in_turn(monkeypatch) -> None:
    from streams.views import cases

    checks, roster = SlowChecks(), desk()
    monkeypatch.setattr(cases, "bearer_person", checks)
    verifier = cases.Verifier(threads=1, queue=5, per_client=3)  # six slots

    async def scenario() -> list[object]:
        async def check(client: str, name: str) -> asyncio.Future:
            """`name`'s check, once it runs, waits or is refused (one at a time: the order is the test's)."""
            check = asyncio.ensure_future(verifier.person(roster, f"Bearer {name}", True, client))
            await until(lambda: check.done() or f"Bearer {name}" in checks.started
                        or any(h == f"Bearer {name}" for q in verifier.waiting.values() for _, _, h in q),
                        f"{name} placed")
            return check

        a = [await check("2001:db8::1", f"a{i}") for i in range(3)]
        a.append(await check("2001:db8::2", "a3"))  # the same /64: over its three slots
        b = [await check("198.51.100.8", f"b{i}") for i in range(3)]  # every slot taken now
        c = await check("198.51.100.9", "c0")  # takes the newest waiting slot of one holding the most (a2)
        d = await check("198.51.100.10", "d0")  # b holds the most now: b2
        e = await check("198.51.100.11", "e0")  # a and b hold two, the rest one: a's newest waiting (a1)
        f = await check("198.51.100.12", "f0")  # b holds two: b1
        g = await check("198.51.100.13", "g0")  # everyone holds one: refused
        assert verifier.pending == 6
        checks.let()
        return await asyncio.gather(*a, *b, c, d, e, f, g, return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        checks.let()
        verifier.pool.shutdown(wait=True)
    busy = [isinstance(r, cases.VerifierBusy) for r in results]
    assert busy == [False, True, True, True, False, True, True, False, False, False, False, True], results
    assert [h.split()[1] for h in checks.started] == ["a0", "b0", "c0", "d0", "e0", "f0"]
    assert verifier.pending == 0 and verifier.running == 0 and not verifier.waiting


def test_a_waiter_cancelled_as_a_newcomer_arrives_is_not_evicted_and_frees_its_slot(monkeypatch) -> None:
    # Every slot taken, the newest waiter cancelled (its client gone) in the tick a newcomer arrives:
    # it was still chosen to be told VerifierBusy, set_exception raised InvalidStateError at the
    # newcomer (a 500), and its slot was never given back (repeated, the address is locked out).
    from streams.views import cases

    checks, roster = SlowChecks(), desk()
    monkeypatch.setattr(cases, "bearer_person", checks)
    verifier = cases.Verifier(threads=1, queue=2, per_client=16)  # three slots

    async def scenario() -> tuple[object, list[object]]:
        big = [asyncio.ensure_future(verifier.person(roster, f"Bearer x{i}", True, "203.0.113.9")) for i in range(3)]
        await until(lambda: verifier.pending == 3 and len(checks.started) == 1, "one running, two waiting")
        loop, got = asyncio.get_running_loop(), {}

        async def newcomer() -> None:
            try:
                got["newcomer"] = await verifier.person(roster, "Bearer y", True, "198.51.100.7")
            except BaseException as exc:  # noqa: BLE001 - what the newcomer's request would have met
                got["newcomer"] = exc

        async def at_once(fn, *args):  # the fast check's thread returning in this tick, as it can
            return fn(*args)

        def tick() -> None:  # the newcomer's step queued first, then the waiter cancelled
            loop.create_task(newcomer())
            big[2].cancel()

        with monkeypatch.context() as patched:
            patched.setattr(asyncio, "to_thread", at_once)
            loop.call_soon(tick)
            await until(lambda: "newcomer" in got or any(h == "Bearer y" for q in verifier.waiting.values()
                                                         for _, _, h in q), "the newcomer placed")
        checks.let()
        results = await asyncio.gather(*big, return_exceptions=True)
        await until(lambda: "newcomer" in got, "newcomer answered")
        return got["newcomer"], results

    try:
        newcomer, results = asyncio.run(scenario())
    finally:
        checks.let()
        verifier.pool.shutdown(wait=True)
    assert newcomer is None, newcomer  # checked: an unknown token, not InvalidStateError
    assert isinstance(results[2], asyncio.CancelledError) and results[:2] == [None, None]
    assert verifier.pending == 0 and verifier.running == 0 and not verifier.waiting and not verifier.held


# ---- 6. charts ------------------------------------------------------------------------------------

def test_junk_scopes_are_forgotten_once_empty_and_room_comes_back(monkeypatch) -> None:
    monkeypatch.setattr(charts, "MAX_SCOPES", 5)
    now = [1_767_600_000.0]
    series = charts.Series(clock=lambda: now[0])
    for i in range(5):
        feed.record(json.dumps({"published_at": datetime.fromtimestamp(now[0] - 60, UTC).isoformat(),
                                "sentiment": "neutral", "tickers": [f"JUNK{i}"]}).encode(), series)
    assert len(series.scopes) == 5
    assert not series.add("ticker:ACME", now[0], "negative")  # full
    note = series.untracked("ticker:ACME")
    assert note and "not tracked" in note and series.untracked("ticker:JUNK0") is None
    chart = str(charts.scope_chart(series.binned("ticker:ACME", now[0] - 3600, now[0], 300), None, "t", note=note))
    assert 'class="untracked"' in chart and "not tracked" in chart
    now[0] += charts.KEEP_SECONDS + 120
    series.prune(now[0])
    assert series.scopes == {} and series.untracked("ticker:ACME") is None
    assert series.add("ticker:ACME", now[0], "negative")
    assert sum(c for _, c, _ in series.binned("ticker:ACME", now[0] - 60, now[0] + 60, 60)) == 1


def test_stories_dated_far_from_now_are_not_counted_and_future_minutes_are_pruned() -> None:
    now = 1_767_600_000.0
    series = charts.Series(clock=lambda: now)
    assert not series.add("topic:E", now + 365 * 86_400, "neutral")  # a year ahead: would never be pruned
    assert not series.add("topic:E", now - charts.KEEP_SECONDS - 60, "neutral")  # older than is kept
    assert series.add("topic:E", now + charts.FUTURE_SECONDS - 60, "neutral")  # clock skew is fine
    assert series.scopes.keys() == {"topic:E"}
    series.scopes["topic:X"] = {int((now + 365 * 86_400) // 60): charts.Bucket(1, 0.0)}  # kept by an older version
    series.prune(now)
    assert series.scopes.keys() == {"topic:E"}


def test_a_watched_ticker_that_is_not_tracked_says_so_instead_of_zero_stories(monkeypatch) -> None:
    from streams.console import views

    monkeypatch.setattr(charts, "MAX_SCOPES", 1)
    end = 1_767_600_000.0
    series = charts.Series(clock=lambda: end)
    series.add("ticker:JUNK", end - 60, "neutral")
    [acme] = views.ticker_trends(frozenset({"ACME"}), end, series)
    assert acme["untracked"]
    html = views.render("overview.html", session=Session("s", "alice", "t", 0), trends=[], tickers=[acme],
                        watchlist=True, busiest=12, anomalies=[], team=[], waiting=0, over_sla=0, queue=[],
                        machine_closed=[])
    ticker = html.split('id="ticker-h"')[1].split("</section>")[0]
    assert "not tracked" in ticker and "0 stories" not in ticker


# ---- 7. records that once made the case page a 500; headers on every answer -----------------------

@pytest.mark.parametrize(("change", "field"), [
    ({"samples": [{"id": "s1", "headline": "h", "confidence": "0.97"}]}, "samples"),
    ({"samples": [{"id": "s1", "headline": "h", "confidence": 1.5}]}, "samples"),
    ({"samples": [{"headline": "h"}]}, "samples"),
    ({"window_end": "soon"}, "window_end"),
    ({"window_start": "2026-13-01T00:00:00Z"}, "window_start"),
])
def test_a_record_the_case_page_cannot_show_is_refused_where_it_is_parsed(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AnomalyEvent.from_json(event_json(**change))


def test_a_stored_record_with_bad_fields_still_renders_and_a_zoneless_time_is_utc() -> None:
    from streams.console import views

    # kept in the anomaly table by a version that did not check them
    record = {"anomaly_id": "a1", "scope": "topic:E", "window_start": "2026-01-05T09:00:00", "window_end": "soon",
              "observed": 1, "expected": 1.0, "score": 1, "status": "open", "history": [],
              "headlines": [{"id": "s1", "headline": "h", "sentiment": "negative", "confidence": "0.97"}]}
    rows = views.headlines(case(), record)
    assert rows[0]["confidence"] is None and views.confidence(rows) is None
    html = views.render("case.html", session=Session("s", "alice", "t", 0), case=views.row(case(), datetime.now(UTC)),
                        record=record, headlines=rows, confidence=None, policy=SchedulerPolicy(),
                        chart=views.case_chart(case(), record)[0], topics=[], targets=[], labels_allowed=True)
    assert "soon" in html and "2026-01-05 09:00:00 UTC" in html
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        assert views.when("2026-01-05T09:00:00") == "2026-01-05 09:00:00 UTC"
        assert views.when("2026-01-05T09:00:00-05:00") == "2026-01-05 14:00:00 UTC"
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_every_console_answer_has_the_security_headers_a_500_included(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer
    from faust.web import exceptions

    from streams.console import views

    roster = desk()
    app, _ = console_app(monkeypatch, Scheduler(roster, SchedulerPolicy()), roster)
    alice = views.SESSIONS.create("alice", roster.analysts["alice"].fingerprint())

    def broken(case_id: str, session: Session) -> None:
        raise RuntimeError("a record nobody expected")

    monkeypatch.setattr(views, "viewable", broken)

    async def scenario() -> list[tuple[int, dict, str]]:
        out = []
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({COOKIE: alice.sid})
            for method, path in [("GET", "/console/cases/case-a1"), ("POST", "/console/cases/case-a1/ack"),
                                 ("GET", "/console/overview"), ("POST", "/console/signin")]:
                answer = await client.request(method, path, data={"csrf": alice.csrf}, allow_redirects=False)
                out.append((answer.status, dict(answer.headers), await answer.text()))
        return out

    answers = asyncio.run(scenario())
    assert answers[0][0] == 500 and "Something went wrong" in answers[0][2] and "Traceback" not in answers[0][2]
    assert answers[1][0] == 500
    for status, headers, _ in answers:
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name) == value, (status, name)
    refused = asyncio.run(views.SignoutView(None, None).on_request_error(None, exceptions.MethodNotAllowed("GET")))
    assert refused.status == 405 and refused.headers["Content-Security-Policy"] == SECURITY_HEADERS[
        "Content-Security-Policy"]


# ---- 8. cut lists say so ----------------------------------------------------------------------------

def test_every_cut_list_on_the_overview_says_how_many_it_shows_of_how_many(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from streams.console import views

    roster = desk()
    sched = Scheduler(roster, SchedulerPolicy())
    now = datetime.now(UTC)
    for i in range(30):
        sched.on_anomaly(anomaly(f"w{i}", "topic:Credit"), now)  # nobody's skill: waiting
        sched.on_anomaly(anomaly(f"i{i}", severity="info"), now)  # closed by the machine
    app, _ = console_app(monkeypatch, sched, roster)
    pages = {f"p{i}": {"anomaly_id": f"w{i}", "status": "open", "kind": "surge", "scope": "topic:Credit",
                       "severity": "critical", "observed": 3, "expected": 1.0, "window_end": f"2026-01-05T09:{i:02d}:00Z"}
             for i in range(views.ANOMALIES_SHOWN + 5)}
    monkeypatch.setattr(views, "anomaly_pages", pages)
    alice = views.SESSIONS.create("alice", roster.analysts["alice"].fingerprint())

    async def scenario() -> str:
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({COOKIE: alice.sid})
            answer = await client.get("/console/overview")
            assert answer.status == 200
            return await answer.text()

    html = asyncio.run(scenario())
    assert "30 case(s) waiting" in html
    assert f"Showing the first {views.WAITING_SHOWN} of 30." in html.split('id="waiting-h"')[1].split("</section>")[0]
    assert (f"Showing {views.MACHINE_CLOSED_SHOWN} of 30."
            in html.split('id="machine-h"')[1].split("</section>")[0])
    anomalies = html.split('id="anom-h"')[1].split("</section>")[0]
    assert f"Showing the latest {views.ANOMALIES_SHOWN} of {views.ANOMALIES_SHOWN + 5}." in anomalies
    # the latest 50 windows are w5..w54: w5..w29 have waiting cases (anyone may read), the rest none yet
    assert anomalies.count('href="/console/cases/case-w') == 25 and anomalies.count("no case yet") == 25


def test_a_list_that_is_not_cut_says_nothing_of_the_kind() -> None:
    from streams.console import views

    html = views.render("overview.html", session=Session("s", "alice", "t", 0), trends=[], tickers=[],
                        watchlist=False, busiest=12, anomalies=[], team=[], waiting=0, over_sla=0, queue=[],
                        machine_closed=[], machine_closed_total=0, anomalies_total=0)
    assert "Showing" not in html


# ---- 9. the session cookie ---------------------------------------------------------------------------

def test_the_session_cookie_is_lax_and_every_console_post_still_needs_its_csrf_token(monkeypatch) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from streams.console import views
    from streams.views.cases import FailureLimiter

    assert cookie_attributes(secure=False, max_age=60)["samesite"] == "Lax"
    roster = desk()
    sched = Scheduler(roster, SchedulerPolicy())
    sched.on_anomaly(anomaly("mine1"), datetime.now(UTC))
    app, sent = console_app(monkeypatch, sched, roster)
    monkeypatch.setattr(views, "LIMITER", FailureLimiter())
    alice = views.SESSIONS.create("alice", roster.analysts["alice"].fingerprint())

    async def scenario() -> tuple[str, list[int]]:
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({PRE_COOKIE: "pre"})
            answer = await client.post("/console/signin", data={"csrf": "pre", "token": ALICE}, allow_redirects=False)
            cookie = next(v for k, v in answer.headers.items() if k == "Set-Cookie" and v.startswith(COOKIE))
            statuses = []
            client.session.cookie_jar.clear()
            client.session.cookie_jar.update_cookies({COOKIE: alice.sid, PRE_COOKIE: "pre"})
            for path, data in [("/console/cases/case-mine1/ack", {}), ("/console/cases/case-mine1/resolve",
                                                                       {"csrf": "wrong"}),
                               ("/console/signout", {}), ("/console/signin", {"token": ALICE})]:
                answer = await client.post(path, data=data, allow_redirects=False)
                statuses.append(answer.status)
            return cookie, statuses

    cookie, statuses = asyncio.run(scenario())
    assert "samesite=lax" in cookie.lower() and "httponly" in cookie.lower()
    assert statuses == [403, 403, 403, 403] and sent == []
    assert views.SESSIONS.get(alice.sid) is alice, "a sign-out without the CSRF token ends nothing"


def test_sign_in_pages_open_in_two_tabs_both_work(monkeypatch) -> None:
    # Each sign-in page replaced the other's form token, so the older tab always failed ("The sign-in
    # form expired"), its typed token cleared; once one tab had signed in, the other failed too.
    from aiohttp.test_utils import TestClient, TestServer

    roster = desk()
    app, _ = console_app(monkeypatch, Scheduler(roster, SchedulerPolicy()), roster)

    async def scenario() -> list[tuple[int, str]]:
        async with TestClient(TestServer(app)) as client:
            forms = []
            for back in ("/anomalies/a1", "/anomalies/a2"):  # two alert links, two tabs
                page = await client.get(f"/console/signin?next={back}")
                forms.append(re.search(r'name="csrf" value="([0-9a-f]+)"', await page.text()).group(1))
            answers = []
            for csrf, back in zip(forms, ("/anomalies/a1", "/anomalies/a2"), strict=True):
                answer = await client.post("/console/signin", allow_redirects=False,
                                           data={"csrf": csrf, "token": ALICE, "next": back})
                answers.append((answer.status, answer.headers.get("Location", "")))
            return answers

    assert asyncio.run(scenario()) == [(303, "/anomalies/a1"), (303, "/anomalies/a2")]


def test_a_resolve_needs_an_outcome_and_action_or_console_addresses_opened_as_pages_lead_somewhere(
        monkeypatch) -> None:
    # One click on an empty outcome resolved a critical case for good; a reload of an action's address
    # was a bare 405, and /console without its slash a bare 404.
    from aiohttp.test_utils import TestClient, TestServer

    from streams.console import views

    roster = desk()
    sched = Scheduler(roster, SchedulerPolicy())
    sched.on_anomaly(anomaly("mine2"), datetime.now(UTC))
    app, sent = console_app(monkeypatch, sched, roster)
    alice = views.SESSIONS.create("alice", roster.analysts["alice"].fingerprint())

    async def scenario() -> tuple[int, str, list[tuple[int, str]]]:
        async with TestClient(TestServer(app)) as client:
            client.session.cookie_jar.update_cookies({COOKIE: alice.sid})
            empty = await client.post("/console/cases/case-mine2/resolve", allow_redirects=False,
                                      data={"csrf": alice.csrf, "outcome": "  ", "back": "case"})
            pages = []
            for path in ("/console/cases/case-mine2/resolve", "/console"):
                answer = await client.get(path, allow_redirects=False)
                pages.append((answer.status, answer.headers.get("Location", "")))
            return empty.status, await empty.text(), pages

    status, text, pages = asyncio.run(scenario())
    assert status == 400 and "Write an outcome to resolve the case" in text and sent == []
    assert pages == [(303, "/console/cases/case-mine2"), (303, "/console/")]


def test_a_closed_case_reads_in_words_and_its_age_stops_when_it_closed() -> None:
    # The page said "auto_resolved" and "age 26h 10m" for a case the machine closed ten minutes after it opened.
    from streams.console import views

    created = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    closed = case(status="auto_resolved", analyst=None, created_at=created.isoformat(),
                  closed_at=(created + timedelta(minutes=10)).isoformat(), reason="below the auto-resolve threshold")
    c = views.row(closed, created + timedelta(hours=26))
    assert c["age"] == "10m 00s" and c["closed"]
    html = views.render("case.html", session=Session("s", "alice", "t", 0), case=c, record=None,
                        headlines=views.headlines(c, None), confidence=None, policy=SchedulerPolicy(), chart="",
                        topics=[], targets=[], labels_allowed=True)
    assert "· closed by the machine" in html and "open for 10m 00s" in html and "auto_resolved" not in html
    held = views.row(case(created_at=created.isoformat()), created + timedelta(hours=2))
    assert held["age"] == "2h 00m" and not held["closed"]  # an open case's age runs on
    unknown = views.row({**closed, "closed_at": None}, created + timedelta(hours=26))
    assert unknown["age"] == "26h 00m" and not unknown["closed"]  # no close time: an age, not "open for"
    assert views.status_text("waiting") == "waiting for an analyst" and views.status_text("assigned") == "assigned"


def test_the_case_page_shows_the_anomaly_at_its_worst_not_only_its_resolve() -> None:
    # A critical surge resolved read "Observed / expected 1.0 / 4.49, Score 0.0": the record's fields are
    # its last event's, and the peak (265 against 12.83, score 240.5) was only in the history below.
    from streams.console import views

    history = [{"event": "open", "severity": "warning", "score": 9.1, "observed": 40.0, "expected": 4.0,
                "window_end": "2026-01-05T09:05:00Z"},
               {"event": "escalate", "severity": "critical", "score": 240.5, "observed": 265.0, "expected": 12.83,
                "window_end": "2026-01-05T09:10:00Z"},
               {"event": "resolve", "severity": "critical", "score": "bad", "observed": 1.0, "expected": 4.49,
                "window_end": "2026-01-05T09:30:00Z"}]
    record = {**event_json(), "status": "resolved", "observed": 1.0, "expected": 4.49, "score": 0.0, "history": history}
    assert views.peak(record) == history[1] and views.peak({**record, "history": []})["score"] == 0.0
    html = views.render("case.html", session=Session("s", "alice", "t", 0), case=views.row(case(), datetime.now(UTC)),
                        record=record, peak=views.peak(record), headlines=[], confidence=None,
                        policy=SchedulerPolicy(), chart="", topics=[], targets=[], labels_allowed=True)
    assert "observed 265.0 / expected 12.83, score 240.5 (window ending 2026-01-05 09:10:00 UTC)" in html
    assert "Latest (resolve)" in html and "score 0.0" in html

