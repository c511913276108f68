"""The analyst HTTP API on the worker's web server: list my cases, acknowledge, resolve, reassign, reopen.

Each action takes the one path the console also takes (streams/case_actions.py): checked against
the current state first, so mistakes get their status at once (400/403/404/409), then signed, sent to
`cases.actions` with a fresh action id and applied by the scheduler's single writer, whose outcome
is the answer. The state lives on the worker that owns `scheduler.inbox`; any other worker answers
503 and names the reason.

Auth is a per-analyst bearer token checked against the roster in constant time; tokens are never
logged. Repeated auth failures from one client (an IPv4 address or an IPv6 /64) are refused for a
while (429); a valid token from that client still passes (one this worker has verified before: no
scrypt is computed for a blocked client), so a guesser behind the same proxy cannot lock analysts out.
Only completed checks count as failures; the checks in progress per client are bounded apart (429,
retry in 1 s), so analysts being checked at once behind one proxy never block it, and concurrent
guesses cannot all reach scrypt. scrypt runs on at most `VERIFY_THREADS` threads with a bounded queue
shared fairly between clients (`Verifier`).

A case that is not the caller's (neither held by them nor closed by the machine, which any analyst
may review and reopen) answers exactly as a case that does not exist (404), so case ids cannot be
probed; an analyst's repeated 404s are throttled (429) the same way, per analyst, while their
requests for their own cases still pass.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
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
from streams.views.http import BadRequest, address_group, client_address, json_object, read_capped

MAX_BODY = 64 * 1024
# Closed cases stay in the scheduler's state for a while: a free-text outcome must stay small.
MAX_OUTCOME = 2000  # characters
# The body fields each action takes; the action names themselves are the scheduler's (scheduler.engine.ACTIONS).
VERB_FIELDS = {"ack": frozenset(), "resolve": frozenset({"outcome", "labels"}), "reassign": frozenset({"to"}),
               REOPEN: frozenset()}
NOT_OWNER = ("this worker does not hold the scheduler state (partition 0 of scheduler.inbox is owned by "
             "another worker, or is being recovered); send the request to the worker that owns it")


@dataclass(frozen=True)
class Refusal:
    """Why a token is not checked with scrypt now: `busy` (too many of the address's checks are in
    progress, or the verifier is full: retry in a second), else too many failures (`wait` seconds)."""

    wait: float
    busy: bool = False


@dataclass
class FailureLimiter:
    """At most `limit` auth failures per client in a sliding `window` of seconds, and at most
    `in_flight` of its tokens being checked at once. A client is an IPv4 address or an IPv6 /64
    (`address_group`) unless `group_addresses` is False (keys that are no addresses: analyst ids).

    `admit` ... `finish`: only a COMPLETED failure counts. Attempts in progress are bounded apart
    (`in_flight`, answered "retry in 1 s"), so analysts being checked behind one proxy never count
    as its failures: counting each attempt as a failure until it passed once refused a valid token
    "retry in 60 s" when five analysts behind the proxy were being checked at once."""

    limit: int = 5
    window: float = 60.0
    max_clients: int = 10_000  # bounded memory under a spray of addresses
    in_flight: int = 16  # checks of one client's tokens at once (a proxy's whole desk at shift start)
    group_addresses: bool = True
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _running: dict[str, int] = field(default_factory=dict)

    def key(self, client: str) -> str:
        return address_group(client) if self.group_addresses else client

    def retry_after(self, client: str, now: float) -> float | None:
        """Seconds until `client` may try again, or None if it is not blocked."""
        recent = self._recent(self.key(client), now)
        if len(recent) < self.limit:
            return None
        return max(1.0, recent[0] + self.window - now)

    def admit(self, client: str, now: float) -> Refusal | None:
        """None when `client`'s token may be checked now (in progress until `finish`), else why not."""
        wait = self.retry_after(client, now)
        if wait is not None:
            return Refusal(wait)
        key = self.key(client)
        if self._running.get(key, 0) >= self.in_flight:
            return Refusal(1.0, busy=True)
        self._running[key] = self._running.get(key, 0) + 1
        return None

    def finish(self, client: str, now: float, failed: bool) -> None:
        """An admitted check is over; `failed`: no token of the kind asked for (counted at `now`)."""
        key = self.key(client)
        left = self._running.get(key, 0) - 1
        if left > 0:
            self._running[key] = left
        else:
            self._running.pop(key, None)
        if failed:
            self.fail(client, now)

    def attempt(self, client: str, now: float) -> float | None:
        """Earlier interface (streams/views/silences.py until it takes `admit`/`finish`): the attempt is
        counted as a failure at once and `refund`ed on success, so checks in progress count as failures
        (five at once block the address). None when `client` may try, else the seconds to wait."""
        wait = self.retry_after(client, now)
        if wait is None:
            self.fail(client, now)
        return wait

    def refund(self, client: str, at: float) -> None:
        """Take back the attempt `attempt` counted at `at`: it succeeded."""
        recent = self._failures.get(self.key(client))
        if recent is not None and at in recent:
            recent.remove(at)

    def fail(self, client: str, now: float) -> None:
        key = self.key(client)
        if key not in self._failures and len(self._failures) >= self.max_clients:
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(key, deque()).append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        """`key`'s failures within the window (none kept for a client without failures: reads add nothing)."""
        recent = self._failures.get(key)
        if recent is None:
            return deque()
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent


