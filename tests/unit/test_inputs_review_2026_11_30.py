"""The 2026-11-30 review of the input side, what ingest's validation did wrong: whole stories lost for
one odd field, dates without a time of day taken for midnight, tickers read without their exchange
or split wrongly, a news API's source lost, urls rewritten when stored, ambiguous zone names guessed."""

from __future__ import annotations

import json

import pytest

from streams.validation import Rejection, Story, normalise_url, parse_time, stable_id, unread_because, validate

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z, the Kafka timestamp: the receive time
RECEIVED = "2027-01-15T08:00:00.000Z"


def ok(value: dict) -> Story:
    result = validate(json.dumps(value, ensure_ascii=False).encode(), NOW)
    assert isinstance(result, Story), result
    return result


# --- 1. one odd field costs the field, not the story ----------------------------------------------


@pytest.mark.parametrize("url", ["www.northwind.example/markets/x", "//www.northwind.example/x", "N/A",
                                 "/markets/x", "https://[bad/x", "http:///path", "ftp://northwind.example/a"])
def test_a_url_that_is_no_absolute_http_url_is_dropped_and_the_story_kept(url: str) -> None:
    # each was bad_url: the story went to the dead-letter topic for its link
    story = ok({"headline": "Northwind lifts its dividend", "url": url})
    assert story.url is None and story.headline == "Northwind lifts its dividend"
    assert len(story.dropped_fields) == 1 and story.dropped_fields[0].startswith(f"url {url[:100]!r}")
    assert "dropped_fields" not in story.to_json()


@pytest.mark.parametrize(("field", "value"), [("body", ["p1", "p2"]), ("lang", ["en"]), ("url", 7),
                                              ("headline", {"text": "x"})])
def test_a_field_of_another_type_is_dropped_when_the_story_has_text(field: str, value: object) -> None:
    record = {"headline": "Contoso wins a contract", "body": "Contoso won it.", field: value}
    story = ok(record)
    assert getattr(story, field) in (None, "")
    assert story.dropped_fields == [f"{field} must be a string, got {type(value).__name__}"]


def test_a_story_whose_only_text_is_of_another_type_is_still_rejected() -> None:
    result = validate(json.dumps({"body": ["Contoso won it."]}).encode(), NOW)
    assert isinstance(result, Rejection) and result.reason == "wrong_type" and "body" in result.message


@pytest.mark.parametrize("stamp", [{"$date": "2026-11-30T14:05:00Z"}, {"$date": 1796047500000},
                                   {"$date": {"$numberLong": "1796047500000"}}])
def test_a_mongoexport_date_is_read(stamp: object) -> None:
    story = ok({"headline": "Fabrikam cuts guidance", "published_at": stamp})
    assert (story.published_at, story.published_at_source) == ("2026-11-30T14:05:00.000Z", "source")


@pytest.mark.parametrize("stamp", [True, ["2026-11-30T14:05:00Z"], {"when": "yesterday"}, {"$date": None}])
def test_a_date_of_another_type_is_the_receive_time_not_a_rejection(stamp: object) -> None:
    # was bad_timestamp: the story lost for its date
    story = ok({"headline": "Fabrikam cuts guidance", "published_at": stamp})
    assert (story.published_at, story.published_at_source) == (RECEIVED, "received")
    assert unread_because(stamp, NOW)


# --- 2. a date without a time of day is no time --------------------------------------------------


@pytest.mark.parametrize("stamp", ["2026-11-30", "30/11/2026", "Nov 30 2026", "30 Nov 2026", "2026.11.30",
                                   "20261130", 20261130, "2026-W48-1", "Monday, November 30, 2026"])
def test_a_date_without_a_time_of_day_is_the_receive_time_not_midnight(stamp: object) -> None:
    # each became 00:00Z as the story's own time: late for a live story, a day in one minute on replay
    story = ok({"headline": "Tailspin Toys recalls kites", "published_at": stamp})
    assert (story.published_at, story.published_at_source) == (RECEIVED, "received")
    assert "has no time of day" in unread_because(stamp, NOW)


def test_a_date_with_a_time_of_day_is_still_the_storys_own() -> None:
    for stamp in ["2026-11-30T00:00:00Z", "30 Nov 2026 00:00", "20261130000000", "2026-11-30 14:05"]:
        assert ok({"headline": "x", "published_at": stamp}).published_at_source == "source", stamp


# --- 5. tickers: exchanges kept as suffixes, '/' lists refused ------------------------------------


@pytest.mark.parametrize(("written", "ticker"), [
    ("TSX:T", "T.TO"), ("LON:BA", "BA.L"), ("EPA:MC", "MC.PA"), ("HKG:0700", "0700.HK"), ("HKG:700", "0700.HK"),
    ("ETR:SAP", "SAP.DE"), ("TYO:7203", "7203.T"), ("ASX:BHP", "BHP.AX"), ("VOD LN Equity", "VOD.L"),
    ("7203 JT Equity", "7203.T"), ("NYSE:F", "F"), ("NASDAQ:AAPL", "AAPL"), ("ARCA:SPY", "SPY"),
    ("AAPL US Equity", "AAPL"), ("LON:VOD.L", "VOD.L"), ("0700.HK", "0700.HK"), ("BRK/B", "BRK.B"),
])
def test_an_exchange_is_read_as_the_tickers_suffix(written: str, ticker: str) -> None:
    # TSX:T became T (AT&T), LON:BA became BA (Boeing): another company
    assert ok({"headline": "x", "tickers": [written]}).tickers == [ticker]


