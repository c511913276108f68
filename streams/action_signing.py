"""Signed case actions: the signature on what the analyst API and the console write to `cases.actions`
(streams/case_actions.py `send_action`), and the check the scheduler's single writer makes before it
applies one.

Anyone who can produce to the topic could otherwise act on any case as any analyst. Each action is
signed with HMAC-SHA256 (alerts/signing.py, the webhook scheme) over `<signed_at>.` + the canonical
JSON of the action without its signature fields, with a secret read when the worker starts
(FINSENTRY_CASE_ACTION_SECRET_FILE, the same file on every worker). An action is not refused for its
age: one waiting in the topic while the writer was down must still apply, and a replay is already
idempotent by its `action_id`.

Without the setting, a worker makes a random secret at start: enough for one worker (the API and
console answer only on the scheduler's owner, which also applies the actions), but a deployment
with several workers needs the file, or actions signed before an ownership move are refused.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from functools import cache
from typing import Any

from alerts.signing import signature
from streams.app import settings
from streams.metrics import CASE_ACTION_REJECTIONS
from streams.usage import config_exit

log = logging.getLogger(__name__)
SIGNED_AT, SIGNATURE = "signed_at", "signature"
UNSIGNED, BAD_SIGNATURE = CASE_ACTION_REJECTIONS  # the counter's reasons, exposed at 0 from start


@cache
def action_secret() -> bytes:
    """The signing secret, read once: when the worker starts (streams/worker.py `configure`)."""
    path = settings.case_action_secret_file
    if path is None:
        log.warning("case actions: FINSENTRY_CASE_ACTION_SECRET_FILE unset: signing with a secret made up at "
                    "start, which only this worker knows; set it when more than one worker runs")
        return secrets.token_bytes(32)
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise config_exit("case_action_secret_file (FINSENTRY_CASE_ACTION_SECRET_FILE): "
                          f"cannot read {path} ({exc.strerror})") from None
    if len(secret) < 16:
        raise config_exit(f"case_action_secret_file: {path} holds {len(secret)} characters; put at least 16 "
                          "random ones in it (python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return secret.encode()


def canonical(action: dict[str, Any]) -> bytes:
    """The signed bytes of an action: its fields but the signature's own, in one fixed JSON form."""
    body = {k: v for k, v in action.items() if k not in (SIGNED_AT, SIGNATURE)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(action: dict[str, Any], secret: bytes, now: float) -> dict[str, Any]:
    stamp = int(now)
    return {**action, SIGNED_AT: stamp, SIGNATURE: signature(secret, stamp, canonical(action))}


def refusal(action: dict[str, Any], secret: bytes) -> str | None:
    """Why an action must not be applied (`unsigned`, `bad_signature`), or None when it is signed right."""
    stamp, given = action.get(SIGNED_AT), action.get(SIGNATURE)
    if stamp is None and given is None:
        return UNSIGNED
    if not isinstance(stamp, int) or isinstance(stamp, bool) or not isinstance(given, str):
        return BAD_SIGNATURE
    # As bytes: compare_digest raises TypeError on a str with non-ASCII characters, and a forged
    # `sha256=é` must be a refusal, not a crash of the scheduler's writer on every worker in turn.
    expected = signature(secret, stamp, canonical(action)).encode()
    return None if hmac.compare_digest(expected, given.encode("utf-8", "surrogatepass")) else BAD_SIGNATURE

