"""Webhook signatures: HMAC-SHA256 over "<timestamp>." + body.

The timestamp is inside the signed bytes, so a receiver that rejects old timestamps also rejects
a captured request replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Finsentry-Timestamp"
SIGNATURE_HEADER = "X-Finsentry-Signature"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers to send with `body`."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: bytes, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = 300) -> bool:
    """True only for a correct signature whose timestamp is within `tolerance` seconds of `now`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp, given = lowered.get(TIMESTAMP_HEADER.lower()), lowered.get(SIGNATURE_HEADER.lower())
    if stamp is None or given is None or not stamp.isdigit():
        return False
    if abs(now - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, int(stamp), body), given)
