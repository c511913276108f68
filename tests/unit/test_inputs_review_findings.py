"""A review's findings on what ingest and `finsentry produce` did to good stories, one test per
example: ids that collided, JSONL and CSV shapes read without their dates, tickers and urls, text and
numbers the cleaning rewrote, tickers and dates lost, repeated ids sent in silence."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from models.text import clean, for_model, tidy
from streams.cli import main
from streams.validation import Story, unread_because, validate

NOW = 1_800_000_000.0


def ok(value: dict) -> Story:
    result = validate(json.dumps(value, ensure_ascii=False).encode(), NOW)
    assert isinstance(result, Story), result
    return result


def produce(path: Path, tmp_path: Path) -> tuple[int, list[dict]]:
    """`finsentry produce FILE -o sent.jsonl`: the exit status and the records sent."""
    out = tmp_path / "sent.jsonl"
    code = main(["produce", str(path), "-o", str(out)])
    return code, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("finsentry: warning:")]


# --- 1. derived ids ------------------------------------------------------------------------------


def test_body_only_stories_without_a_url_get_ids_of_their_own() -> None:
    # all got the id of source + "" + "": classify dropped every one after the first for 24 h
    first = ok({"source": "Harbor Street Wire", "body": "Fabrikam cuts its full-year guidance."})
    second = ok({"source": "Harbor Street Wire", "body": "Contoso wins a defence contract."})
    assert first.id != second.id
    assert ok({"source": "Harbor Street Wire", "body": "Fabrikam cuts its full-year guidance."}).id == first.id


def test_one_headline_at_two_times_without_a_url_is_two_stories() -> None:
    morning = {"headline": "Trading halted in Tailspin Toys", "published_at": "2026-11-30T10:00:00Z",
               "body": "Shares were halted pending news."}
    afternoon = {"headline": "Trading halted in Tailspin Toys", "published_at": "2026-11-30T15:00:00Z",
                 "body": "Shares were halted again after a volatility pause."}
    assert ok(morning).id != ok(afternoon).id
    assert ok(morning).id == ok(dict(morning)).id  # the same file sent again: the same ids


def test_ids_with_a_url_and_undated_ids_without_one_are_as_before() -> None:
    # a story already scored under its id must still be recognised after an upgrade
    def before(*parts: str) -> str:
        return "h-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    with_url = ok({"source": "Wire", "headline": "Contoso beats", "url": "https://wire.example/a",
                   "published_at": "2026-11-30T10:00:00Z"})
    assert with_url.id == before("Wire", "https://wire.example/a", "Contoso beats")
    assert ok({"source": "Wire", "headline": "Contoso beats"}).id == before("Wire", "", "Contoso beats")
    # compatibility forms: stored as written now, hashed as the NFKC text ids were always made of
    marked = ok({"source": "Ｗｉｒｅ", "headline": "Contoso™ slips… again", "url": "https://wire.example/b"})
    assert marked.headline == "Contoso™ slips… again"
    assert marked.id == before("Wire", "https://wire.example/b", "ContosoTM slips... again")


# --- 6. JSONL keys, whole-number ids ------------------------------------------------------------------


def test_a_jsonl_lines_usual_keys_are_the_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the first was skipped as missing_text; the second sent without its date, ticker and url, unsaid
    path = tmp_path / "feed.jsonl"
    path.write_text(
        json.dumps({"title": "Fabrikam cuts guidance", "summary": "Fabrikam sees lower sales.",
                    "link": "https://news.example/f", "pubDate": "Mon, 30 Nov 2026 14:05:00 GMT",
                    "symbols": "FBKM; CTSO", "guid": "g-1"}) + "\n"
        + json.dumps({"headline": "Contoso beats", "date": "2026-11-30 14:05", "ticker": "CTSO",
                      "link": "https://news.example/c", "guid": "g-2"}) + "\n", encoding="utf-8")
    code, sent = produce(path, tmp_path)
    assert code == 0
    first, second = (ok(record) for record in sent)
    assert (first.headline, first.body, first.url) == ("Fabrikam cuts guidance", "Fabrikam sees lower sales.",
                                                       "https://news.example/f")
    assert (first.published_at, first.published_at_source, first.tickers) == (
        "2026-11-30T14:05:00.000Z", "source", ["FBKM", "CTSO"])
    assert (second.published_at, second.tickers, second.url) == ("2026-11-30T14:05:00.000Z", ["CTSO"],
                                                                 "https://news.example/c")
    said = warnings(capsys.readouterr().err)
    assert len(said) == 1 and "line 1: key(s) 'guid' are not story fields and are not sent" in said[0]


@pytest.mark.parametrize(("field", "value", "kept"), [("id", 123456, "123456"), ("source", 7, "7")])
def test_a_whole_number_id_or_source_is_its_digits(field: str, value: int, kept: str) -> None:
    # pandas writes an id column of row numbers as numbers: the whole story was rejected, wrong_type
    story = ok({field: value, "headline": "Northwind opens a plant"})
    assert getattr(story, field) == kept


@pytest.mark.parametrize("value", [True, 1.5, {"n": 1}, [1]])
def test_an_id_or_source_of_another_type_costs_the_field_not_the_story(value: object) -> None:
    derived = ok({"headline": "Northwind opens a plant"})
    assert ok({"id": value, "headline": "Northwind opens a plant"}).id == derived.id
    assert ok({"source": value, "headline": "Northwind opens a plant"}).source == "unknown"


def test_produce_names_an_id_that_is_no_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text('{"id": 1.5, "headline": "Northwind opens a plant"}\n{"id": 2, "headline": "Adatum"}\n',
                    encoding="utf-8")
    code, sent = produce(path, tmp_path)
    assert code == 0 and len(sent) == 2
    assert warnings(capsys.readouterr().err) == [
        ("finsentry: warning: 1 id(s) are neither text nor a whole number, so finsentry derived those stories' ids "
        "(line 1: 1.5); write each id as text")]


# --- 3. a date and its clock in two columns ------------------------------------------------------


@pytest.mark.parametrize("row", ["30/11/2026,14:05,Europe/Paris,Fabrikam cuts guidance",
                                 "30/11/2026,14h05,+01:00,Fabrikam cuts guidance"])
def test_a_time_or_zone_that_cannot_be_read_is_named_not_taken_for_midnight(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str) -> None:
    # the Date cell alone was sent, and the story stamped 00:00 UTC as the source's own time
    path = tmp_path / "desk.csv"
    path.write_text("Date,Time,Timezone,Headline\n" + row + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["produce", str(path), "-o", str(out)]) == 0
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert validate(json.dumps(record).encode(), NOW).published_at_source == "received"
    assert "could not be read" in capsys.readouterr().err


@pytest.mark.parametrize(("header", "row", "expected"), [
    ("Date;Time;Headline", "30/11/2026;14:05;Fabrikam cuts guidance", "2026-11-30T14:05:00.000Z"),
    ("Headline;Time;Date;Time zone", "Fabrikam cuts guidance;14:05;30/11/2026;GMT+2", "2026-11-30T12:05:00.000Z"),
    ("Date;Time;TZ;Headline", "2026-11-30;14:05;+02:00;Fabrikam cuts guidance", "2026-11-30T12:05:00.000Z"),
    # a Date cell that holds its own clock and zone stays as it is (joined, it could not be read)
    ("Date,Time,Headline", "2026-11-30 14:05:00,14:05:00,Fabrikam cuts guidance", "2026-11-30T14:05:00.000Z"),
    ("Date,Timezone,Headline", "2026-11-30T14:05:00+01:00,Europe/Paris,Fabrikam cuts guidance",
     "2026-11-30T13:05:00.000Z"),
    ("Date,Timezone,Headline", "1796047500,UTC,Fabrikam cuts guidance", "2026-11-30T14:05:00.000Z"),  # an epoch
    ("Date,Timezone,Headline", "20261130140500,Europe/Paris,Fabrikam cuts guidance", "2026-11-30T14:05:00.000Z"),
])
def test_a_date_column_and_a_time_column_are_one_date(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      header: str, row: str, expected: str) -> None:
    # every story was stamped 00:00 UTC as the source's own time, the Time column "not a story field"
    path = tmp_path / "desk.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    code, sent = produce(path, tmp_path)
    story = ok(sent[0])
    assert code == 0 and (story.published_at, story.published_at_source) == (expected, "source")
    assert warnings(capsys.readouterr().err) == []


# --- 4. the stored text keeps its characters; the model's input is as before ---------------------


@pytest.mark.parametrize("headline", ["BTC&ETH slide", "Public&sector jobs", "Copy&copy rights", "3½% notes due 2031",
                                      "Contoso beats¹", "Ｆａｂｒｉｋａｍ ＡＧ"])
def test_a_headline_keeps_its_characters_and_numbers(headline: str) -> None:
    # were BTCÐ, Public§or, Copy©, 31⁄2% (three and a half per cent read as 31/2) and beats1
    assert ok({"headline": headline}).headline == headline


@pytest.mark.parametrize(("written", "kept"), [("Acme &amp; Globex", "Acme & Globex"), ("&#36;ACME &#x2B;3%", "$ACME +3%"),
                                               ("Acme &amp;amp; Globex", "Acme & Globex"), ("&bogus; &#99999999999;", "&bogus; \ufffd")])
def test_character_references_with_their_semicolon_are_still_read(written: str, kept: str) -> None:
    assert tidy(written) == kept


@pytest.mark.parametrize(("headline", "model_reads"), [("3½% notes", "31⁄2% notes"), ("Contoso beats¹", "Contoso beats1"),
                                                       ("Ｆａｂｒｉｋａｍ ＡＧ", "Fabrikam AG"), ("ﬁnance chief quits", "finance chief quits")])
def test_the_model_reads_the_stored_headline_as_it_read_the_cleaned_one(headline: str, model_reads: str) -> None:
    # the shipped model needs no re-export: classify's for_model still applies NFKC
    assert for_model(ok({"headline": headline}).headline) == for_model(clean(headline)) == model_reads


# --- 5. tickers with invisible or full-width characters -----------------------------------------


def test_a_ticker_with_invisible_or_full_width_characters_is_the_ticker() -> None:
    story = ok({"headline": "Markets open higher", "tickers": ["AAPL\u200b", "ＭＳＦＴ", "NW\ufeffND"]})
    assert (story.tickers, story.dropped_tickers) == (["AAPL", "MSFT", "NWND"], [])


def test_produce_names_every_ticker_it_drops_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # only a ticker with a space was named; `$$$` or a 12-letter name went unsaid
    path = tmp_path / "desk.csv"
    path.write_text('headline,tickers\nNorthwind opens a plant,"NWND, $$$"\nAdatum recalls heaters,ADATUMHEATERS\n'
                    "Contoso beats,CTSO\n", encoding="utf-8")
    code, sent = produce(path, tmp_path)
    assert code == 0 and len(sent) == 3
    assert warnings(capsys.readouterr().err) == [
        ("finsentry: warning: 2 ticker(s) are no ticker and were dropped from stories that were sent (line 2: '$$$'; "
        "line 3: 'ADATUMHEATERS'); a ticker is 1-10 letters or digits with up to two .X or -X suffixes "
        "(AAPL, 7203.T, BRK.B)")]


# --- 7. YYYYMMDDHHMMSS --------------------------------------------------------------------------


@pytest.mark.parametrize(("stamp", "expected"), [
    (20261130140500, "2026-11-30T14:05:00.000Z"), ("20261130140500", "2026-11-30T14:05:00.000Z"),
    ("20261130160500+0200", "2026-11-30T14:05:00.000Z"), ("20261130140500Z", "2026-11-30T14:05:00.000Z"),
])
def test_a_14_digit_date_and_time_is_that_moment(stamp: object, expected: str) -> None:
    # was read as epoch milliseconds: the year 2612, so the receive time
    story = ok({"headline": "Fabrikam cuts guidance", "published_at": stamp})
    assert (story.published_at, story.published_at_source) == (expected, "source")


def test_a_14_digit_number_that_is_no_date_and_time_says_so() -> None:
    assert ok({"headline": "Fabrikam cuts guidance", "published_at": 20261130250000}).published_at_source == "received"
    assert unread_because(20261130250000, NOW) == "20261130250000 is no YYYYMMDDHHMMSS date and time (hour must be in 0..23)"


# --- 2. an id repeated within one file -----------------------------------------------------------


def test_produce_names_ids_repeated_in_a_file_and_still_sends_them(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # two exports' row numbers: the later stories were dropped downstream as duplicates, unsaid
    path = tmp_path / "merged.csv"
    path.write_text("id,headline\n1,Northwind opens a plant\n2,Adatum recalls heaters\n1,Contoso beats\n"
                    "2,Fabrikam cuts guidance\n3,Tailspin Toys halted\n", encoding="utf-8")
    code, sent = produce(path, tmp_path)
    assert code == 0 and [r["id"] for r in sent] == ["1", "2", "1", "2", "3"]
    assert warnings(capsys.readouterr().err) == [
        ("finsentry: warning: 2 record(s) repeat an id an earlier line has (line 4: '1' as on line 2; line 5: '2' as on "
        "line 3); they were sent, but classify drops a repeated id as a duplicate: give each story an id of its own, "
        "or leave the id column out and finsentry derives one")]
