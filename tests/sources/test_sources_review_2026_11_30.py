"""The 2026-11-30 review of the input side, what the sources did wrong: feed text whose `&` HTML's
parser expanded, description-only items never sent, undated items without a guid or link sent again
each poll, tracebacks from `generate`, and `produce` messages that named no fix or hid a dropped field."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.cli import main
from streams.sources import scrape
from streams.validation import Story, validate

NOW = 1_900_000_000.0
FEED = "http://feed.example/rss"


def rss(*items: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Harbor Street Wire</title>'
            + "".join(f"<item>{item}</item>" for item in items) + "</channel></rss>").encode()


def poll(body: bytes, store: Path, content_type: str = "application/rss+xml") -> tuple[scrape.PollResult,
                                                                                       list[dict[str, Any]]]:
    """One poll of a feed that answers `body`, through httpx's mock transport; the records sent."""
    handler: Callable[[httpx.Request], httpx.Response] = (
        lambda request: httpx.Response(200, content=body, headers={"content-type": content_type}))
    sent: list[dict[str, Any]] = []
    with httpx.Client(transport=httpx.MockTransport(handler)) as client, scrape.SeenStore(store) as seen:
        result = scrape.poll_once(client, FEED, seen, sent.append, now=NOW)
    return result, sent


def run(argv: list[str]) -> int:
    """The exit status of `finsentry ARGV`, whether main returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def ingested(record: dict[str, Any]) -> Story:
    story = validate(json.dumps(record).encode(), NOW)
    assert isinstance(story, Story), story
    return story


# --- 3. an `&` without its `;` in HTML is text ---------------------------------------------------


def test_html_text_keeps_an_ampersand_without_its_semicolon(tmp_path: Path) -> None:
    # BTC&ETH became BTCÐ, GBP&pound became GBP£: HTML's legacy names, read where models.text reads none
    _, sent = poll(rss(
        "<title><![CDATA[<b>BTC&ETH</b> rally]]></title><guid>h-1</guid>"
        "<description><![CDATA[<p>GBP&pound and BTC&ETH; Q&amp;A &#36;5 &copy; 2026</p>]]></description>",
        '<title type="html">Q&amp;A: BTC&amp;ETH</title><guid>h-2</guid>',
    ), tmp_path / "seen.sqlite")
    stories = [ingested(record) for record in sent]
    assert stories[0].headline == "BTC&ETH rally"
    assert stories[0].body == "GBP&pound and BTCÐ Q&A $5 © 2026"  # with its `;`, a reference decodes
    assert stories[1].headline == "Q&A: BTC&ETH"


def test_html_text_leaves_out_scripts_and_styles() -> None:
    assert scrape.strip_html("<p>Acme<script>alert(1)</script> <style>p{}</style>rises</p>") == "Acme rises"


# --- 4. an item with only a description -------------------------------------------------------------


def test_an_item_with_only_a_description_is_sent_as_a_body_only_story_once(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    # a Mastodon post: was skipped "no title", never marked seen, and warned about on every poll
    caplog.set_level(logging.WARNING)
    body = rss('<guid isPermaLink="true">https://social.example/@wire/1</guid>'
               "<link>https://social.example/@wire/1</link><pubDate>Mon, 30 Nov 2026 09:30:00 +0000</pubDate>"
               "<description>&lt;p&gt;$FBKM halts trading pending news&lt;/p&gt;</description>")
    first, sent = poll(body, tmp_path / "seen.sqlite")
    second, again = poll(body, tmp_path / "seen.sqlite")
    assert (first.new, first.skipped, second.new, second.skips, again) == (1, 0, 0, {"already_sent": 1}, [])
    story = ingested(sent[0])
    assert (story.headline, story.body, story.tickers) == ("", "$FBKM halts trading pending news", ["FBKM"])
    assert "skipped" not in caplog.text


# --- 6. no guid, no link, a date that moves ----------------------------------------------------------


def test_a_recurring_item_without_guid_or_link_is_a_story_each_day(tmp_path: Path) -> None:
    """The second review's finding: keying such items on title and description alone (so that a feed
    re-stamping its items would not send them again) dropped every later day's "Market wrap", with no
    reason given. The date stays in the key; a re-stamped repeat is absorbed by the monitor's novelty."""
    def item(date: str) -> bytes:
        return rss(f"<title>Market wrap</title><description>Stocks at the close.</description><pubDate>{date}</pubDate>")

    first, sent = poll(item("Sun, 29 Nov 2026 21:00:00 GMT"), tmp_path / "seen.sqlite")
    second, again = poll(item("Mon, 30 Nov 2026 21:00:00 GMT"), tmp_path / "seen.sqlite")
    assert (first.new, second.new) == (1, 1) and sent[0]["id"] != again[0]["id"]
    both, stories = poll(rss("<title>Market wrap</title><pubDate>Mon, 30 Nov 2026 12:00:00 GMT</pubDate>",
                             "<title>Market wrap</title><pubDate>Mon, 30 Nov 2026 21:00:00 GMT</pubDate>"),
                         tmp_path / "other.sqlite")
    assert both.new == 2 and len({s["id"] for s in stories}) == 2
    # undated: the description tells them apart (the third review: the second was lost as already sent)
    rose, _ = poll(rss("<title>Market wrap</title><description>Stocks rose on Monday.</description>"), tmp_path / "u.sqlite")
    fell, _ = poll(rss("<title>Market wrap</title><description>Stocks fell on Tuesday.</description>"), tmp_path / "u.sqlite")
    same, _ = poll(rss("<title>Market wrap</title><description>Stocks fell on Tuesday.</description>"), tmp_path / "u.sqlite")
    assert (rose.new, fell.new, same.new) == (1, 1, 0)


