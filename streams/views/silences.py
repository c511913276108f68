"""Alertmanager's API v2 for silences on each worker, so `amtool --alertmanager.url=<worker>` works.

Requests are routed to the notify coordinator, which holds the silences (streams/notify_state.py),
so an update of an unknown silence is 404 and the limit is checked against what it holds; a new or
expired silence then travels on `alerts.notify` like anomalies. Every request needs an operator's
bearer token: one of the roster's `operators` (hashed there), or the token in
FINSENTRY_OPERATOR_TOKEN_FILE. An analyst's token is not enough. Failed attempts are counted per
address by this API's own limiter, so analysts' failures at the cases API do not lock operators out.

A POST that reaches a worker other than the coordinator is forwarded to it once, marked with
X-Finsentry-Routed: an HMAC (with the case-action secret every worker shares,
FINSENTRY_CASE_ACTION_SECRET_FILE) over the method, path, body digest and a timestamp. A worker
answers a POST from its own state only when that mark verifies; a client's header is ignored.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import faust
from yarl import URL

from alerts.silences import (
    RECORD_FULL,
    Silence,
    SilenceError,
    SilenceNotFound,
    Silences,
    SilencesFull,
    check_room,
    filter_matchers,
    silence_from_v2,
    stored_bytes,
)
from scheduler import Operator
from streams.action_signing import action_secret
from streams.app import app, notify_topic, settings
from streams.case_state import roster
from streams.notify_state import CONFIG_SILENCE_PREFIX, STATE_KEY, coordinator_state, is_coordinator, load
from streams.views.cases import FailureLimiter, check_token
from streams.views.http import BadRequest, client_address, json_object, read_capped

log = logging.getLogger(__name__)
MAX_SILENCE_BODY = 16 * 1024
# A POST forwarded to the coordinator once is not forwarded again: the header's value is
# "<unix seconds>:<hex HMAC>" (`routed_mark`), checked by `routed_by_peer`.
ROUTED_HEADER = "X-Finsentry-Routed"
ROUTED_TOLERANCE = 120.0  # seconds a mark stays good (a forward takes well under that)
# This API's own failed-attempt limiter (the cases API's class): behind a shared proxy, analysts'
# failures there must not lock an operator out here, nor an operator's guesses count there.
LIMITER = FailureLimiter()

blueprint = faust.web.Blueprint("silences")


def silence_from_body(body: bytes, now: float) -> Silence:
    """Validate an Alertmanager API v2 `postableSilence` before it is queued, so the client hears
    about mistakes; a silence from the receivers file cannot be replaced through the API."""
    return parsed_body(body, now)[0]


def parsed_body(body: bytes, now: float) -> tuple[Silence, bool]:
    """`silence_from_body`, and whether the body named an `id` (an update of that silence)."""
    data = json_object(body, "{matchers: [{name, value, isRegex, isEqual?}], startsAt, endsAt, createdBy, comment}")
    try:
        silence = silence_from_v2(data, now)
    except SilenceError as exc:
        raise BadRequest(str(exc)) from None
    if silence.id.startswith(CONFIG_SILENCE_PREFIX):
        raise BadRequest(f"id: silences {CONFIG_SILENCE_PREFIX}* come from the receivers file; change them there")
    return silence, bool(data.get("id"))


def post_answer(body: bytes, now: float, held: Silences, authoritative: bool,
                record_bytes: int | None = None) -> tuple[int, str, Silence | None]:
    """What `POST /api/v2/silences` answers (status, message) and the silence to queue (None unless
    200), given the silences `held`. As in Alertmanager: an `id` that is not held is
    404; an expired silence's id makes a new silence with a new id; 409 once MAX_SILENCES are in force
    (expired ones never count), or when the coordinator's state record (`record_bytes`, as this worker
    holds it; None: not checked) would pass RECORD_BOUND with it. `authoritative`: `held` is the
    coordinator's own; else an id this worker does not know is passed on as given (the coordinator
    replaces or adds it)."""
    try:
        silence, update = parsed_body(body, now)
    except BadRequest as exc:
        return 400, str(exc), None
    try:
        silence = held.admit(silence, now, update=update and (authoritative or silence.id in held.items))
        if record_bytes is not None:
            check_room(held, silence, record_bytes)
    except SilenceNotFound as exc:
        return 404, str(exc), None
    except SilencesFull as exc:
        return 409, str(exc), None
    return 200, "", silence


def _routed_hmac(secret: bytes, stamp: int, method: str, path: str, body: bytes) -> str:
    # A prefix no case action's canonical JSON (signed with the same secret) can start with.
    signed = (f"finsentry-routed\n{stamp}\n{method.upper()}\n{path}\n".encode("utf-8", "surrogateescape")
              + hashlib.sha256(body).hexdigest().encode())
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def routed_mark(secret: bytes, method: str, path: str, body: bytes, now: float) -> str:
    """The X-Finsentry-Routed value a worker forwarding this request sends: "<unix seconds>:<hex>"."""
    stamp = int(now)
    return f"{stamp}:{_routed_hmac(secret, stamp, method, path, body)}"


def routed_by_peer(secret: bytes, mark: str | None, method: str, path: str, body: bytes, now: float) -> bool:
    """Whether `mark` (the header's value) is a worker's, for this very request, within ROUTED_TOLERANCE."""
    stamp, _, given = (mark or "").partition(":")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12 or abs(now - int(stamp)) > ROUTED_TOLERANCE:
        return False
    expected = _routed_hmac(secret, int(stamp), method, path, body)
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def routing_secret() -> bytes | None:
    """The secret every worker shares (the case actions', FINSENTRY_CASE_ACTION_SECRET_FILE), or None
    when none is set (each worker then signs with one of its own, which no other can check)."""
    return action_secret() if settings.case_action_secret_file is not None else None


async def at_coordinator(view: faust.web.View, request: Any, body: bytes) -> Any | None:
    """The coordinator's answer to this POST, forwarded with its body (faust's table_route forwards
    none); None when this worker answers: it is the coordinator, another worker forwarded the request
    here already (its X-Finsentry-Routed mark verifies), or the coordinator is not known yet. A mark
    that does not verify is a client's and is ignored; but without a secret the workers share, a
    worker's mark cannot be told from it either, and forwarding it again could loop: 503."""
    if is_coordinator():
        return None
    mark, secret = request.headers.get(ROUTED_HEADER), routing_secret()
    if mark is not None:
        if secret is not None and routed_by_peer(secret, mark, request.method, request.url.path, body, time.time()):
            return None  # forwarded once already: never twice
        if secret is None:
            log.warning("notify: a silences POST with an X-Finsentry-Routed mark this worker cannot check "
                        "(FINSENTRY_CASE_ACTION_SECRET_FILE unset) reached a worker that is not the coordinator")
            return view.json({"code": 503, "message": "this worker is not the notify coordinator and cannot check "
                              "the request's X-Finsentry-Routed mark (no FINSENTRY_CASE_ACTION_SECRET_FILE); "
                              "try again, or send it to the coordinator"}, status=503)
    try:
        dest = app.router.key_store(coordinator_state.name, STATE_KEY)
    except KeyError:
        return None
    canonical = URL(str(app.conf.canonical_url))
    if (dest.host, dest.port or 80) == (canonical.host, canonical.port or 80):
        return None
    headers = {name: request.headers[name] for name in ("Authorization", "Content-Type") if name in request.headers}
    ours = routed_mark(secret or action_secret(), request.method, request.url.path, body, time.time())
    try:
        async with app.http_client.request(method="POST", url=request.url.with_host(dest.host).with_port(dest.port or 80),
                                           headers={**headers, ROUTED_HEADER: ours}, data=body) as response:
            return view.text(await response.text(), content_type=response.content_type, status=response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("notify: the silences coordinator at %s did not answer a POST: %r", dest, exc)
        return view.json({"code": 503, "message": "the notify coordinator did not answer; try again"}, status=503)


def operator_token() -> bytes | None:
    if settings.operator_token_file is None:
        return None
    try:
        token = settings.operator_token_file.read_text().strip()
    except OSError:
        log.error("notify: cannot read FINSENTRY_OPERATOR_TOKEN_FILE %s", settings.operator_token_file)
        return None
    return token.encode() or None


async def operator_refusal(view: faust.web.View, request: Any) -> Any | None:
    """None when the request carries an operator's bearer token; else the 401 (none) or 403 (wrong)."""
    header = request.headers.get("Authorization")
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return view.json({"code": 401, "message": "operator bearer token required (Authorization: Bearer ...)"},
                         status=401, headers={"WWW-Authenticate": 'Bearer realm="finsentry"'})
    current = roster()
    expected = operator_token()
    by_file = expected is not None and hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), expected)
    # As the cases API (streams/views/cases.py `check_token`): a failure counts once its check is over,
    # checks in progress are bounded per address, scrypt runs on VERIFIER's own threads shared fairly
    # between addresses, and a blocked address gets none (a token verified before still passes). This
    # API's own LIMITER: analysts' failures at the cases API do not lock operators out.
    client = client_address(request, settings.trusted_proxies)
    person, refused = await check_token(current, header, client, lambda p: isinstance(p, Operator) or by_file,
                                        limiter=LIMITER)
    if isinstance(person, Operator) or by_file:
        return None
    if refused is not None:
        message = ("too many authentication attempts in progress; retry shortly" if refused.busy
                   else "too many failed authentication attempts; retry later")
        return view.json({"code": 429, "message": message}, status=429,
                         headers={"Retry-After": str(max(1, int(refused.wait + 0.999)))})
    configured = expected is not None or bool(current.operators)
    return view.json({"code": 403, "message": "not an operator's token" if configured else
                      "no operator configured on this worker (roster operators, FINSENTRY_OPERATOR_TOKEN_FILE)"},
                     status=403)


