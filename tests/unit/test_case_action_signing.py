"""Signed case actions (issue 17): the scheduler's writer drops, and counts, any action on
`cases.actions` or the inbox that the API or console did not sign."""

from __future__ import annotations

import pytest

from streams import metrics
from streams.action_signing import action_secret, refusal, sign
from streams.agents.schedule import forged

SECRET = b"case-action-secret-for-tests"
ACTION = {"action": "resolve", "case_id": "case-c1", "analyst": "ana", "action_id": "a1", "outcome": "done"}


def rejected(reason: str) -> float:
    return metrics.CASE_ACTIONS_REJECTED.labels(reason)._value.get()


def test_a_signed_action_passes_and_any_change_to_it_does_not() -> None:
    signed = sign(ACTION, SECRET, 1_700_000_000)
    assert refusal(signed, SECRET) is None
    assert refusal(dict(reversed(list(signed.items()))), SECRET) is None  # canonical: key order does not matter
    for tampered in ({**signed, "analyst": "bob"}, {**signed, "outcome": "forged"}, {**signed, "signed_at": 1},
                     {**signed, "signature": "sha256=" + "0" * 64}, {**signed, "signed_at": "1700000000"}):
        assert refusal(tampered, SECRET) == "bad_signature"
    assert refusal(signed, b"another-secret") == "bad_signature"
    assert refusal(ACTION, SECRET) == "unsigned"


@pytest.mark.parametrize(("action", "reason"), [
    (ACTION, "unsigned"),
    ({**ACTION, "signed_at": 1, "signature": "sha256=00"}, "bad_signature"),
    # compare_digest raised TypeError on these: the writer crashed, on every worker that took the record
    ({**ACTION, "signed_at": 1, "signature": "sha256=é"}, "bad_signature"),
    ({**ACTION, "signed_at": 1, "signature": "sha256=\ud800"}, "bad_signature"),
])
def test_the_writer_drops_and_counts_what_it_cannot_verify(action: dict, reason: str) -> None:
    before = rejected(reason)
    assert forged(action, action["action_id"]) == reason  # the dead letter's error names it
    assert rejected(reason) == before + 1


def test_the_writer_takes_what_the_worker_signed() -> None:
    assert forged(sign(ACTION, action_secret(), 1_700_000_000), "a1") is None
    assert forged(None, None) is None  # not an action (an anomaly or a tick): not this check's business


def test_both_reasons_are_exposed_at_zero_from_start() -> None:
    metrics.expose_known_series((), (), (), ())
    exposed = {s.labels["reason"] for m in metrics.CASE_ACTIONS_REJECTED.collect() for s in m.samples}
    assert {"unsigned", "bad_signature"} <= exposed