def test_a_hashbang_link_is_one_key_not_its_fragment_twice() -> None:
    assert scrape.link_key("https://news.example/#!/article/9") == "https://news.example/#!/article/9"
    assert scrape.link_key("https://news.example/live#post-5") == "https://news.example/live#post-5"


# --- 8. generate: out-of-range options -----------------------------------------------------------


@pytest.mark.parametrize(("argv", "names"), [
    (["--start", "0001-01-01T00:00:00+01:00"], "--start"),
    (["--rate", "1e-300"], "--rate"),
    (["--start", "9999-12-31T00:00:00Z", "--count", "2000000"], "--count"),
])
def test_generate_says_which_option_is_out_of_range_in_one_line(argv: list[str], names: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # each was an OverflowError traceback
    code = run(["generate", "--count", "2", *argv, "-o", str(tmp_path / "g.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and names in err and "Traceback" not in err


# --- 1 and 9. produce: dropped fields reported, encodings named with their fix ---------------------


def produce(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]], str]:
    out = path.with_suffix(".sent.jsonl")
    code = run(["produce", str(path), "-o", str(out)])
    sent = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return code, sent, capsys.readouterr().err


def test_produce_sends_a_story_with_an_odd_field_and_says_which_field_it_lost(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(json.dumps({"headline": "Contoso wins a contract", "url": "N/A", "lang": ["en"]}) + "\n")
    code, sent, err = produce(path, capsys)
    assert code == 0 and len(sent) == 1 and "skipped 0" in err
    said = [line for line in err.splitlines() if "field(s) could not be kept" in line]
    assert len(said) == 1 and "line 1: lang must be a string" in said[0] and "line 1: url 'N/A'" in said[0]


@pytest.mark.parametrize("name", ["news.jsonl", "news.csv"])
def test_produce_names_a_utf16_file_once_with_the_fix(name: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # PowerShell's '>': every line was "not UTF-8" or "not JSON"
    path = tmp_path / name
    text = ('{"headline": "Acme beats"}\n{"headline": "Globex slides"}\n' if name.endswith(".jsonl")
            else "headline\tdate\r\nAcme beats\t2026-11-30T14:05:00Z\r\n")
    path.write_bytes(text.encode("utf-16"))
    code, sent, err = produce(path, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and sent == [] and len(lines) == 1
    assert "UTF-16, not UTF-8" in lines[0] and "save it as UTF-8" in lines[0]


def test_produce_says_how_to_fix_a_line_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "news.jsonl"
    path.write_bytes('{"headline": "Acme beats \u201cestimates\u201d"}\n'.encode("cp1252"))
    _, _, err = produce(path, capsys)
    assert "line 1: skipped: not UTF-8 (invalid start byte at byte 25); save the file as UTF-8" in err


def test_produce_reads_excels_sep_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "no headline or body column (... the columns are 'sep=', '')"
    path = tmp_path / "news.csv"
    path.write_bytes(b"sep=;\r\nheadline;date\r\nAcme, Inc. beats;2026-11-30T14:05:00Z\r\n")
    code, sent, err = produce(path, capsys)
    assert code == 0, err
    assert [(r["headline"], r["published_at"]) for r in sent] == [("Acme, Inc. beats", "2026-11-30T14:05:00Z")]


def test_produce_says_to_separate_tickers_with_commas_for_a_pipe(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(json.dumps({"headline": "Acme and Globex", "tickers": ["ACME|GLBX"]}) + "\n")
    _, _, err = produce(path, capsys)
    assert "separate tickers with commas or semicolons (AAPL, MSFT), not spaces, '|' or '/'" in err


def test_produce_reports_a_date_without_a_time_as_the_receive_time(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # a Date column beside an empty Time column: the story was stamped 00:00Z, as its own time
    path = tmp_path / "news.csv"
    path.write_text("Headline,Date,Time\nAcme beats,2026-11-30,\n")
    code, sent, err = produce(path, capsys)
    assert code == 0 and sent[0]["published_at"] == "2026-11-30"
    assert "line 2: published_at '2026-11-30' could not be read (2026-11-30 has no time of day" in err
    assert ingested(sent[0]).published_at_source == "received"




# --- delivery: entries are marked seen only once the sink has them ---------------------------------


def test_a_poll_whose_records_the_sink_could_not_deliver_marks_nothing_seen(tmp_path: Path) -> None:
    """The delivery review's finding: scrape marked an entry seen as soon as it was queued, so a send
    the broker refused afterwards (or a process killed before the flush) lost the story for good: the
    next poll said 'already sent'."""
    from streams.sources.kafka_sink import SinkError

    body = rss("<title>Contoso opens plant</title><guid>g-1</guid>", "<title>Fabrikam cuts jobs</title><guid>g-2</guid>")
    handler: Callable[[httpx.Request], httpx.Response] = (
        lambda request: httpx.Response(200, content=body, headers={"content-type": "application/rss+xml"}))
    queued: list[dict[str, Any]] = []

    def refused() -> None:
        raise SinkError("broker refused a record: NotEnoughReplicas")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client, scrape.SeenStore(tmp_path / "s.sqlite") as seen:
        with pytest.raises(SinkError):
            scrape.poll_once(client, FEED, seen, queued.append, now=NOW, flush=refused)
        delivered: list[dict[str, Any]] = []
        again = scrape.poll_once(client, FEED, seen, delivered.append, now=NOW + 60, flush=lambda: None)
        last = scrape.poll_once(client, FEED, seen, delivered.append, now=NOW + 120, flush=lambda: None)
    assert len(queued) == 2 and again.new == 2 and [r["id"] for r in delivered] == [r["id"] for r in queued]
    assert last.new == 0  # marked once delivered


def test_scrape_to_a_full_disk_says_so_and_marks_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The delivery review: `-o FILE` on a full disk marked every item seen (a buffered write fails
    only at close) and then blamed the store."""
    body = rss("<title>Contoso opens plant</title><guid>g-1</guid>")
    monkeypatch.setattr(scrape, "make_client", lambda policy: httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers={"content-type": "application/rss+xml"}))))
    store = tmp_path / "s.sqlite"
    code = main(["scrape", "--feed", FEED, "--once", "--store", str(store), "-o", "/dev/full"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write /dev/full: No space left on device" in err and "scrape store" not in err
    with scrape.SeenStore(store) as seen:
        assert seen._db.execute("SELECT COUNT(*) FROM seen").fetchone() == (0,)  # was: the item's keys


def test_an_undated_copy_without_guid_or_link_in_the_same_poll_is_a_duplicate(tmp_path: Path) -> None:
    """The fixes' review: with entries marked seen only after the poll's flush, the in-poll check no
    longer saw the first entry's title key, which the second holds as its legacy key, and sent both."""
    result, sent = poll(rss("<title>Northwind shares down</title><link>https://news.example/nw</link>",
                            "<title>Northwind shares down</title>"), tmp_path / "s.sqlite")
    assert (result.new, result.skips) == (1, {"duplicate": 1}) and len(sent) == 1