@pytest.mark.parametrize("written", ["XOM/GE", "AAPL/MSFT", "TSE:7203", "XYZ:ACME", "VOD ZZ Equity"])
def test_an_unknown_exchange_or_a_slashed_pair_is_dropped_and_counted_not_guessed(written: str) -> None:
    # XOM/GE became XOM.GE; TSE is Tokyo to some and Toronto to others
    story = ok({"headline": "x", "tickers": [written]})
    assert (story.tickers, story.dropped_tickers) == ([], [written.upper()])


# --- 7. a news API's source object ---------------------------------------------------------------


def test_a_source_object_gives_its_name() -> None:
    assert ok({"headline": "x", "source": {"id": None, "name": "Harbor Street Wire"}}).source == "Harbor Street Wire"
    assert ok({"headline": "x", "source": {"id": "harbor-wire", "name": None}}).source == "harbor-wire"
    assert ok({"headline": "x", "source": {"id": None}}).source == "unknown"


# --- 10. urls stored as written -----------------------------------------------------------------


@pytest.mark.parametrize(("url", "stored"), [
    ("https://news.example/a?12345", "https://news.example/a?12345"),
    ("https://news.example/a?id=1;sid=2", "https://news.example/a?id=1;sid=2"),
    ("https://news.example/#!/article/9", "https://news.example/#!/article/9"),
    ("https://news.example/a?q=a%20b&utm_source=x&b=", "https://news.example/a?q=a%20b&b="),
    ("HTTPS://News.Example/A#comments", "https://news.example/A"),
])
def test_a_url_keeps_its_query_and_hashbang_as_written(url: str, stored: str) -> None:
    # ?12345 became ?12345=, ;sid=2 was percent-encoded, #!/article/9 became the site's root
    assert ok({"headline": "x", "url": url}).url == stored


# --- 11. zone names that name several zones ------------------------------------------------------


@pytest.mark.parametrize("stamp", ["Mon, 30 Nov 2026 09:30:00 CST", "30 Nov 2026 09:30 IST", "30 Nov 2026 09:30 BST"])
def test_an_ambiguous_zone_name_is_the_receive_time_not_a_guess(stamp: str) -> None:
    story = ok({"headline": "x", "published_at": stamp})
    assert (story.published_at, story.published_at_source) == (RECEIVED, "received")
    assert "could be" in unread_because(stamp, NOW)


def test_unambiguous_zone_names_are_still_read() -> None:
    assert parse_time("Mon, 30 Nov 2026 09:30:00 EST").isoformat() == "2026-11-30T09:30:00-05:00"
    assert parse_time("Mon, 30 Nov 2026 09:30:00 CDT").isoformat() == "2026-11-30T09:30:00-05:00"
    assert parse_time("Mon, 30 Nov 2026 09:30:00 GMT").isoformat() == "2026-11-30T09:30:00+00:00"


@pytest.mark.parametrize("url", ["https://news.example/story?12345", "https://news.example/s?p=1,2",
                                 "https://news.example/s?q=hello%20world", "https://news.example/#!/article/9"])
def test_a_url_kept_as_written_keeps_the_id_and_feed_key_stories_had_before(url: str) -> None:
    """The second inputs review: keeping the query as written changed the ids made from it, so a story
    without an id re-sent across the upgrade was scored and counted twice; and a feed's stored link key
    changed, so an undated item was sent again."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    from streams.sources.scrape import link_key

    parts = urlsplit(url)  # what normalise_url made of it before: query re-encoded, fragment dropped
    before = urlunsplit((parts.scheme, parts.netloc, parts.path or "/",
                         urlencode(parse_qsl(parts.query, keep_blank_values=True)), ""))
    story = validate(json.dumps({"source": "Harbor Street Wire", "headline": "Fabrikam recalls kettles", "url": url}).encode(), NOW)
    assert story.url == normalise_url(url) and story.url != before  # stored as written...
    assert story.id == stable_id("Harbor Street Wire", before, "Fabrikam recalls kettles")  # ...the id as before
    fragment = parts.fragment
    assert link_key(url) == (f"{before}#{fragment}" if fragment else before)


@pytest.mark.parametrize(("named", "headline", "expected"), [
    ("LON:BA", "BAE $BA up on orders", ["BA.L"]),
    ("TSX:T", "Telus $T slips", ["T.TO"]),
    ("BRK/B", "$BRK.B and $AAPL rise", ["BRK.B", "AAPL"]),  # a share class is the listing itself
    ("AAPL", "$BA and $AAPL rise", ["AAPL", "BA"]),
])
def test_a_cashtag_of_a_named_listings_symbol_is_that_listing(named: str, headline: str, expected: list[str]) -> None:
    """The second inputs review: `LON:BA` became BA.L, and the headline's `$BA` then added Boeing's BA
    beside it, so the story still counted in Boeing's scope."""
    story = validate(json.dumps({"source": "wire", "headline": headline, "tickers": [named]}).encode(), NOW)
    assert story.tickers == expected


def test_the_watchlist_is_read_by_the_ticker_rules_stories_are_read_by() -> None:
    """The second inputs review: the watchlist was only upper-cased, so `BRK/B` or `LON:VOD` never
    matched the label a story's ticker gets (BRK.B, VOD.L)."""
    from streams.settings import Settings, SettingsError

    assert Settings.load({"FINSENTRY_WATCHLIST": "aapl, BRK/B,LON:VOD"}).watchlist == {"AAPL", "BRK.B", "VOD.L"}
    with pytest.raises(SettingsError, match=r"FINSENTRY_WATCHLIST.*'XOM/GE': no ticker as stories carry them"):
        Settings.load({"FINSENTRY_WATCHLIST": "AAPL, XOM/GE"})
