"""Silences are bounded: every one lives in the notify coordinator's single state record, which
must stay far below Kafka's 1 MiB message limit however many an operator (or an attacker) posts."""

from __future__ import annotations

import json

import pytest

from alerts.silences import (
    MAX_COMMENT,
    MAX_MATCHERS,
    MAX_SILENCE_BYTES,
    MAX_SILENCES,
    Matcher,
    Silence,
    SilenceError,
    Silences,
    silence_from_v2,
)

NOW = 1_800_000_000.0


def body(**overrides: object) -> dict:
    return {"matchers": [{"name": "scope", "value": "topic:Earnings", "isRegex": False}],
            "startsAt": "2027-01-15T08:00:00Z", "endsAt": "2027-01-15T20:00:00Z",
            "createdBy": "ops", "comment": "maintenance", **overrides}


def test_free_text_and_matcher_count_are_capped_with_the_limit_named() -> None:
    with pytest.raises(SilenceError, match=f"at most {MAX_COMMENT}"):
        silence_from_v2(body(comment="x" * (MAX_COMMENT + 1)), NOW)
    with pytest.raises(SilenceError, match=f"at most {MAX_MATCHERS}"):
        silence_from_v2(body(matchers=[{"name": f"l{i}", "value": "v", "isRegex": False}
                                       for i in range(MAX_MATCHERS + 1)]), NOW)


def test_a_silence_over_its_stored_size_is_refused() -> None:
    with pytest.raises(SilenceError, match=f"at most {MAX_SILENCE_BYTES}"):
        silence_from_v2(body(matchers=[{"name": f"l{i}", "value": "(?:a|b)+" * 100, "isRegex": True}
                                       for i in range(MAX_MATCHERS)]), NOW)
    with pytest.raises(SilenceError, match=f"at most {MAX_SILENCE_BYTES}"):
        Silences().add(Silence((Matcher("scope", "v" * 5000),), NOW + 3600, NOW, "", "", "big", NOW))


def test_the_store_refuses_a_new_silence_past_the_limit_and_stays_small() -> None:
    store = Silences()
    for n in range(MAX_SILENCES):  # each as large as the rules allow
        fill = MAX_SILENCE_BYTES - len(json.dumps(Silence((Matcher("scope", ""),), NOW + 3600, NOW, "", "o", f"s{n}",
                                                          NOW).to_dict()).encode())
        store.add(Silence((Matcher("scope", "v" * fill),), NOW + 3600, NOW, "", "o", f"s{n}", NOW))
    assert store.full("one-more")
    with pytest.raises(SilenceError, match=f"{MAX_SILENCES} silences"):
        store.add(Silence((Matcher("scope", "x"),), NOW + 3600, NOW, "", "", "one-more", NOW))
    store.add(Silence((Matcher("scope", "y"),), NOW + 7200, NOW, "", "", "s0", NOW))  # replacing is fine
    record = json.dumps({k: s.to_dict() for k, s in store.items.items()})
    assert len(record.encode()) < 1024 * 1024
