"""Console sessions: a bearer token is exchanged once for a random session id kept in a cookie.

Sessions live in the worker process's memory: a restart (or a move of the scheduler state to another
worker) signs everyone out, and they sign in again. Each session carries its own CSRF token, which
every console form posts back in a hidden field; a POST without the session's token is refused.
Pure code, no Faust: tests drive it with their own clock.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "finsentry_console"
PRE_COOKIE = "finsentry_console_signin"  # CSRF for the sign-in form itself (double submit)
MAX_SESSIONS = 10_000  # bounded memory, for the whole desk
# Per analyst: a few browsers and devices each. An analyst's sign-in beyond this ends their own oldest
# session, never anyone else's: one valid token signing in again and again cannot sign the desk out.
MAX_PER_ANALYST = 20
MAX_NOTICES = 16  # per session: one per action whose queue page has not been shown yet


@dataclass
class Session:
    sid: str
    analyst: str
    csrf: str
    expires: float  # epoch seconds
    credential: str = ""  # the analyst's token fingerprint at sign-in (Credential.fingerprint); "" matches none
    # action id -> one line saying where a case went after an action took it off this analyst's queue;
    # the queue page the action redirects to (`?done=<action id>`) shows it once
    notices: dict[str, str] = field(default_factory=dict)

    def tell(self, action_id: str, text: str) -> None:
        """Keep `text` for the queue page of `action_id`; only the newest MAX_NOTICES are kept (a tab
        closed before its redirect landed never collects its own)."""
        self.notices[action_id] = text
        while len(self.notices) > MAX_NOTICES:
            del self.notices[next(iter(self.notices))]


class Sessions:
    """Live sessions by id, and each analyst's in the order they were made.

    Bounded twice: at most `per_analyst` per analyst (a new one ends that analyst's oldest), and at most
    `limit` in all. When the whole table is full, expired sessions go first; if none has expired, the
    oldest session of whoever holds the most goes (the signer's own when they hold as many as anyone),
    so an analyst is never signed out to make room for someone holding more sessions than they do."""

    def __init__(self, lifetime: float, clock: Callable[[], float] = time.time, limit: int = MAX_SESSIONS,
                 per_analyst: int = MAX_PER_ANALYST) -> None:
        self.lifetime, self.clock = lifetime, clock
        self.limit, self.per_analyst = max(1, limit), max(1, per_analyst)
        self._by_id: dict[str, Session] = {}
        self._by_analyst: dict[str, OrderedDict[str, None]] = {}

    def create(self, analyst: str, credential: str) -> Session:
        """A new session for `analyst`, signed in with the token `credential` fingerprints."""
        own = self._by_analyst.setdefault(analyst, OrderedDict())
        while len(own) >= self.per_analyst:
            self.drop(next(iter(own)))
        if len(self._by_id) >= self.limit:
            self._forget_expired()
        while len(self._by_id) >= self.limit:
            self.drop(next(iter(self._heaviest(analyst))))
        own = self._by_analyst.setdefault(analyst, OrderedDict())  # dropping its last may have removed it
        session = Session(secrets.token_urlsafe(32), analyst, secrets.token_urlsafe(32), self.clock() + self.lifetime,
                          credential)
        self._by_id[session.sid] = session
        own[session.sid] = None
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session for a cookie value; an expired one is forgotten and None returned."""
        if not sid:
            return None
        session = self._by_id.get(sid)
        if session is None:
            return None
        if session.expires <= self.clock():
            self.drop(sid)
            return None
        return session

    def drop(self, sid: str | None) -> None:
        session = self._by_id.pop(sid, None) if sid else None
        if session is None:
            return
        own = self._by_analyst.get(session.analyst)
        if own is not None:
            own.pop(session.sid, None)
            if not own:
                del self._by_analyst[session.analyst]

    def of(self, analyst: str) -> int:
        """How many live or not yet forgotten sessions `analyst` has."""
        return len(self._by_analyst.get(analyst, ()))

    def _forget_expired(self) -> None:
        now = self.clock()
        for sid in [sid for sid, session in self._by_id.items() if session.expires <= now]:
            self.drop(sid)

    def _heaviest(self, signer: str) -> OrderedDict[str, None]:
        """The session ids of whoever holds the most sessions: the signer's when they tie for the most,
        else, of those tied, the analyst with the oldest session."""
        most = max(len(own) for own in self._by_analyst.values())
        own = self._by_analyst.get(signer)
        if own is not None and len(own) == most:
            return own
        return min((own for own in self._by_analyst.values() if len(own) == most),
                   key=lambda own: self._by_id[next(iter(own))].expires)

    def __len__(self) -> int:
        return len(self._by_id)


def csrf_ok(session: Session, presented: str | None) -> bool:
    """Whether a form's token is the session's. surrogateescape: aiohttp hands header and cookie bytes
    that are not UTF-8 on as lone surrogates, which a plain encode() turns into a 500."""
    return bool(presented) and hmac.compare_digest(session.csrf.encode("utf-8", "surrogateescape"),
                                                   str(presented).encode("utf-8", "surrogateescape"))


def cookie_attributes(secure: bool, max_age: int) -> dict[str, object]:
    """aiohttp `set_cookie` keyword arguments for the session cookie."""
    # Lax, not Strict: an analyst following an alert's link from chat or e-mail (a top-level GET from
    # another site) must arrive signed in. Lax still leaves the cookie off every cross-site POST, frame,
    # image and fetch, and every console POST needs the session's CSRF token besides (docs/SECURITY.md).
    return {"httponly": True, "samesite": "Lax", "secure": secure, "path": "/console", "max_age": max_age}


SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
