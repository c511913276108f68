"""The analyst HTTP API on the worker's web server: list my cases, acknowledge, resolve, reassign, reopen.

Each action takes the one path the console also takes (streams/case_actions.py): checked against
the current state first, so mistakes get their status at once (400/403/404/409), then signed, sent to
`cases.actions` with a fresh action id and applied by the scheduler's single writer, whose outcome
is the answer. The state lives on the worker that owns `scheduler.inbox`; any other worker answers
503 and names the reason.

Auth is a per-analyst bearer token checked against the roster in constant time; tokens are never
logged. Repeated auth failures from one client address are refused for a while (429); a valid
token from that address still passes (one this worker has verified before: no scrypt is computed
for a blocked address), so a guesser behind the same proxy cannot lock analysts out. An attempt is
counted before its token is verified and taken back when it succeeds, so concurrent guesses see each
other; scrypt runs on at most `VERIFY_THREADS` threads, with a bounded queue (`Verifier`).

A case that is not the caller's (neither held by them nor closed by the machine, which any analyst
may review and reopen) answers exactly as a case that does not exist (404), so case ids cannot be
probed; an analyst's repeated 404s are throttled (429) the same way, per analyst, while their
requests for their own cases still pass.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import faust

from scheduler import Analyst, Operator, Roster
from scheduler.cases import may_view
from scheduler.engine import REOPEN
from streams.app import settings
from streams.case_actions import submit
from streams.case_state import is_owner, load, roster
from streams.views.http import BadRequest, client_address, json_object, read_capped

MAX_BODY = 64 * 1024
# Closed cases stay in the scheduler's state for a while: a free-text outcome must stay small.
MAX_OUTCOME = 2000  # characters
# The body fields each action takes; the action names themselves are the scheduler's (scheduler.engine.ACTIONS).
VERB_FIELDS = {"ack": frozenset(), "resolve": frozenset({"outcome", "labels"}), "reassign": frozenset({"to"}),
               REOPEN: frozenset()}
NOT_OWNER = ("this worker does not hold the scheduler state (partition 0 of scheduler.inbox is owned by "
             "another worker, or is being recovered); send the request to the worker that owns it")


@dataclass
class FailureLimiter:
    """At most `limit` auth failures per client address in a sliding `window` of seconds."""

    limit: int = 5
    window: float = 60.0
    max_clients: int = 10_000  # bounded memory under a spray of addresses
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, client: str, now: float) -> float | None:
        """Seconds until `client` may try again, or None if it is not blocked."""
        recent = self._recent(client, now)
        if len(recent) < self.limit:
            return None
        return max(1.0, recent[0] + self.window - now)

    def attempt(self, client: str, now: float) -> float | None:
        """Count an attempt before its token is verified: None when `client` may try (the attempt is
        counted as a failure now, `refund` it on success), else the seconds to wait (nothing counted).
        Counted first, so concurrent guesses from one address see each other: checked after verifying,
        sixty at once all passed the check before any was counted."""
        wait = self.retry_after(client, now)
        if wait is None:
            self.fail(client, now)
        return wait

    def refund(self, client: str, at: float) -> None:
        """Take back the attempt `attempt` counted at `at`: it succeeded."""
        recent = self._failures.get(client)
        if recent is not None and at in recent:
            recent.remove(at)

    def fail(self, client: str, now: float) -> None:
        if client not in self._failures and len(self._failures) >= self.max_clients:
            self._failures.pop(next(iter(self._failures)))
        self._recent(client, now).append(now)

    def _recent(self, client: str, now: float) -> deque[float]:
        recent = self._failures.setdefault(client, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent


LIMITER = FailureLimiter()
# Case ids can be computed from anomalies; an analyst who guesses many is slowed down.
NOT_FOUND_LIMITER = FailureLimiter(limit=20)
blueprint = faust.web.Blueprint("cases")


def bearer_person(current: Roster, header: str | None, slow: bool = True) -> Analyst | Operator | None:
    """Whoever's bearer token `header` presents; everyone is checked, so timing says nothing.
    `slow` False: no scrypt, only tokens this worker has verified before (Roster.authenticate)."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return current.authenticate(token, slow)


VERIFY_THREADS = 2  # scrypt at once (each a core for ~50-100 ms per hashed person on the roster)
VERIFY_QUEUE = 64  # scrypt checks that may wait for a thread; beyond that a sign-in is told to retry


class VerifierBusy(Exception):
    """Too many tokens are waiting for scrypt: answer 429 and let the client retry."""


class Verifier:
    """Checks presented tokens off the event loop. A token this worker verified before (or one an env
    var or file holds) needs no scrypt and is checked at once; one that does takes one of `threads`
    threads of its own, so a burst of guesses cannot take every core nor the default thread pool the
    agents use. At most `queue` wait for a thread; beyond that `VerifierBusy`."""

    def __init__(self, threads: int = VERIFY_THREADS, queue: int = VERIFY_QUEUE) -> None:
        self.threads, self.queue = threads, queue
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="finsentry-verify")
        self.pending = 0  # slow checks running or waiting; changed only on the event loop

    async def person(self, current: Roster, header: str | None, slow: bool = True) -> Analyst | Operator | None:
        person = await asyncio.to_thread(bearer_person, current, header, False)
        if person is not None or not slow:
            return person
        if self.pending >= self.threads + self.queue:
            raise VerifierBusy
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, bearer_person, current, header, True)
        finally:
            self.pending -= 1


