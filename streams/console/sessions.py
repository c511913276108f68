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
from dataclasses import dataclass

COOKIE = "finsentry_console"
PRE_COOKIE = "finsentry_console_signin"  # CSRF for the sign-in form itself (double submit)
MAX_SESSIONS = 10_000  # bounded memory: the oldest session goes first


@dataclass
class Session:
    sid: str
    analyst: str
    csrf: str
    expires: float  # epoch seconds
    credential: str = ""  # the analyst's token fingerprint at sign-in (Credential.fingerprint); "" matches none


class Sessions:
    def __init__(self, lifetime: float, clock: Callable[[], float] = time.time, limit: int = MAX_SESSIONS) -> None:
        self.lifetime, self.clock, self.limit = lifetime, clock, limit
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def create(self, analyst: str, credential: str) -> Session:
        """A new session for `analyst`, signed in with the token `credential` fingerprints."""
        while len(self._by_id) >= self.limit:
            self._by_id.popitem(last=False)
        session = Session(secrets.token_urlsafe(32), analyst, secrets.token_urlsafe(32), self.clock() + self.lifetime,
                          credential)
        self._by_id[session.sid] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session for a cookie value; an expired one is forgotten and None returned."""
        if not sid:
            return None
        session = self._by_id.get(sid)
        if session is None:
            return None
        if session.expires <= self.clock():
            self._by_id.pop(sid, None)
            return None
        return session

    def drop(self, sid: str | None) -> None:
        if sid:
            self._by_id.pop(sid, None)

    def __len__(self) -> int:
        return len(self._by_id)


def csrf_ok(session: Session, presented: str | None) -> bool:
    """Whether a form's token is the session's. surrogateescape: aiohttp hands header and cookie bytes
    that are not UTF-8 on as lone surrogates, which a plain encode() turns into a 500."""
    return bool(presented) and hmac.compare_digest(session.csrf.encode("utf-8", "surrogateescape"),
                                                   str(presented).encode("utf-8", "surrogateescape"))


def cookie_attributes(secure: bool, max_age: int) -> dict[str, object]:
    """aiohttp `set_cookie` keyword arguments for the session cookie."""
    return {"httponly": True, "samesite": "Strict", "secure": secure, "path": "/console", "max_age": max_age}


SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
