"""Roles and hashed tokens in the roster (issue 17): salted scrypt hashes, a minimum length for
tokens the roster references, operators beside analysts, per-analyst webhook secrets, and a cache
that spares scrypt for a token already verified."""

from __future__ import annotations

import io
import sys

import pytest

from scheduler import Operator, RosterError, parse_roster
from scheduler import roster as roster_module
from scheduler.tokens import MIN_LENGTH, TokenCache, hash_token, parse_hash, verify_hash
from streams.cli import main

ANA_TOKEN = "ana-token-" + "a" * 30
OPS_TOKEN = "ops-token-" + "o" * 30


def roster_text(ana_ref: str, tail: str = "") -> str:
    return f"""\
analysts:
  - id: ana
    name: Ana
    capacity: 1
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Earnings: 5}}}}
    notify: http://127.0.0.1:9/ana
    {ana_ref}
operators:
  - id: ops
    token_hash: {hash_token(OPS_TOKEN, n=16)}
{tail}"""


def test_a_hash_is_salted_and_verifies_only_its_token() -> None:
    first, second = hash_token(ANA_TOKEN, n=16), hash_token(ANA_TOKEN, n=16)
    assert first != second and first.startswith("scrypt$16$8$1$")  # a fresh salt each time
    assert verify_hash(ANA_TOKEN.encode(), first) and verify_hash(ANA_TOKEN.encode(), second)
    assert not verify_hash((ANA_TOKEN + "x").encode(), first)
    assert parse_hash(hash_token("t")).__getitem__(0) == 2**14  # the default cost


def test_the_roster_has_analysts_and_operators_and_tells_them_apart() -> None:
    r = parse_roster(roster_text(f"token_hash: {hash_token(ANA_TOKEN, n=16)}"))
    assert isinstance(r.authenticate(OPS_TOKEN), Operator) and r.authenticate(OPS_TOKEN).id == "ops"
    assert r.authenticate(ANA_TOKEN).id == "ana" and "ana" in r.analysts
    assert "ops" not in r.analysts  # an operator takes no cases
    assert r.authenticate("x" * 40) is None


@pytest.mark.parametrize(("ref", "field", "words"), [
    ("token_sha256: " + "0" * 64, "analysts[0].token_sha256", "unknown field"),
    ("token_hash: " + "0" * 64, "analysts[0].token_hash", "scrypt$N$r$p$SALT$HASH"),
    ("token_hash: scrypt$1000$8$1$c2FsdHNhbHQ$aGFzaA", "analysts[0].token_hash", "power of two"),
    ("token_file: /dev/null", "analysts[0].token_file", f"at least {MIN_LENGTH}"),
])
def test_an_unsalted_malformed_or_short_token_stops_the_roster_at_its_line(ref: str, field: str, words: str) -> None:
    with pytest.raises(RosterError) as info:
        parse_roster(roster_text(ref), "roster.yaml")
    assert str(info.value).startswith(f"roster.yaml:8: {field}: ") and words in str(info.value)


def test_a_short_token_in_an_environment_variable_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("ANA_TOKEN", "short")
    with pytest.raises(RosterError, match=r"analysts\[0\].token_env: the token is 5 characters"):
        parse_roster(roster_text("token_env: ANA_TOKEN"))
    monkeypatch.setenv("ANA_TOKEN", ANA_TOKEN)
    assert parse_roster(roster_text("token_env: ANA_TOKEN")).authenticate(ANA_TOKEN).id == "ana"


def test_a_verified_token_is_not_hashed_again_and_an_edited_hash_is(monkeypatch) -> None:
    monkeypatch.setattr(roster_module, "CACHE", TokenCache())
    calls = []
    real = roster_module.verify_hash
    monkeypatch.setattr(roster_module, "verify_hash", lambda raw, stored: calls.append(stored) or real(raw, stored))
    r = parse_roster(roster_text(f"token_hash: {hash_token(ANA_TOKEN, n=16)}"))
    assert r.authenticate(ANA_TOKEN).id == "ana"
    slow = len(calls)
    assert slow == 2  # every hashed person, once: timing says nothing about who matched
    for _ in range(5):
        assert r.authenticate(ANA_TOKEN).id == "ana"
    assert len(calls) == slow  # the cache answered
    edited = parse_roster(roster_text(f"token_hash: {hash_token(ANA_TOKEN, n=16)}"))  # a new salt
    assert edited.authenticate(ANA_TOKEN).id == "ana" and len(calls) > slow


def test_a_token_kept_in_the_environment_does_not_pay_for_everyone_elses_hash(monkeypatch) -> None:
    monkeypatch.setattr(roster_module, "CACHE", TokenCache())
    monkeypatch.setenv("ANA_TOKEN", ANA_TOKEN)
    calls = []
    real = roster_module.verify_hash
    monkeypatch.setattr(roster_module, "verify_hash", lambda raw, stored: calls.append(stored) or real(raw, stored))
    r = parse_roster(roster_text("token_env: ANA_TOKEN"))
    assert [r.authenticate(ANA_TOKEN).id for _ in range(5)] == ["ana"] * 5
    assert len(calls) == 1  # the operator's hash, on the first request only
    monkeypatch.setenv("ANA_TOKEN", "rotated-" + ANA_TOKEN)
    assert r.authenticate(ANA_TOKEN) is None  # a rotated token takes effect at once


def test_an_analyst_may_have_their_own_webhook_secret(tmp_path) -> None:
    secret = tmp_path / "ana.secret"
    secret.write_text("ana-hook-secret\n")
    ref = f"token_hash: {hash_token(ANA_TOKEN, n=16)}\n    notify_secret_file: {secret}"
    assert parse_roster(roster_text(ref)).analysts["ana"].notify_secret == b"ana-hook-secret"
    assert "ana-hook-secret" not in repr(parse_roster(roster_text(ref)).analysts["ana"])
    with pytest.raises(RosterError, match=r"notify_secret_file: cannot read"):
        parse_roster(roster_text(ref.replace(str(secret), str(tmp_path / "missing"))))


def test_token_hash_command_reads_stdin_and_refuses_a_short_token(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(ANA_TOKEN + "\n"))
    assert main(["token", "hash"]) == 0
    line = capsys.readouterr().out.strip()
    assert verify_hash(ANA_TOKEN.encode(), line)
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["token", "hash"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("finsentry: error: token hash: the token is 5 characters") and err.count("\n") == 1


def test_without_slow_checks_only_tokens_verified_before_match(monkeypatch) -> None:
    monkeypatch.setattr(roster_module, "CACHE", TokenCache())
    r = parse_roster(roster_text(f"token_hash: {hash_token(ANA_TOKEN, n=16)}"))
    assert r.authenticate(ANA_TOKEN, slow=False) is None  # never verified: a throttled client cannot make it hash
    assert r.authenticate(ANA_TOKEN).id == "ana"
    assert r.authenticate(ANA_TOKEN, slow=False).id == "ana"  # a known token still passes
    assert r.authenticate(OPS_TOKEN, slow=False) is None