def operator_only(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A view method that answers only a request with an operator's bearer token. The token is
    checked on the worker the request reached, before a table route sends it on to the coordinator."""

    @functools.wraps(handler)
    async def checked(view: faust.web.View, request: Any, *args: Any, **kwargs: Any) -> Any:
        refusal = await operator_refusal(view, request)
        return refusal if refusal is not None else await handler(view, request, *args, **kwargs)

    return checked


def held_silence(handler: Callable[[Any, Any, Silence], Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A `/api/v2/silence/{silence_id}` method: for the operator only, answered by the coordinator,
    and handed the silence the path names (404 when none is held)."""

    async def found(view: faust.web.View, request: Any, silence_id: str) -> Any:
        silence = load().dispatcher.silences.items.get(silence_id)
        if silence is None:
            return view.json({"code": 404, "message": f"no silence {silence_id!r}"}, status=404)
        return await handler(view, request, silence)

    return operator_only(app.table_route(table=coordinator_state, exact_key=STATE_KEY)(found))


@blueprint.route("/api/v2/silences", name="silences")
class SilencesView(faust.web.View):
    """Alertmanager's API v2 for silences, so `amtool --alertmanager.url=<worker>` works.

    A new silence travels on `alerts.notify` like anomalies, so any worker takes it; reads go to
    the coordinator, which holds them."""

    @operator_only
    @app.table_route(table=coordinator_state, exact_key=STATE_KEY)
    async def get(self, request: Any) -> Any:
        try:
            wanted = filter_matchers(request.query.getall("filter", []))
        except (SilenceError, ValueError) as exc:
            return self.json({"code": 400, "message": str(exc)}, status=400)
        now = time.time()
        silences = [s for s in load().dispatcher.silences.list(now)
                    if all(m in s.matchers for m in wanted)]
        return self.json([s.to_v2(now) for s in silences])

    @operator_only
    async def post(self, request: Any) -> Any:
        body = await read_capped(request, MAX_SILENCE_BODY)
        if body is None:
            return self.json({"code": 413, "message": f"body over {MAX_SILENCE_BODY} bytes"}, status=413)
        forwarded = await at_coordinator(self, request, body)
        if forwarded is not None:
            return forwarded
        state, authoritative = load(), is_coordinator()
        # The size checked as the coordinator's agent checks it when it adds the silence (streams/agents/
        # notify.py), on the state this worker holds: the coordinator's own, or its copy of it here.
        size = stored_bytes(state.to_dict())
        status, message, silence = post_answer(body, time.time(), state.dispatcher.silences, authoritative, size)
        if silence is None:
            if status == 409 and message.startswith(RECORD_FULL):
                log.warning("notify: silence refused (409): %s", message)
            return self.json({"code": status, "message": message}, status=status)
        await (await notify_topic.send(key=b"silence", value={"silence": silence.to_dict()}))  # the broker has it
        return self.json({"silenceID": silence.id})


@blueprint.route("/api/v2/silence/{silence_id}", name="silence")
class SilenceView(faust.web.View):
    @held_silence
    async def get(self, request: Any, silence: Silence) -> Any:
        return self.json(silence.to_v2(time.time()))

    @held_silence
    async def delete(self, request: Any, silence: Silence) -> Any:
        """Expires a silence in force; one already expired is removed from the list (Alertmanager answers
        "already expired"), which is all a DELETE can still mean for it."""
        if silence.id.startswith(CONFIG_SILENCE_PREFIX):
            return self.json({"code": 400, "message": "this silence comes from the receivers file; remove it there"},
                             status=400)
        await (await notify_topic.send(key=b"silence", value={"expire": silence.id, "at": time.time()}))
        return self.json({})