LIMITER = FailureLimiter()
# Case ids can be computed from anomalies; an analyst who guesses many is slowed down.
NOT_FOUND_LIMITER = FailureLimiter(limit=20, group_addresses=False)
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
VERIFY_PER_CLIENT = 16  # of those, held by one client (an IPv4 address or IPv6 /64) at most


class VerifierBusy(Exception):
    """Too many tokens are waiting for scrypt: answer 429 and let the client retry."""


Waiter = tuple[Any, Roster, "str | None"]  # (the turn: a future of the thread's check, the roster, the header)


class Verifier:
    """Checks presented tokens off the event loop. A token this worker verified before (or one an env
    var or file holds) needs no scrypt and is checked at once; one that does takes one of `threads`
    threads of its own, so a burst of guesses cannot take every core nor the default thread pool the
    agents use. At most `queue` wait for a thread; beyond that `VerifierBusy`.

    Shared fairly between clients (`client`: an address, grouped as `address_group`): one holds at
    most `per_client` slots (running or waiting); the waiting are served in turn, one client after
    another, not first come; and when every slot is taken, a client holding fewer than the client
    holding the most takes that one's newest waiting slot (which is told `VerifierBusy`). So a flood
    from one address (or /64) can neither fill the queue nor make another's sign-in wait behind it.
    Checks from many clients are served at the threads' pace: a flood from more clients than there
    are slots can still keep a sign-in waiting or busy. State changes only on the event loop."""

    def __init__(self, threads: int = VERIFY_THREADS, queue: int = VERIFY_QUEUE,
                 per_client: int = VERIFY_PER_CLIENT) -> None:
        self.threads, self.queue, self.per_client = threads, queue, per_client
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="finsentry-verify")
        self.running = 0  # checks on a thread
        self.held: dict[str | None, int] = {}  # slots (running or waiting) per client
        self.waiting: OrderedDict[str | None, deque[Waiter]] = OrderedDict()  # whose turn is next: first

    @property
    def pending(self) -> int:
        """Slow checks running or waiting."""
        return sum(self.held.values())

    async def person(self, current: Roster, header: str | None, slow: bool = True,
                     client: str | None = None) -> Analyst | Operator | None:
        person = await asyncio.to_thread(bearer_person, current, header, False)
        if person is not None or not slow:
            return person
        key = None if client is None else address_group(client)  # callers naming no client share one
        self._take(key)
        turn: asyncio.Future[asyncio.Future[Any]] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(key, deque()).append((turn, current, header))
        self._next()
        try:
            job = await turn  # a thread's check; VerifierBusy when another client took this slot
        except asyncio.CancelledError:
            if self._withdraw(key, turn):  # still waiting: its slot is free again
                self._release(key)
            raise
        return await job

    def _take(self, key: str | None) -> None:
        """A slot for `key`, taking the newest waiting one of the client holding the most if all are taken."""
        mine = self.held.get(key, 0)
        if mine >= self.per_client:
            raise VerifierBusy
        if self.pending >= self.threads + self.queue:
            self._drop_gone()
            mine = self.held.get(key, 0)
        if self.pending >= self.threads + self.queue:
            victim = max(self.waiting, key=lambda k: self.held[k], default=None)
            if victim is None or self.held[victim] <= mine + 1:
                raise VerifierBusy
            turn, _, _ = self.waiting[victim].pop()
            if not self.waiting[victim]:
                del self.waiting[victim]
            turn.set_exception(VerifierBusy())
            self._release(victim)
        self.held[key] = mine + 1

    def _drop_gone(self) -> None:
        """Free the slots of waiters whose turn is already done: cancelled (a client gone, a timeout)
        before they withdrew. Their `except` finds them withdrawn and releases nothing, so no slot is
        counted twice or for ever, and no finished turn is chosen to be told `VerifierBusy` (which
        would raise InvalidStateError at the newcomer)."""
        for key in list(self.waiting):
            queue = self.waiting[key]
            gone = [entry for entry in queue if entry[0].done()]
            for entry in gone:
                queue.remove(entry)
                self._release(key)
            if not queue:
                del self.waiting[key]

    def _release(self, key: str | None) -> None:
        left = self.held[key] - 1
        if left:
            self.held[key] = left
        else:
            del self.held[key]

    def _withdraw(self, key: str | None, turn: asyncio.Future[Any]) -> bool:
        queue = self.waiting.get(key)
        for entry in queue or ():
            if entry[0] is turn:
                queue.remove(entry)  # type: ignore[union-attr]
                if not queue:
                    del self.waiting[key]
                return True
        return False

    def _next(self) -> None:
        """Give free threads to the waiting, one client's oldest after another's."""
        while self.running < self.threads and self.waiting:
            key, queue = next(iter(self.waiting.items()))
            turn, current, header = queue.popleft()
            if queue:
                self.waiting.move_to_end(key)
            else:
                del self.waiting[key]
            if turn.done():  # its waiter was cancelled and has not withdrawn yet: the slot is free
                self._release(key)
                continue
            self.running += 1
            loop = turn.get_loop()
            done = self.pool.submit(bearer_person, current, header, True)
            # The slot is free when the thread is, even if whoever waited for it has gone.
            done.add_done_callback(lambda _, key=key, loop=loop: self._threadsafe(loop, key))
            turn.set_result(asyncio.wrap_future(done, loop=loop))

    def _threadsafe(self, loop: asyncio.AbstractEventLoop, key: str | None) -> None:
        try:
            loop.call_soon_threadsafe(self._finished, key)
        except RuntimeError:  # the loop has closed (a test's, or shutdown): nothing waits on it any more
            self.running -= 1
            self._release(key)

    def _finished(self, key: str | None) -> None:
        self.running -= 1
        self._release(key)
        self._next()


