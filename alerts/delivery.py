"""Signed webhook delivery with bounded retries.

One call of `deliver` is a delivery round. Retried within it: timeouts, connection errors, 5xx and
the 4xx a later attempt may get past (408, 425, 429), with exponential backoff and full jitter (a
random wait in [0, min(cap, initial * 2^n)]) so many workers recovering at once do not stampede. On
429 and 503 a Retry-After (delta-seconds or an HTTP date) sets the wait instead, but never below
the backoff's un-jittered step nor RETRY_AFTER_MIN (no back-to-back attempts on `Retry-After: 0`),
and never above RETRY_AFTER_MAX; when it runs past
the round's `max_elapsed`, the round ends and `DeliveryResult.retry_at` tells the sender not to try
again before it. 401 and 404 end the round at once (a new secret or a redeployed receiver may accept
a later round), as a soft refusal: `DeliveryResult.soft_refused`. Refused for good: other 3xx/4xx,
which a resend cannot fix. Attempts are bounded by `max_attempts` and the whole round by
`max_elapsed`; a failure is returned, never raised, carrying what a dead-letter record needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

import httpx

from alerts.receivers import RECEIVER_TYPES, Receiver
from alerts.signing import NOTIFICATION_ID_HEADER, sign

__all__ = ["NOTIFICATION_ID_HEADER", "DeliveryResult", "deliver", "encode", "retry_after_seconds"]

# Refusals a later round may get past: 401 (a secret being rotated, a clock), 404 (a receiver being
# redeployed), 408, 425, 429. Those a request can outwait (408, 425, 429) are also retried within a round.
SOFT_REFUSALS = frozenset({401, 404, 408, 425, 429})
RETRIED_IN_ROUND = frozenset({408, 425, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})
RETRY_AFTER_MIN = 1.0  # seconds: the least wait a Retry-After gets, `Retry-After: 0` included
RETRY_AFTER_MAX = 3600.0  # seconds: the most a Retry-After defers the next attempt (or round)


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Literal["delivered", "failed"]
    attempts: int
    status: int | None
    last_error: str
    receiver: str
    url: str
    notification_id: str
    started_at: float
    finished_at: float
    payload: dict
    # Failed for good: a resend cannot succeed (a 3xx, a 4xx other than SOFT_REFUSALS, or a URL no
    # request can be made to); a sender that would try again later (notify's outbox) gives it up at once.
    refused: bool = False
    # Not before this Unix time: the receiver's Retry-After (capped) ran past the round.
    retry_at: float | None = None

    @property
    def soft_refused(self) -> bool:
        """The round ended on a refusal a later round may get past (SOFT_REFUSALS): a sender tries
        again for a bounded number of rounds, not for as long as it would after a 5xx or a timeout."""
        return self.outcome == "failed" and not self.refused and self.status in SOFT_REFUSALS

    @classmethod
    def not_attempted(cls, error: str, receiver: str, url: str, notification_id: str, payload: dict,
                      now: float) -> DeliveryResult:
        """A failure before any request was made (the sender raised, or the receiver is gone), at
        Unix time `now`: recorded like any failed delivery, so it reaches the dead-letter topic."""
        return cls("failed", 0, None, error, receiver, url, notification_id, now, now, payload)

    def deadletter(self) -> dict:
        """A JSON record for a dead-letter topic: enough to inspect and re-send by hand."""
        return {
            "error": self.last_error, "stage": "webhook", "receiver": self.receiver, "url": self.url,
            "status": self.status, "attempts": self.attempts, "notification_id": self.notification_id,
            "started_at": self.started_at, "finished_at": self.finished_at, "original": self.payload,
        }


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After (delta-seconds or an HTTP date) as seconds from now; None if absent or unparseable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        stamp = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if stamp.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
        stamp = stamp.replace(tzinfo=UTC)
    return max(stamp.timestamp() - now, 0.0)


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


async def deliver(
    client: httpx.AsyncClient,
    receiver: Receiver,
    payload: dict,
    *,
    now_fn: Callable[[], float],
    sleep_fn: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    notification_id: str | None = None,
) -> DeliveryResult:
    """POST the payload to the receiver until it is accepted or the retry budget is spent.

    The notification id header (`notification_id`, else a hash of the body) is the same on every
    attempt, so a receiver can drop a retry of a request it did process but whose response was lost.
    A sender that re-sends the same body as a new notification (a repeat_interval reminder) passes
    its own id, or the receiver would drop the reminder as a retry.
    """
    rng = rng or random.Random()
    body = encode(payload)
    notification_id = notification_id or hashlib.sha256(body).hexdigest()[:32]
    started = now_fn()
    attempts, status, error = 0, None, ""
    retry_at: float | None = None

    def result(outcome: Literal["delivered", "failed"], refused: bool = False) -> DeliveryResult:
        return DeliveryResult(outcome, attempts, status, error, receiver.name, receiver.url, notification_id,
                              started, now_fn(), payload, refused, retry_at)

    while attempts < receiver.max_attempts:
        attempts += 1
        headers = {"Content-Type": "application/json", **sign(receiver.secret, body, int(now_fn()), notification_id)}
        wait: float | None = None
        asked = False  # the wait is the receiver's Retry-After
        try:
            response = await client.post(receiver.url, content=body, headers=headers, timeout=receiver.timeout)
        except httpx.TimeoutException as exc:
            status, error = None, f"timeout after {receiver.timeout:g}s ({type(exc).__name__})"
        except httpx.TransportError as exc:
            status, error = None, f"connection error: {type(exc).__name__}: {exc}"
        except (httpx.InvalidURL, UnicodeError, OverflowError) as exc:  # a URL no request can be made to (a bad
            # port or host name; an IDNA error; a port out of range): a resend cannot fix it
            status, error = None, f"no request can be made to {receiver.url!r}: {type(exc).__name__}: {exc}"
            return result("failed", refused=True)
        except Exception as exc:  # noqa: BLE001 - anything else on the way (a TLS record error, a body that
            # does not decode) is retried like a connection error: raised, it would end the sender's task
            status, error = None, f"request failed: {type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            if response.is_success:
                error, retry_at = "", None
                return result("delivered")
            error = f"HTTP {status}: {response.text[:200]}"
            if status in RETRY_AFTER_STATUSES:
                wait = retry_after_seconds(response.headers.get("Retry-After"), now_fn())
                if wait is not None:  # a lower bound: never sooner than the backoff (without jitter) nor the floor
                    floor = max(RETRY_AFTER_MIN, min(receiver.backoff_max, receiver.backoff_initial * 2 ** (attempts - 1)))
                    asked, wait = True, min(max(wait, floor), RETRY_AFTER_MAX)
            if status < 500 and status not in RETRIED_IN_ROUND:
                return result("failed", refused=status not in SOFT_REFUSALS)
        if wait is None:
            wait = rng.uniform(0, min(receiver.backoff_max, receiver.backoff_initial * 2 ** (attempts - 1)))
        retry_at = now_fn() + wait if asked else None
        if attempts >= receiver.max_attempts:
            break
        if now_fn() + wait - started > receiver.max_elapsed:
            error += (f"; giving up: next retry in {wait:.1f}s{' (Retry-After)' if asked else ''} would exceed "
                      f"max_elapsed {receiver.max_elapsed:g}s")
            break
        await sleep_fn(wait)
    return result("failed")


class Deliver(Protocol):
    """The receiver contract: send one payload to one receiver within its retry budget, and return
    (never raise) the outcome, with what a dead-letter record needs. `deliver` is the webhook's."""

    async def __call__(self, client: httpx.AsyncClient, receiver: Receiver, payload: dict, *,
                       now_fn: Callable[[], float], notification_id: str | None = None) -> DeliveryResult: ...


# Every receiver type's delivery, by `Receiver.type`; a new type adds its name to
# alerts/receivers.py RECEIVER_TYPES (what the receivers file accepts) and its delivery here.
DELIVERERS: dict[str, Deliver] = {"webhook": deliver}
if set(DELIVERERS) != set(RECEIVER_TYPES):
    raise ImportError(f"alerts.delivery.DELIVERERS {sorted(DELIVERERS)} must cover RECEIVER_TYPES {RECEIVER_TYPES}")
