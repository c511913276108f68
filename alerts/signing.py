"""Webhook signatures: HMAC-SHA256 over "<timestamp>." + body, and (version 2) over
"<timestamp>.<notification id>." + body.

The timestamp is inside the signed bytes, so a receiver that rejects old timestamps also rejects
a captured request replayed later. The first signature does not cover the
X-Finsentry-Notification-Id header that receivers de-duplicate on, so within the timestamp's
tolerance a captured request could be replayed under a fresh id and pass a receiver's de-duplication.
`X-Finsentry-Signature-V2` covers the id too; it is sent beside the first (kept for receivers written
against it), and `verify` checks it whenever it is present. A receiver that knows all its senders
sign version 2 passes `require_v2`, so a request stripped of it is refused too.

The signed bytes of version 2 read one way only: the timestamp is digits, and a notification id is
never empty and never holds ".", so the first two dots end the timestamp and the id. (With a "." in
the id, the id "abc.{" and a body missing its first byte would sign as "abc" and the whole body.)
`sign` refuses such an id, and `verify` refuses a request that names one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Finsentry-Timestamp"
SIGNATURE_HEADER = "X-Finsentry-Signature"
SIGNATURE_V2_HEADER = "X-Finsentry-Signature-V2"
NOTIFICATION_ID_HEADER = "X-Finsentry-Notification-Id"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def valid_notification_id(notification_id: str) -> bool:
    """Whether `notification_id` may be signed: not empty, no "." (which would make the split of the
    signed bytes into id and body ambiguous)."""
    return bool(notification_id) and "." not in notification_id


def signature_v2(secret: bytes, timestamp: int, notification_id: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<notification id>." + body (the id as UTF-8); ValueError for an
    id `valid_notification_id` refuses."""
    if not valid_notification_id(notification_id):
        raise ValueError(f"notification id {notification_id!r}: must be non-empty, without '.'")
    signed = f"{timestamp}.{notification_id}.".encode("utf-8", "surrogateescape") + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int, notification_id: str | None = None) -> dict[str, str]:
    """The headers to send with `body`; with `notification_id`, also that header and the version 2
    signature over it."""
    headers = {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}
    if notification_id is not None:
        headers[NOTIFICATION_ID_HEADER] = notification_id
        headers[SIGNATURE_V2_HEADER] = signature_v2(secret, timestamp, notification_id, body)
    return headers


def verify(secret: bytes, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = 300,
           require_v2: bool = False) -> bool:
    """True only for a correct signature whose timestamp is within `tolerance` seconds of `now`. When
    the version 2 signature is present (or `require_v2`), it is the one checked, with the
    notification id header it covers; else the first."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp, given = lowered.get(TIMESTAMP_HEADER.lower()), lowered.get(SIGNATURE_HEADER.lower())
    given_v2, notification_id = lowered.get(SIGNATURE_V2_HEADER.lower()), lowered.get(NOTIFICATION_ID_HEADER.lower())
    if stamp is None or not stamp.isascii() or not stamp.isdigit():
        return False
    if abs(now - int(stamp)) > tolerance:
        return False
    if given_v2 is not None or require_v2:
        if given_v2 is None or notification_id is None or not valid_notification_id(notification_id):
            return False
        return hmac.compare_digest(signature_v2(secret, int(stamp), notification_id, body).encode(),
                                   given_v2.encode("utf-8", "surrogateescape"))
    if given is None:
        return False
    return hmac.compare_digest(signature(secret, int(stamp), body).encode(), given.encode("utf-8", "surrogateescape"))
