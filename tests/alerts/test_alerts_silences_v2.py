"""Silences in Alertmanager's API v2 form: what amtool posts is accepted, what it reads back is
what Alertmanager would answer, and mistakes are named."""

from __future__ import annotations

import pytest

from alerts.records import iso_utc
from alerts.silences import Matcher, Silence, SilenceError, Silences, filter_matchers, parse_time, silence_from_v2

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def body(**over) -> dict:
    return {"matchers": [{"name": "scope", "value": "ticker:T.*", "isRegex": True, "isEqual": True}],
            "startsAt": iso_utc(NOW), "endsAt": "2026-01-01T02:00:00.123456789Z", "createdBy": "ops",
            "comment": "maintenance", **over}


def test_amtool_body_round_trips_to_gettable_silence() -> None:
    silence = silence_from_v2(body(), NOW)
    assert silence.ends_at == pytest.approx(NOW + 7200.123456, abs=1e-6)
    assert silence.matches({"scope": "ticker:TEST"}, NOW + 1) and not silence.matches({"scope": "topic:X"}, NOW + 1)
    got = silence.to_v2(NOW + 1)
    assert got["status"] == {"state": "active"} and got["id"] == silence.id
    assert got["matchers"] == body()["matchers"] and got["createdBy"] == "ops" and got["comment"] == "maintenance"
    assert got["startsAt"] == "2026-01-01T00:00:00.000Z" and got["endsAt"] == "2026-01-01T02:00:00.123Z"
    assert silence_from_v2(body(startsAt="2025-01-01T00:00:00Z"), NOW).starts_at == NOW  # a past start means now
    assert Silence.from_dict(silence.to_dict()) == silence


def test_negative_matchers_and_pending_silences() -> None:
    # (a negative matcher alone matches the empty label set, so it needs a positive one beside it)
    silence = silence_from_v2(body(matchers=[{"name": "severity", "value": "critical", "isRegex": False,
                                              "isEqual": False}, {"name": "scope", "value": "ticker:T.*", "isRegex": True}],
                                   startsAt="2026-01-01T01:00:00+01:00"), NOW)
    assert silence.state(NOW) == "active"  # 01:00+01:00 is now
    later = silence_from_v2(body(startsAt="2026-01-01T01:00:00Z"), NOW)
    assert later.state(NOW) == "pending" and later.to_v2(NOW)["status"]["state"] == "pending"
    assert silence.matches({"severity": "warning", "scope": "ticker:TX"}, NOW)
    assert not silence.matches({"severity": "critical", "scope": "ticker:TX"}, NOW)


@pytest.mark.parametrize(("over", "message"), [
    ({"matchers": []}, "matchers"),
    ({"matchers": [{"name": "a", "value": 1, "isRegex": False}]}, r"matchers\[0\]"),
    ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}, "invalid regex"),
    ({"endsAt": "yesterday"}, "endsAt"),
    ({"endsAt": "2026-01-01T02:00:00"}, "time zone"),
    ({"endsAt": "2025-12-31T00:00:00Z", "startsAt": "2025-12-30T00:00:00Z"}, "past"),
    ({"endsAt": "2026-01-01T00:30:00Z", "startsAt": "2026-01-01T01:00:00Z"}, "after startsAt"),
    ({"comment": None}, "comment"),
    ({"extra": 1}, "unknown field"),
])
def test_bad_bodies_are_refused_with_the_field_named(over: dict, message: str) -> None:
    with pytest.raises(SilenceError, match=message):
        silence_from_v2(body(**over), NOW)


def test_expire_ends_now_and_keeps_it_listed_as_expired() -> None:
    silences = Silences()
    silence = silence_from_v2(body(), NOW)
    silences.add(silence)
    assert silences.expire(silence.id, NOW + 60) and not silences.expire("nope", NOW)
    assert silences.match({"scope": "ticker:TEST"}, NOW + 61) is None
    (listed,) = silences.list(NOW + 61)
    assert listed.to_v2(NOW + 61)["status"]["state"] == "expired"
    assert [s.id for s in silences.list(NOW + 4 * 86400)] == [silence.id]  # kept 120h, as in Alertmanager
    assert silences.list(NOW + 6 * 86400) == [] and silences.items == {}  # then pruned from the stored set


def test_filters_like_amtool_query() -> None:
    assert filter_matchers(['scope=~"ticker:T.*"', "severity!=info", 'alertname="x"']) == [
        Matcher("scope", "ticker:T.*", True, True), Matcher("severity", "info", False, False),
        Matcher("alertname", "x", False, True)]
    with pytest.raises(SilenceError):
        filter_matchers(["not a matcher"])
    assert parse_time("2026-01-01T00:00:00.5Z", "x") == NOW + 0.5
