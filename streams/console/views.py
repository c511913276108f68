"""The analyst console under /console/ on the worker's web port (issue 19).

Server-rendered HTML (Jinja2 with autoescape: every headline, ticker and note is text), one small
script of our own for live queue updates, and a strict Content-Security-Policy on every answer.
Sign-in exchanges an analyst's roster token, once, for a session cookie (streams/console/sessions.py);
every POST carries the session's CSRF token. Case actions take the analyst API's one path
(streams/case_actions.py): the same dry run against the current state, the same label rules, then
`cases.actions` and a wait for the single writer's real result. Like the API, the console works on the
worker that owns the scheduler state; any other worker answers 503 and says why. The pages are one
`faust.web.Blueprint`, registered by streams/worker.py like every view; each is a `ConsoleView`, whose
every answer (a 500 included) carries the security headers.

Every id put in a URL is one path segment, percent-encoded whole (`segment`): Jinja's `urlencode`
keeps '/' and '.', so an id like `zz/../case-<another>` once made a case's buttons act on another.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import faust
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from alerts.records import finite_number
from models.labels import SENTIMENTS
from scheduler import Operator
from scheduler.cases import CLOSED, HELD, case_id_for, may_view
from scheduler.engine import ACTIONS
from scheduler.workload import workload
from streams import case_state
from streams.app import settings
from streams.case_actions import submit
from streams.console import charts
from streams.console.charts import SERIES, Series
from streams.console.sessions import COOKIE, PRE_COOKIE, SECURITY_HEADERS, Session, Sessions, cookie_attributes, csrf_ok
from streams.loaded_model import model_topics
from streams.notify_state import anomaly_pages
from streams.views.cases import LIMITER, MAX_OUTCOME, NOT_OWNER, VERIFIER, check_token
from streams.views.http import client_address, read_capped

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
# A resolve form carries an outcome of up to MAX_OUTCOME characters; a browser percent-encodes each
# 3-byte UTF-8 character as 9 bytes, and the other fields (CSRF token, return path, ids) fit in 4 KiB.
MAX_FORM = 9 * MAX_OUTCOME + 4 * 1024
SESSIONS = Sessions(settings.console_session_seconds)
# Where sign-in may send an analyst back to: the console's pages and the anomaly pages alerts link to.
RETURN_PREFIXES = ("/console/", "/anomalies/")
blueprint = faust.web.Blueprint("console")

ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)


# ---- formatting helpers for the templates --------------------------------------------------------

def parse(at: object) -> datetime | None:
    """An ISO time as an aware datetime; one without a zone is UTC (every time finsentry writes is);
    None for nothing, or for text that is no time (a foreign record's: shown as text, never a 500)."""
    if not isinstance(at, str) or not at:
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def segment(value: object) -> str:
    """`value` as one URL path segment: every '/', '.', '?', '#', '%' and the like percent-encoded."""
    return quote(str(value), safe="")


def case_page(case_id: str, verb: str | None = None) -> str:
    """The console's page for a case, or the path its form for `verb` posts to."""
    return f"/console/cases/{segment(case_id)}" + (f"/{segment(verb)}" if verb else "")


def duration(seconds: float) -> str:
    sign, seconds = ("-" if seconds < 0 else ""), abs(int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{sign}{hours}h {rest // 60:02d}m" if hours else f"{sign}{rest // 60}m {rest % 60:02d}s"


def left(due: str | None, now: datetime) -> dict[str, Any]:
    when = parse(due)
    if when is None:
        return {"text": "", "late": False}
    seconds = (when - now).total_seconds()
    return {"text": duration(seconds) if seconds >= 0 else f"overdue {duration(-seconds)}", "late": seconds < 0}


def age(created: str | None, until: datetime) -> str:
    when = parse(created)
    return duration((until - when).total_seconds()) if when else ""


def row(case: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A case as the console shows it: its age and SLA clocks, and whether its acknowledge SLA was ever
    missed (escalated, as the scheduler counts it: `escalations` less the resolve breach). A case
    escalated and given back to the same analyst starts a fresh clock; it was "met" once acknowledged."""
    ack_missed = int(case.get("escalations") or 0) - int(bool(case.get("resolve_escalated")))
    closed_at = parse(case.get("closed_at")) if case.get("status") in CLOSED else None  # its age stops there
    return {**case, "age": age(case.get("reopened_at") or case.get("created_at"), closed_at or now),  # as SLAs count
            "closed": closed_at is not None,
            "ack_left": left(case.get("ack_due"), now) if case.get("status") == "assigned" else None,
            "ack_missed": ack_missed > 0, "resolve_left": left(case.get("resolve_due"), now)}


def when(at: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS UTC' (one without a zone is UTC, never the server's local
    time); other text as it is."""
    moment = parse(at)
    if moment is None:
        return at if isinstance(at, str) else ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# A case's status in words: the scheduler's names are identifiers (`auto_resolved`), not prose.
STATUS_TEXT = {"waiting": "waiting for an analyst", "auto_resolved": "closed by the machine"}


def status_text(status: object) -> str:
    """A case status as the console writes it; one it does not know, as it is."""
    return STATUS_TEXT.get(status, str(status)) if isinstance(status, str) else ""


ENV.globals.update(sentiments=SENTIMENTS)
ENV.filters["status_text"] = status_text
ENV.filters["when"] = when
ENV.filters["segment"] = segment
ENV.globals.update(case_page=case_page)


def render(name: str, **context: Any) -> str:
    return ENV.get_template(name).render(**context)


# ---- responses -----------------------------------------------------------------------------------

def page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers=SECURITY_HEADERS)


def secured(response: Any) -> Any:
    """`response` with every security header it does not set itself (a static file sets its own cache)."""
    headers = getattr(response, "headers", None)
    if headers is not None:
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
    return response


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={**SECURITY_HEADERS, "Location": location})


def problem(status: int, title: str, message: str, session: Session | None = None, back: str = "/console/") -> web.Response:
    return page(render("problem.html", title=title, message=message, status=status, session=session, back=back), status)


def failed(request: Any) -> web.Response:
    """The answer to a request whose handler raised: a plain 500 page, with the security headers."""
    log.exception("console: %s %s failed", getattr(request, "method", "?"), getattr(request, "path", "?"))
    message = "The console could not show this page; the worker's log says why. Try again, or go back."
    try:
        return problem(500, "Something went wrong", message)
    except Exception:  # noqa: BLE001 - the templates themselves: a page of text, with the headers
        return web.Response(text=message, status=500, content_type="text/plain", headers=SECURITY_HEADERS)


def guarded(handler: Any) -> Any:
    """A view method whose every answer carries the security headers, an exception's (500) included."""

    @functools.wraps(handler)
    async def answer(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = await handler(self, request, *args, **kwargs)
        except web.HTTPException as exc:  # raised on purpose: still a console answer
            raise secured(exc) from None
        except Exception:  # noqa: BLE001 - one bad record must not become a bare 500 without the headers
            return failed(request)
        return secured(response)

    return answer


class ConsoleView(faust.web.View):
    """A console page: its HTTP methods are `guarded`, and Faust's own refusals (a method the page does
    not take: 405) are console pages too, with the headers."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("get", "post", "head", "put", "patch", "delete", "options"):
            if name in cls.__dict__:
                setattr(cls, name, guarded(cls.__dict__[name]))

    async def on_request_error(self, request: Any, exc: Any) -> Any:
        return problem(exc.code, "Not possible", str(exc.detail))


def current(request: Any) -> Session | None:
    """The request's live session. A session is worth no more than the token it was made with: it ends
    when its analyst leaves the roster or their token changes (rotated in the roster, env var or file)."""
    session = SESSIONS.get(request.cookies.get(COOKIE))
    if session is None:
        return None
    analyst = case_state.roster().analysts.get(session.analyst)
    credential = analyst.fingerprint() if analyst is not None else ""
    if credential is None:  # the token file is being rewritten, say: not signed in now, signed out by nothing
        return None
    if credential != session.credential:
        SESSIONS.drop(session.sid)
        return None
    return session


def safe_return(path: str | None) -> str:
    """A console or anomaly page on this server to go back to after sign-in; anything else (another
    host, a scheme, `//evil`, a `..` that a browser resolves out of /console/) is the queue, so the
    sign-in form cannot be used to send analysts elsewhere."""
    if (path and path.startswith(RETURN_PREFIXES) and "//" not in path and "\\" not in path
            and path.isprintable() and len(path) <= 512 and not _dot_segments(path)):
        return path
    return "/console/"


def _dot_segments(path: str) -> bool:
    """Whether the path has a `.` or `..` segment, plain or percent-encoded (`%2e%2e`), which a browser
    resolves (`/console/../../evil` is `/evil`)."""
    return any(unquote(segment) in (".", "..") for segment in path.split("?", 1)[0].split("#", 1)[0].split("/"))


def to_signin(request: Any) -> web.Response:
    """The sign-in page, saying where to come back to (the page asked for, when it is a GET)."""
    back = safe_return(request.path_qs) if request.method == "GET" else "/console/"
    return redirect("/console/signin" if back == "/console/" else f"/console/signin?next={quote(back, safe='')}")


def signed_in(request: Any) -> tuple[Session | None, web.Response | None]:
    """(session, None) for a signed-in GET on the owner; else the answer to send instead."""
    session = current(request)
    if session is None:
        return None, to_signin(request)
    if not case_state.is_owner():
        return None, problem(503, "Not on this worker", NOT_OWNER, session)
    return session, None


async def form(request: Any) -> dict[str, str] | None:
    """The posted form's fields, or None when the body is over MAX_FORM bytes. The whole body is read
    (a body that arrives in several TCP pieces is not cut at the first), capped as the API's are."""
    raw = await read_capped(request, MAX_FORM)
    if raw is None:
        return None
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


async def checked_post(request: Any) -> tuple[Session | None, dict[str, str], web.Response | None]:
    """A POST from a signed-in analyst with the session's CSRF token; anything else is refused 403."""
    session = current(request)
    if session is None:
        return None, {}, problem(403, "Not signed in", "Sign in again: your session has ended or never began.",
                                 back="/console/signin")
    data = await form(request)
    if data is None:
        return None, {}, problem(413, "Too large", f"A console form is at most {MAX_FORM} bytes.", session)
    if not csrf_ok(session, data.get("csrf")):
        return None, {}, problem(403, "Form expired", "This form did not carry your session's check value "
                                 "(CSRF token). Reload the page and try again.", session)
    if not case_state.is_owner():
        return None, {}, problem(503, "Not on this worker", NOT_OWNER, session)
    return session, data, None


# ---- sign-in and sign-out ------------------------------------------------------------------------

def signin_page(pre: str, error: str | None, status: int, back: str = "/console/") -> web.Response:
    response = page(render("signin.html", pre=pre, error=error, session=None, back=back), status)
    response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="Strict", path="/console/signin", max_age=3600)
    return response


def form_token(request: Any) -> str:
    """The sign-in form's token: the one this browser already holds, so that sign-in pages open in two
    tabs (two alert links) both work, each page having replaced the other's; else a new one."""
    held = request.cookies.get(PRE_COOKIE, "")
    return held if re.fullmatch(r"[0-9a-f]{32}", held) else uuid.uuid4().hex


@blueprint.route("/console/signin", name="signin")
class SigninView(ConsoleView):
    async def get(self, request: Any) -> Any:
        back = safe_return(request.query.get("next"))
        if current(request) is not None:
            return redirect(back)
        return signin_page(form_token(request), None, 200, back)

    async def post(self, request: Any) -> Any:
        data = await form(request)
        if data is None:
            return problem(413, "Too large", f"A console form is at most {MAX_FORM} bytes.")
        back = safe_return(data.get("next"))
        pre = request.cookies.get(PRE_COOKIE)
        if not pre or not csrf_ok(Session("", "", pre, 0), data.get("csrf")):
            return signin_page(uuid.uuid4().hex, "The sign-in form expired; try again.", 403, back)
        if current(request) is not None:  # signed in meanwhile, in another tab: go where this one was going
            return redirect(back)
        # As the API's (streams/views/cases.py `check_token`): only a completed check counts as a failure,
        # the checks in progress per client are bounded apart, scrypt runs off the event loop on at most
        # VERIFY_THREADS threads, and a blocked or busy client gets none computed for it (tokens verified
        # before still pass). Any real token is no failure, whatever the role.
        person, refused = await check_token(case_state.roster(), "Bearer " + data.get("token", "").strip(),
                                            client_address(request, settings.trusted_proxies),
                                            limiter=LIMITER, verifier=VERIFIER)
        if isinstance(person, Operator):
            return signin_page(pre, "That is an operator's token: the console is for analysts. Operators "
                               "review the machine's cases through the API (GET /cases/machine-closed).", 403, back)
        analyst = person
        if analyst is None:
            if refused is not None and refused.busy:
                return signin_page(pre, "Too many sign-ins are being checked; retry in 1 s.", 429, back)
            if refused is not None:
                return signin_page(pre, f"Too many failed attempts; retry in {int(refused.wait + 0.999)} s.",
                                   429, back)
            return signin_page(pre, "That token is not on the roster.", 401, back)  # counted
        session = SESSIONS.create(analyst.id, analyst.fingerprint() or "")
        response = redirect(back)
        # The form token stays (an hour at most): a sign-in page still open in another tab carries it.
        response.set_cookie(COOKIE, session.sid, **cookie_attributes(request.secure, int(SESSIONS.lifetime)))
        return response


@blueprint.route("/console/signout", name="signout")
class SignoutView(ConsoleView):
    async def post(self, request: Any) -> Any:
        session = current(request)
        data = await form(request) or {}
        if session is None or not csrf_ok(session, data.get("csrf")):
            return problem(403, "Not signed out", "This form did not carry your session's check value (CSRF token).",
                           back="/console/signin")
        SESSIONS.drop(session.sid)
        response = redirect("/console/signin")
        response.del_cookie(COOKIE, path="/console")
        return response


# ---- the queue -----------------------------------------------------------------------------------

def queue_context(session: Session) -> dict[str, Any]:
    now = datetime.now(UTC)
    scheduler = case_state.load()
    cases = [{**row(c, now), "targets": scheduler.reassign_targets(c["case_id"], session.analyst, now)}
             for c in scheduler.cases_for(session.analyst)]
    return {"session": session, "cases": cases, "updated": now.strftime("%H:%M:%S UTC")}


@blueprint.route("/console", name="console_root")
class ConsoleRootView(ConsoleView):
    async def get(self, request: Any) -> Any:
        """`/console` typed without its slash: the queue, not a bare 404."""
        return redirect("/console/")


@blueprint.route("/console/", name="queue")
class QueueView(ConsoleView):
    async def get(self, request: Any) -> Any:
        session, refusal = signed_in(request)
        if session is None:
            return refusal
        done = request.query.get("done", "")  # the action whose redirect this is: its notice, once
        body = render("queue.html", notice=session.notices.get(done, ""), **queue_context(session))
        session.notices.pop(done, None)
        return page(body)


@blueprint.route("/console/queue/rows", name="queue_rows")
class QueueRowsView(ConsoleView):
    """The queue's rows alone, for the page's short polling (console.js)."""

    async def get(self, request: Any) -> Any:
        session, refusal = signed_in(request)
        if session is None:
            return refusal
        return page(render("queue_rows.html", **queue_context(session)))


# ---- a case --------------------------------------------------------------------------------------

def headlines(case: dict[str, Any], record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The case's stories as its page lists them: labels as scored, the analyst's corrections, and
    whether each was a social post (`post`: its source marked it so, the social model read it, and a
    correction of it trains as a post; scheduler/feedback.py)."""
    scored = {h.get("id"): h for h in (record or {}).get("headlines", [])}
    corrected = {label.get("id"): label for label in case.get("labels") or []}
    posts = set(case.get("social_ids") or ())
    scope = str(case.get("scope", ""))
    topic = scope.removeprefix("topic:") if scope.startswith("topic:") else None  # a topic scope's stories have it
    return [{"id": sid, "headline": text, "sentiment": scored.get(sid, {}).get("sentiment"),
             "topic": scored.get(sid, {}).get("topic") or topic,
             "confidence": probability(scored.get(sid, {}).get("confidence")), "corrected": corrected.get(sid),
             "post": sid in posts}
            for sid, text in zip(case.get("sample_ids", []), case.get("headlines", []), strict=False)]


def probability(value: object) -> float | None:
    """A model confidence to show: a finite number from 0 to 1, else none (a record written before
    alerts/records.py checked it may hold text such as "0.97", which once made the case page a 500)."""
    return float(value) if finite_number(value) and 0.0 <= value <= 1.0 else None  # type: ignore[operator]


def peak(record: dict[str, Any]) -> dict[str, Any]:
    """The anomaly at its worst: the history entry with the highest score (observed, expected, score,
    window_end), else the record itself. The record's own fields are its latest event's, so once the
    surge ended they read "score 0.0" and a skimming analyst dismissed a real one."""
    rows = [h for h in record.get("history") or [] if isinstance(h, dict) and finite_number(h.get("score"))]
    return max(rows, key=lambda h: float(h["score"]), default=record)


CHART_BIN = 300  # seconds: the case chart's 5-minute bins


def case_chart(case: dict[str, Any], record: dict[str, Any] | None) -> tuple[Any, list[dict[str, str]]]:
    """The case page's chart of its scope, the 6 hours around the anomaly window, and its numbers."""
    end_at = parse((record or {}).get("window_end")) or parse(case.get("created_at")) or datetime.now(UTC)
    start_at = parse((record or {}).get("window_start"))
    end = end_at.timestamp()
    bins = SERIES.binned(case["scope"], end - 6 * 3600 + 1800, end + 1800, CHART_BIN)
    mark = (start_at.timestamp() if start_at else end - CHART_BIN, end)
    svg = charts.scope_chart(bins, mark, f"{case['scope']}: sentiment and volume, 5-minute bins, the 6 hours "
                                         "around the anomaly window (shaded)", note=SERIES.untracked(case["scope"]))
    return svg, charts.chart_table(bins, CHART_BIN)


def confidence(rows: list[dict[str, Any]]) -> dict[str, float] | None:
    """The model's confidence over a case's headlines (mean and lowest), for judging a machine decision."""
    values = [p for p in (probability(h.get("confidence")) for h in rows) if p is not None]
    return {"mean": sum(values) / len(values), "low": min(values), "n": len(values)} if values else None


def viewable(case_id: str, session: Session) -> tuple[dict[str, Any] | None, Any]:
    """(the case, None) when the signed-in analyst may see it, else (None, the 404 or 403 page). The
    case page and every action check it: an action's refusal names the case's status otherwise."""
    case = case_state.load().case(case_id)
    if case is None:
        return None, problem(404, "No such case", f"There is no case {case_id!r} (unknown, or closed and pruned).",
                             session)
    if not may_view(case, session.analyst):
        return None, problem(403, "Not your case", f"{case_id} is not assigned to you.", session)
    return case, None


def stranded(case_id: str) -> dict[str, Any] | None:
    """The case, with why nobody holds it (`unserved`), when it is waiting for an analyst: any analyst
    on the roster may look at one (read-only: no action, no correction), as the overview lists them,
    so someone can see what is stranded and why. Acting on it stays its future holder's."""
    return next((c for c in case_state.load().waiting(datetime.now(UTC)) if c.get("case_id") == case_id), None)


@blueprint.route("/console/cases/{case_id}", name="case")
class CaseView(ConsoleView):
    async def get(self, request: Any, case_id: str) -> Any:
        session, refusal = signed_in(request)
        if session is None:
            return refusal
        case, refused = viewable(case_id, session)
        if refused is not None and refused.status == 403:
            case = stranded(case_id)  # nobody's yet: anyone may read it
        if case is None:
            return refused
        record = anomaly_pages.get(case["anomaly_id"])
        labels_allowed = may_view(case, session.analyst)
        rows = headlines(case, record)
        chart, chart_rows = case_chart(case, record)
        return page(render(
            "case.html", session=session, case=row(case, datetime.now(UTC)), record=record, headlines=rows,
            peak=peak(record) if record else None,
            confidence=confidence(rows), policy=case_state.POLICY, chart=chart, chart_rows=chart_rows,
            topics=sorted(model_topics(settings)),
            targets=case_state.load().reassign_targets(case_id, session.analyst, datetime.now(UTC))
            if case.get("analyst") == session.analyst and case.get("status") in HELD else [],  # the form's
            labels_allowed=labels_allowed,
        ))


LEAVES_PAGE = frozenset({"resolve", "reassign", "reopen"})  # after these the case page may no longer be yours


def form_problem(verb: str, data: dict[str, str]) -> str | None:
    """Why a console form cannot become an action, before the scheduler's own rules are asked."""
    outcome = data.get("outcome", "").strip()
    if verb == "resolve" and not outcome:  # a resolve cannot be undone: one stray click closed a critical case
        return "Write an outcome to resolve the case (what you found or did, e.g. \"confirmed: guidance cut\")."
    if verb == "resolve" and len(outcome) > MAX_OUTCOME:
        return f"The outcome is {len(outcome)} characters; at most {MAX_OUTCOME}."
    return None


def action_for(verb: str, case_id: str, analyst: str, data: dict[str, str]) -> dict[str, Any]:
    action: dict[str, Any] = {"action": verb, "case_id": case_id, "analyst": analyst, "action_id": uuid.uuid4().hex}
    if verb == "resolve" and data.get("outcome", "").strip():
        action["outcome"] = data["outcome"].strip()
    if verb == "reassign" and data.get("to"):
        action["to"] = data["to"]
    if verb == "label":
        label = {"id": data.get("story_id", "")}
        for name in ("topic", "sentiment"):
            if data.get(name):
                label[name] = data[name]
        action["labels"] = [label]
    return action


DONE = {"resolve": "Resolved", "reassign": "Reassigned", "reopen": "Reopened"}
WHERE = frozenset({"assigned", "waiting"})  # the events that say who holds a case now


def aftermath(verb: str, case_id: str, analyst: str, events: list[dict[str, Any]]) -> str:
    """One line for the queue page after an action that took a case off it: where the case is now, from
    the events the scheduler emitted for the action (a reopened case may go to anyone qualified, or
    wait), so nobody has to go looking for it."""
    done = f"{DONE[verb]} {case_id}"
    last = next((e for e in reversed(events) if e.get("case_id") == case_id and e.get("event") in WHERE), None)
    if verb == "resolve" or last is None:
        return f"{done}."
    if last["event"] == "assigned":
        holder = "you" if last.get("analyst") == analyst else last.get("analyst")
        return f"{done}: now assigned to {holder}."
    try:
        why = (stranded(case_id) or {}).get("unserved", "")
    except Exception:  # the action is applied: its page must not become a 500 for the why
        log.exception("console: could not say why %s waits", case_id)
        why = ""
    return f"{done}: waiting for an analyst{f' ({why})' if why else ''}."


def sent_not_applied(action: dict[str, Any], session: Session) -> web.Response:
    """The 202 page: the action is on `cases.actions` but the single writer has not applied it yet. A
    redirect back would show the case unchanged and invite a second click, which then passes the dry run
    against the old state and is refused later; this page says it was sent and to reload, not resend."""
    return page(render("pending.html", session=session, verb=action["action"], case_id=action["case_id"],
                       action_id=action["action_id"], back=case_page(action["case_id"])), 202)


@blueprint.route("/console/cases/{case_id}/{verb}", name="case_action")
class CaseActionView(ConsoleView):
    async def get(self, request: Any, case_id: str, verb: str) -> Any:
        """An action's address opened as a page (a reload from the address bar, a restored tab): the
        case's page, where the action is a button, instead of a bare 405."""
        return redirect(case_page(case_id))

    async def post(self, request: Any, case_id: str, verb: str) -> Any:
        session, data, refusal = await checked_post(request)
        if session is None:
            return refusal
        back = case_page(case_id) if data.get("back") == "case" else "/console/"
        if verb not in ACTIONS:
            return problem(404, "No such action", f"Unknown action {verb!r}.", session, back)
        _, denied = viewable(case_id, session)  # another analyst's case is a 403 whatever the form holds
        if denied is not None:
            return denied
        refused = form_problem(verb, data)
        if refused is not None:
            return problem(400, "Not accepted", refused, session, back)
        action = action_for(verb, case_id, session.analyst, data)
        outcome = await submit(action)
        if outcome.status == 202:
            return sent_not_applied(action, session)
        if outcome.status != 200:
            titles = {400: "Not accepted", 403: "Not your case", 404: "No such case", 409: "Not possible now"}
            return problem(outcome.status, titles.get(outcome.status, "Refused"), outcome.message, session, back)
        if verb in LEAVES_PAGE:  # it has left your queue, or (reopened) went back to the queue for anyone
            session.tell(action["action_id"], aftermath(verb, case_id, session.analyst, outcome.events))
            back = f"/console/?done={action['action_id']}"
        return redirect(back)


# ---- overview ------------------------------------------------------------------------------------

ANOMALIES_SHOWN = 50  # the open anomalies on the overview, latest window first


def open_anomalies() -> list[dict[str, Any]]:
    """Every open anomaly's record, latest window first."""
    try:
        items = list(anomaly_pages.items())
    except Exception:  # noqa: BLE001 - a table mid-recovery; the overview shows none rather than fail
        items = []
    pages = [p for _, p in items if isinstance(p, dict) and p.get("status") == "open"]
    return sorted(pages, key=lambda p: str(p.get("window_end")), reverse=True)


def with_case(anomaly: dict[str, Any], case: dict[str, Any] | None, analyst: str) -> dict[str, Any]:
    """An open anomaly for the overview, with its case: linked when `analyst` may open the case page
    (theirs, waiting, or closed by the machine), else what became of it, so no row leads to a 403."""
    if case is None:
        found = {"readable": False, "note": "no case yet"}
    elif may_view(case, analyst) or case.get("status") == "waiting":
        found = {"readable": True, "id": case["case_id"], "note": status_text(case.get("status", ""))}
    elif case.get("status") in ("assigned", "acknowledged"):
        found = {"readable": False, "note": "held by another analyst"}
    else:
        found = {"readable": False, "note": "closed by another analyst"}
    return {**anomaly, "case": found}


BUSIEST = 12  # tickers on the overview when no watch-list is set
MACHINE_CLOSED_SHOWN = 20  # the newest machine-closed cases on the overview, for review
WAITING_SHOWN = 20  # the first cases of the waiting queue on the overview


def trend(scope: str, end: float, series: Series = SERIES) -> dict[str, Any]:
    """A scope's mean sentiment per hour over the 24 hours to `end`, as a small chart."""
    bins = series.binned(scope, end - 24 * 3600, end, 3600)
    return {"scope": scope, "stories": sum(c for _, c, _ in bins), "untracked": series.untracked(scope),
            "spark": charts.sparkline([s for _, _, s in bins], f"{scope}: mean sentiment per hour, 24 h")}


def ticker_trends(watchlist: frozenset[str], end: float, series: Series = SERIES) -> list[dict[str, Any]]:
    """The watched tickers (FINSENTRY_WATCHLIST), or without a watch-list the busiest ones seen."""
    if watchlist:
        return [trend(f"ticker:{t}", end, series) for t in sorted(watchlist)]
    seen = [trend(scope, end, series) for scope in series.of_kind("ticker")]
    return sorted((t for t in seen if t["stories"]), key=lambda t: (-t["stories"], t["scope"]))[:BUSIEST]


@blueprint.route("/console/overview", name="overview")
class OverviewView(ConsoleView):
    async def get(self, request: Any) -> Any:
        session, refusal = signed_in(request)
        if session is None:
            return refusal
        now = datetime.now(UTC)
        end = (now.timestamp() // 3600 + 1) * 3600
        sched = case_state.load()
        roster = case_state.roster()
        state = sched.to_dict()
        load_now = workload(state, roster, case_state.POLICY, now)
        team = [{"id": a.id, "name": a.name, "open": load_now.open_by_analyst.get(a.id, 0), "capacity": a.capacity}
                for a in sorted(roster.analysts.values(), key=lambda a: a.id)]
        topics = [trend(scope, end) for scope in SERIES.of_kind("topic")[:30]]
        anomalies, waiting = open_anomalies(), sched.waiting(now)
        closed_total = sum(1 for c in state["cases"].values() if c.get("status") == "auto_resolved")
        shown = [with_case(p, sched.case(case_id_for(str(p.get("anomaly_id")))), session.analyst)
                 for p in anomalies[:ANOMALIES_SHOWN]]
        # Each list says "showing N of M" when it is cut, so the counts beside it agree with it.
        return page(render("overview.html", session=session, trends=topics,
                           tickers=ticker_trends(settings.watchlist, end), watchlist=bool(settings.watchlist),
                           busiest=BUSIEST, anomalies=shown, anomalies_total=len(anomalies), team=team,
                           waiting=len(waiting), over_sla=load_now.over_sla,
                           queue=[row(c, now) for c in waiting[:WAITING_SHOWN]],
                           machine_closed=sched.machine_closed(MACHINE_CLOSED_SHOWN), machine_closed_total=closed_total))


# ---- static files --------------------------------------------------------------------------------

@blueprint.route("/console/static/{name}", name="static")
class StaticView(ConsoleView):
    async def get(self, request: Any, name: str) -> Any:
        if name not in STATIC:
            return web.Response(status=404, text="not found", headers=SECURITY_HEADERS)
        return web.Response(body=(HERE / "static" / name).read_bytes(), content_type=STATIC[name],
                            headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"})
