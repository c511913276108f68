"""What classify scores from news.clean: ingest's records, and nothing that would crash the agent
after the scored record was sent (and so again on every restart, from the committed offset)."""

from __future__ import annotations

import math

import pytest

from streams.agents.classify import scorable, story_id

GOOD = {"id": "c-1", "source": "wire", "headline": "Adatum shuts two plants", "body": None, "url": None,
        "published_at": "2025-11-30T05:00:00.000Z", "tickers": ["ADTM"], "lang": None,
        "received_at": 1764478800.5, "published_at_source": "source", "truncated": False}


def test_ingests_record_is_scorable():
    assert scorable(GOOD) and story_id(GOOD) == "c-1"
    assert scorable({**GOOD, "tickers": None, "received_at": None, "body": "Two plants close."})


@pytest.mark.parametrize("value", [
    {**GOOD, "id": "c-\ud800"},  # a lone surrogate: the seen-ids key cannot be encoded
    {**GOOD, "headline": "", "body": 5}, {**GOOD, "headline": None},
    {**GOOD, "tickers": [{"a": 1}]}, {**GOOD, "tickers": 5},
    {**GOOD, "tickers": ["ADTM", "AD\udc80"]},  # the monitor's scope key for it could not be encoded
    {**GOOD, "received_at": 10 ** 400}, {**GOOD, "received_at": math.nan}, {**GOOD, "received_at": "now"},
    {**GOOD, "received_at": True}, b"\xff", ["c-1"],
])
def test_anything_else_is_dead_lettered_not_scored(value):
    assert not scorable(value)


def test_an_id_utf8_cannot_encode_is_no_id_so_it_is_never_deduplicated():
    assert story_id({**GOOD, "id": "c-\udc80"}) is None