VERIFIER = Verifier()


async def check_token(current: Roster, header: str | None, client: str,
                      accepted: Callable[[Analyst | Operator | None], bool] = lambda person: person is not None,
                      limiter: FailureLimiter | None = None, verifier: Verifier | None = None,
                      ) -> tuple[Analyst | Operator | None, Refusal | None]:
    """(whoever `header`'s token is, None) once it is checked; (whoever, the refusal to send) when it
    was not checked with scrypt: the person then is one only if this worker verified the token before.
    A person `accepted` does not take them for (a role the route does not take) is a failure, as is
    none. Failures count when their check is over (`limiter`, default LIMITER); a check the verifier
    had no room for counts for nothing (no scrypt was computed for it)."""
    limiter = LIMITER if limiter is None else limiter
    verifier = VERIFIER if verifier is None else verifier
    refused = limiter.admit(client, time.monotonic())
    if refused is not None:
        # A valid token verified before still passes: behind a proxy the desk shares the address.
        return await verifier.person(current, header, False), refused
    failed = False
    try:
        person = await verifier.person(current, header, True, client)
        failed = not accepted(person)
        return person, None
    except VerifierBusy:
        return None, Refusal(1.0, busy=True)
    finally:
        limiter.finish(client, time.monotonic(), failed)


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
    def accepted(person: Analyst | Operator | None) -> bool:
        return isinstance(person, Analyst) or (operators and isinstance(person, Operator))

    # A valid token always passes once checked: behind a proxy every analyst shares one address, and a
    # guesser's failures must slow the guesser, not lock the desk out. Only completed failures block an
    # address; a blocked one, or one with too many checks in progress, gets no scrypt computed for it
    # (tokens this worker verified before still pass). Off the event loop, on VERIFIER's threads: a
    # token not seen before costs scrypt (tens of ms per hashed person), which must not stall the agents.
    person, refused = await check_token(roster(), request.headers.get("Authorization"),
                                        client_address(request, settings.trusted_proxies), accepted)
    analyst = person if accepted(person) else None
    if analyst is None and refused is not None and refused.busy:
        return None, view.json({"error": "too many authentication attempts in progress; retry shortly"},
                               status=429, headers={"Retry-After": "1"})
    if analyst is None and refused is not None:
        return None, view.json({"error": "too many failed authentication attempts; retry later"}, status=429,
                               headers={"Retry-After": str(int(refused.wait + 0.999))})
    if analyst is None:  # counted as a failure
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