VERIFIER = Verifier()


def not_found(view: faust.web.View, analyst: str, case_id: str) -> Any:
    """The one answer for a case that is missing or not the caller's; 429 once they guess too often."""
    now = time.monotonic()
    wait = NOT_FOUND_LIMITER.retry_after(analyst, now)
    if wait is not None:
        return view.json({"error": "too many requests for cases that do not exist; retry later"}, status=429,
                         headers={"Retry-After": str(int(wait + 0.999))})
    NOT_FOUND_LIMITER.fail(analyst, now)
    return view.json({"error": f"no case {case_id!r}"}, status=404)


def action_from_body(verb: str, case_id: str, analyst: str, body: bytes) -> dict[str, Any]:
    """The `cases.actions` record for a request; raises BadRequest for a body the verb does not take."""
    data = json_object(body) if body.strip() else {}
    unknown = sorted(set(data) - VERB_FIELDS[verb])
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)} for {verb}; allowed: "
                         f"{', '.join(sorted(VERB_FIELDS[verb])) or 'none'}")
    outcome = data.get("outcome")
    if isinstance(outcome, str) and len(outcome) > MAX_OUTCOME:
        raise BadRequest(f"outcome: {len(outcome)} characters, at most {MAX_OUTCOME}")
    return {**data, "action": verb, "case_id": case_id, "analyst": analyst, "action_id": uuid.uuid4().hex}


async def gate(view: faust.web.View, request: Any, operators: bool = False) -> tuple[Analyst | Operator | None, Any]:
    """(person, None) when the request may proceed here, else (None, the refusal to send). `operators`:
    an operator's token is accepted too (reviewing the machine's decisions); otherwise only an analyst's."""
    client, now = client_address(request, settings.trusted_proxies), time.monotonic()
    # Counted before the token is checked (taken back if it passes), so concurrent guesses are throttled.
    blocked = LIMITER.attempt(client, now)
    # A valid token always passes: behind a proxy every analyst shares one address, and a guesser's
    # failures must slow the guesser, not lock the desk out. Only failing requests are throttled. A
    # blocked address gets no scrypt computed for it: tokens this worker verified before still pass.
    # Off the event loop: a token not seen before costs scrypt (tens of ms per hashed person), which
    # must not stall the agents sharing this event loop (VERIFIER bounds how many run at once).
    try:
        person = await VERIFIER.person(roster(), request.headers.get("Authorization"), blocked is None)
    except VerifierBusy:
        LIMITER.refund(client, now)  # not checked: not counted against the address
        return None, view.json({"error": "too many authentication attempts in progress; retry shortly"},
                               status=429, headers={"Retry-After": "1"})
    analyst = person if isinstance(person, Analyst) or (operators and isinstance(person, Operator)) else None
    if analyst is not None:
        if blocked is None:
            LIMITER.refund(client, now)
    elif blocked is not None:
        return None, view.json({"error": "too many failed authentication attempts; retry later"}, status=429,
                               headers={"Retry-After": str(int(blocked + 0.999))})
    else:  # counted already
        return None, view.json({"error": "missing or invalid bearer token"}, status=401,
                               headers={"WWW-Authenticate": 'Bearer realm="finsentry"'})
    if not is_owner():
        return None, view.json({"error": NOT_OWNER}, status=503)
    return analyst, None


@blueprint.route("/cases", name="cases")
class CasesView(faust.web.View):
    async def get(self, request: Any) -> Any:
        analyst, refusal = await gate(self, request)
        if analyst is None:
            return refusal
        return self.json({"analyst": analyst.id, "cases": load().cases_for(analyst.id)})


@blueprint.route("/cases/machine-closed", name="machine_closed")
class MachineClosedView(faust.web.View):
    """The cases the machine closed, newest first, for review by any analyst or operator."""

    async def get(self, request: Any) -> Any:
        person, refusal = await gate(self, request, operators=True)
        if person is None:
            return refusal
        return self.json({"cases": load().machine_closed()})


@blueprint.route("/cases/{case_id}/{verb}", name="case_action")
class CaseActionView(faust.web.View):
    async def post(self, request: Any, case_id: str, verb: str) -> Any:
        # First: an anonymous caller learns nothing, not even the verbs.
        analyst, refusal = await gate(self, request, operators=True)
        if analyst is None:
            return refusal
        if verb not in VERB_FIELDS:
            return self.json({"error": f"unknown action {verb!r}; use one of {sorted(VERB_FIELDS)}"}, status=404)
        if isinstance(analyst, Operator) and verb != REOPEN:
            return self.json({"error": f"operators take no cases; they may only {REOPEN} a machine-closed one"},
                             status=403)
        body = await read_capped(request, MAX_BODY)
        if body is None:
            return self.json({"error": f"body over {MAX_BODY} bytes"}, status=413)
        try:
            action = action_from_body(verb, case_id, analyst.id, body)
        except BadRequest as exc:
            return self.json({"error": str(exc)}, status=400)
        case = load().case(case_id)
        if case is None or not may_view(case, analyst.id):
            return not_found(self, analyst.id, case_id)
        outcome = await submit(action)
        if outcome.status == 202:
            return self.json({"status": "accepted", "action_id": action["action_id"], "detail": outcome.message},
                             status=202)
        if outcome.status != 200:
            return self.json({"error": outcome.message}, status=outcome.status)
        return self.json({"case": load().case(case_id), "events": outcome.events})
