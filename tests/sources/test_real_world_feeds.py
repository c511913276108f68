"""Issue #15's feed rows, through `finsentry scrape --once` against feeds served on 127.0.0.1.

Each test is one row of the issue's table: the feed as people publish it, and the stories a user
expects to come out. What comes out is also run through ingest's validation, since the scraper
must never count as sent a story that ingest would dead-letter.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.cli import main
from streams.sources import scrape
from streams.sources.scrape import Policy, SeenStore, poll_once
from streams.validation import MAX_BODY_CHARS, Rejection, Story, validate
from tests.sources.feedserver import FeedServer, Route, old_store

NOW = time.time()


def rss(*items: str, title: str = "Wire") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{title}</title>'
            + "".join(f"<item>{item}</item>" for item in items) + "</channel></rss>").encode()


def scrape_once(server: FeedServer, path: str, tmp_path: Path, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    """`finsentry scrape --once` into a file, with a store kept in tmp_path across calls."""
    out = tmp_path / "out.jsonl"
    code = main(["scrape", "--feed", server.url(path), "--once", "--store", str(tmp_path / "seen.sqlite"),
                 "-o", str(out), *extra])
    return code, [json.loads(line) for line in out.read_text().splitlines()]


def ingested(record: dict[str, Any]) -> Story:
    story = validate(json.dumps(record, ensure_ascii=False).encode(), NOW)
    assert isinstance(story, Story), story
    return story


def test_items_sharing_a_placeholder_guid_are_three_stories(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/na"] = Route(rss(*(f'<title>Story {n}</title><link>https://w.example/{n}</link>'
                                       '<guid isPermaLink="false">N/A</guid>' for n in range(3))))
    code, sent = scrape_once(server, "/na", tmp_path)
    assert code == 0
    assert [r["headline"] for r in sent] == ["Story 0", "Story 1", "Story 2"]
    assert len({r["id"] for r in sent}) == 3
    _, again = scrape_once(server, "/na", tmp_path)  # and each is sent once, across polls
    assert again == []


def test_a_placeholder_guid_is_no_identity_even_on_a_one_item_feed(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/one"] = Route(rss('<title>First</title><guid isPermaLink="false">N/A</guid>'))
    _, first = scrape_once(server, "/one", tmp_path)
    server.routes["/one"] = Route(rss('<title>Second</title><guid isPermaLink="false">N/A</guid>'))
    _, second = scrape_once(server, "/one", tmp_path)
    assert [r["headline"] for r in first + second] == ["First", "Second"]


def test_a_headline_only_wire_without_guid_or_link_gives_every_story(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/wire"] = Route(rss(
        "<title>Acme beats estimates</title><description>Acme earned more.</description>"
        "<pubDate>Tue, 10 Jun 2025 14:00:00 GMT</pubDate>",
        "<title>Globex misses</title><description>Globex earned less.</description>"
        "<pubDate>Tue, 10 Jun 2025 14:05:00 GMT</pubDate>",
    ))
    code, sent = scrape_once(server, "/wire", tmp_path)
    assert code == 0
    assert [r["headline"] for r in sent] == ["Acme beats estimates", "Globex misses"]
    assert [r["published_at"] for r in sent] == ["2025-06-10T14:00:00+00:00", "2025-06-10T14:05:00+00:00"]
    _, again = scrape_once(server, "/wire", tmp_path)
    assert again == []


def test_a_25799_character_description_is_sent_cut_and_marked(server: FeedServer, tmp_path: Path) -> None:
    words = ("revenue rose sharply in the quarter " * 800)[:25_799]
    server.routes["/long"] = Route(rss(f"<title>Acme annual report</title><guid>long-1</guid>"
                                       f"<description>{words}</description>"))
    code, sent = scrape_once(server, "/long", tmp_path)
    assert code == 0 and len(sent) == 1
    record = sent[0]
    assert record["truncated"] is True
    assert len(record["body"]) <= MAX_BODY_CHARS and words.startswith(record["body"])
    assert record["body"].split()[-1] in words.split()  # cut between words, not inside one
    story = ingested(record)  # and ingest keeps exactly that story
    assert story.truncated and story.body == record["body"]


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026/11/27 15:07:41", "2026-11-27T15:07:41+00:00"),  # feedparser made it 2026-11-01T00:00:00
    ("Fri, 27 Nov 2026 2:17:57 PM CET", "2026-11-27T13:17:57+00:00"),  # feedparser: 02:17:57, 11 hours early
    ("Mon, 04 Mar 2024 14:05:00 +0100", "2024-03-04T13:05:00+00:00"),
])
def test_feed_dates_are_read_from_the_raw_string(server: FeedServer, tmp_path: Path, raw: str, expected: str) -> None:
    server.routes["/dated"] = Route(rss(f"<title>Acme</title><guid>d-1</guid><pubDate>{raw}</pubDate>"))
    _, sent = scrape_once(server, "/dated", tmp_path)
    assert sent[0]["published_at"] == expected
    assert ingested(sent[0]).published_at_source == "source"


def test_an_unreadable_feed_date_gives_the_receive_time_marked_as_such(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/odd"] = Route(rss("<title>Acme</title><guid>o-1</guid><pubDate>27th of Brumaire</pubDate>"))
    _, sent = scrape_once(server, "/odd", tmp_path)
    assert "published_at" not in sent[0]
    story = ingested(sent[0])
    assert story.published_at_source == "received"


def test_an_unreadable_pubdate_does_not_hide_a_readable_dc_date(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/de"] = Route(rss('<title>Contoso senkt Prognose</title><guid>de-1</guid>'
                                     "<pubDate>Di, 10 Juni 2025 14:00:00 +0200</pubDate>"
                                     '<dc:date xmlns:dc="http://purl.org/dc/elements/1.1/">2025-06-10T16:00:00+02:00'
                                     "</dc:date>"))
    _, sent = scrape_once(server, "/de", tmp_path)
    assert sent[0]["published_at"] == "2025-06-10T14:00:00+00:00"


def test_a_plain_text_title_keeps_what_looks_like_a_tag_and_markup_joins_inline_words(server: FeedServer,
                                                                                       tmp_path: Path) -> None:
    # the stripper ran on every title: "Apple <AAPL.O> beats" lost its Reuters code, "Fed<b>ex</b>" split
    server.routes["/plain"] = Route(rss("<title>Northwind &lt;NWT.O&gt; beats estimates</title><guid>p-1</guid>",
                                        "<title><![CDATA[Fed<b>ex</b> cuts <br/>outlook]]></title><guid>p-2</guid>"))
    _, sent = scrape_once(server, "/plain", tmp_path)
    assert [r["headline"] for r in sent] == ["Northwind <NWT.O> beats estimates", "Fedex cuts outlook"]


def test_a_link_that_changes_only_in_tracking_parameters_is_the_same_story(server: FeedServer, tmp_path: Path) -> None:
    link = "https://news.example/contoso?id=7&amp;utm_source=rss&amp;utm_medium=feed"
    server.routes["/utm"] = Route(rss(f"<title>Contoso beats estimates</title><link>{link}</link>"))
    _, first = scrape_once(server, "/utm", tmp_path)
    server.routes["/utm"] = Route(rss("<title>Contoso beats estimates</title>"
                                      f"<link>{link.replace('utm_source=rss', 'utm_source=rss2')}&amp;utm_campaign=jun"
                                      "</link>"))
    _, second = scrape_once(server, "/utm", tmp_path)
    assert len(first) == 1 and second == []  # it was sent again, under a new id

    # a store written before: the raw link was the key, and it still counts as sent
    old_store(tmp_path / "old.sqlite", server.url("/utm"),
              [link.replace("&amp;", "&").replace("utm_source=rss", "utm_source=rss2") + "&utm_campaign=jun"])
    # a liveblog showing its latest post, whose link differs only in the fragment: each a new story
    headlines = []
    for post, title in ((5, "Rates live: Fed holds"), (6, "Rates live: Powell speaks")):
        server.routes["/live"] = Route(rss(f"<title>{title}</title><link>https://news.example/live#p-{post}</link>"))
        headlines += [r["headline"] for r in scrape_once(server, "/live", tmp_path)[1]]
    assert headlines == ["Rates live: Fed holds", "Rates live: Powell speaks"]

    out = tmp_path / "old.jsonl"
    main(["scrape", "--feed", server.url("/utm"), "--once", "--store", str(tmp_path / "old.sqlite"), "-o", str(out)])
    assert out.read_text() == ""


def test_skips_are_counted_by_reason_and_unusable_items_logged(server: FeedServer, client: httpx.Client,
                                                               tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server.routes["/mixed"] = Route(rss(
        "<title>Acme rises</title><guid>m-1</guid>",
        "<title>Acme rises</title><guid>m-1</guid>",  # the same story twice in one poll
        "<guid>m-3</guid>",  # neither a title nor a description: nothing to send
        "<title>Globex falls</title><guid>m-4</guid>",
    ))
    caplog.set_level(logging.WARNING)
    with SeenStore(tmp_path / "seen.sqlite") as store:
        first = poll_once(client, server.url("/mixed"), store, lambda r: None, now=NOW)
        second = poll_once(client, server.url("/mixed"), store, lambda r: None, now=NOW)
    assert (first.new, first.skips) == (2, {"duplicate": 1, "unusable": 1})
    assert (second.new, second.skips) == (0, {"already_sent": 2, "duplicate": 1, "unusable": 1})
    assert "entry skipped: no title and no description" in caplog.text


def test_a_guid_that_is_not_a_url_or_an_odd_link_costs_only_the_url(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/links"] = Route(rss("<title>Acme</title><guid>g-1</guid><link>ftp://w.example/a</link>",
                                        "<title>Globex</title><guid>g-2</guid><link>javascript:void(0)</link>"))
    code, sent = scrape_once(server, "/links", tmp_path)
    assert code == 0 and [r["headline"] for r in sent] == ["Acme", "Globex"]
    assert all("url" not in r for r in sent)


def test_a_story_ingest_would_reject_is_neither_sent_nor_marked(server: FeedServer, client: httpx.Client,
                                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/bad"] = Route(rss("<title>Acme</title><guid>b-1</guid>", "<title>Globex</title><guid>b-2</guid>"))

    def ingest_says(raw: bytes, received_at: float) -> Story | Rejection:
        return Rejection("bad_id", "for the test") if b"Acme" in raw else validate(raw, received_at)

    monkeypatch.setattr(scrape, "validate", ingest_says)
    sent: list[dict[str, Any]] = []
    with SeenStore(tmp_path / "seen.sqlite") as store:
        result = poll_once(client, server.url("/bad"), store, sent.append, now=NOW)
        again = poll_once(client, server.url("/bad"), store, sent.append, now=NOW)
    assert (result.new, result.skips) == (1, {"rejected": 1})
    assert (again.new, again.skips) == (0, {"rejected": 1, "already_sent": 1})  # never marked as sent
    assert [r["headline"] for r in sent] == ["Globex"]


def test_a_feed_over_max_bytes_is_reported_each_poll_without_backoff(server: FeedServer, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    body = rss(*(f"<title>Story {n}</title><guid>s-{n}</guid>" for n in range(200)))
    server.routes["/big"] = Route(body)
    code, sent = scrape_once(server, "/big", tmp_path, "--max-bytes", "2k")
    assert code == 1 and sent == []
    assert "over the 2048-byte limit (raise it with --max-bytes)" in caplog.text
    assert "retrying" not in caplog.text  # --once polls once: no retry to promise
    caplog.clear()
    scrape.log_result(scrape.PollResult(server.url("/big"), 200, 0, 0, "body is over the 2048-byte limit", 60.0))
    assert "over the 2048-byte limit; retrying in 60s" in caplog.text  # a long-running scrape says when
    with SeenStore(tmp_path / "seen.sqlite") as store:
        assert store.state(server.url("/big")).failures == 0  # not a failure to back off from
    policy = Policy(interval=60.0, max_bytes=2048)
    with scrape.make_client(policy) as client, SeenStore(tmp_path / "seen.sqlite") as store:
        delays = [poll_once(client, server.url("/big"), store, lambda r: None, now=NOW, policy=policy).next_poll_in
                  for _ in range(3)]
    assert delays == [60.0, 60.0, 60.0]
    code, sent = scrape_once(server, "/big", tmp_path, "--max-bytes", "1M")
    assert code == 0 and len(sent) == 200


def test_max_bytes_must_be_a_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scrape", "--feed", "http://127.0.0.1:9/rss", "--once", "--max-bytes", "lots"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("finsentry: error: scrape: argument --max-bytes")


def test_bare_ampersands_in_a_feed_keep_the_text_as_written(server: FeedServer, tmp_path: Path) -> None:
    # Not XML: feedparser's loose parser wrote `AT&T; and S&P; 500: M&A;, P&G;` and `BTCÐ`.
    server.routes["/amp"] = Route(rss(
        "<title>Northwind &amp; Contoso AT&T and S&P 500: M&A, P&G</title><guid>amp-1</guid>"
        "<description>AT&T and S&P 500 rose.</description>",
        "<title>BTC&ETH rally as Fabrikam&#8217;s fund buys</title><guid>amp-2</guid>"
        "<link>https://news.example/crypto?id=7&utm_source=rss&page=2</link>",
        "<title><![CDATA[Litware <LTW.O> & Tailspin agree merger]]></title><guid>amp-3</guid>",
    ))
    code, sent = scrape_once(server, "/amp", tmp_path)
    assert code == 0
    assert [r["headline"] for r in sent] == ["Northwind & Contoso AT&T and S&P 500: M&A, P&G",
                                             "BTC&ETH rally as Fabrikam\u2019s fund buys",
                                             "Litware <LTW.O> & Tailspin agree merger"]
    assert sent[0]["body"] == "AT&T and S&P 500 rose."
    assert sent[1]["url"] == "https://news.example/crypto?id=7&page=2"


def test_bare_ampersands_beside_an_html_entity_keep_the_text_as_written(server: FeedServer, tmp_path: Path) -> None:
    # `&nbsp;` is no XML entity: this feed stays with the loose parser, which decodes the escaped `&` right.
    server.routes["/nbsp"] = Route(rss("<title>Contoso&nbsp;and AT&T: S&P 500 up</title><guid>n-1</guid>"))
    _, sent = scrape_once(server, "/nbsp", tmp_path)
    assert [r["headline"] for r in sent] == ["Contoso and AT&T: S&P 500 up"]  # the no-break space is a space



def test_a_utf16_feed_keeps_its_ampersands(server: FeedServer, tmp_path: Path) -> None:
    # Its `&` is two bytes: escaping the byte 0x26 alone garbled each `&amp;` into `愦灭;amp;`.
    body = rss("<title>Northwind &amp; Contoso AT&amp;T</title><guid>u-1</guid>").decode().replace(
        'encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    server.routes["/utf16"] = Route(body, content_type="application/rss+xml")
    _, sent = scrape_once(server, "/utf16", tmp_path)
    assert [r["headline"] for r in sent] == ["Northwind & Contoso AT&T"]

REUSED_FIRST = (("1", "Fabrikam raises dividend"), ("2", "Litware cuts forecast"))
# The feed numbers the items on its page: a new story takes guid 1, and the others move down.
REUSED_NEXT = (("1", "Tailspin recalls jets"), ("2", "Fabrikam raises dividend"), ("3", "Litware cuts forecast"))


def numbered(items: tuple[tuple[str, str], ...], with_links: bool = False) -> bytes:
    """A feed of (guid, title) items, each with a link of its own when `with_links`."""
    return rss(*(f'<title>{title}</title><guid isPermaLink="false">{guid}</guid>'
                 + (f"<link>https://news.example/{title.split()[0].lower()}</link>" if with_links else "")
                 for guid, title in items))


@pytest.mark.parametrize("with_links", [False, True])
def test_a_guid_reused_for_a_new_story_gives_that_story_once(server: FeedServer, tmp_path: Path,
                                                             with_links: bool) -> None:
    server.routes["/numbered"] = Route(numbered(REUSED_FIRST, with_links))
    _, first = scrape_once(server, "/numbered", tmp_path)
    server.routes["/numbered"] = Route(numbered(REUSED_NEXT, with_links))
    _, second = scrape_once(server, "/numbered", tmp_path)
    _, third = scrape_once(server, "/numbered", tmp_path)
    assert [r["headline"] for r in first] == ["Fabrikam raises dividend", "Litware cuts forecast"]
    assert [r["headline"] for r in second] == ["Tailspin recalls jets"]  # was skipped; Litware was re-sent
    assert third == []
    assert len({r["id"] for r in first + second}) == 3


def test_a_one_item_feed_whose_guid_is_the_site_root_gives_every_story(server: FeedServer, tmp_path: Path) -> None:
    headlines = []
    for title in ("Fabrikam raises dividend", "Tailspin recalls jets", "Tailspin recalls jets"):
        server.routes["/root"] = Route(rss(f"<title>{title}</title><guid>https://news.example/</guid>"))
        headlines += [r["headline"] for r in scrape_once(server, "/root", tmp_path)[1]]
    assert headlines == ["Fabrikam raises dividend", "Tailspin recalls jets"]


def test_a_store_from_before_fingerprints_loads_and_re_sends_nothing(server: FeedServer, tmp_path: Path) -> None:
    old_store(tmp_path / "seen.sqlite", server.url("/numbered"), ["1", "2"])  # what the old version kept
    server.routes["/numbered"] = Route(numbered(REUSED_FIRST))
    code, again = scrape_once(server, "/numbered", tmp_path)
    assert (code, again) == (0, [])
    server.routes["/numbered"] = Route(numbered(REUSED_NEXT))  # its keys now know their stories
    _, after = scrape_once(server, "/numbered", tmp_path)
    assert [r["headline"] for r in after] == ["Tailspin recalls jets"]

    # a guid that is a URL was kept as written; it is normalised as a link is now, and still found
    guid = "https://news.example/Contoso-Deal?utm_source=rss"
    old_store(tmp_path / "permalinks.sqlite", server.url("/permalinks"), [guid])
    server.routes["/permalinks"] = Route(rss(f"<title>Contoso agrees deal</title><guid>{guid}</guid>"))
    out = tmp_path / "permalinks.jsonl"
    main(["scrape", "--feed", server.url("/permalinks"), "--once", "--store", str(tmp_path / "permalinks.sqlite"),
          "-o", str(out)])
    assert out.read_text() == ""


def test_a_headline_edited_under_its_guid_and_link_is_not_sent_again(server: FeedServer, tmp_path: Path) -> None:
    # Wires update a story in place (a corrected figure, "UPDATE 1"): a second copy would count its
    # news twice in the monitor's windows. A new title under a guid with no page is a new story.
    item = '<title>{}</title><guid isPermaLink="false">{}</guid>{}'
    page = "<link>https://news.example/fabrikam-outage</link>"
    server.routes["/edits"] = Route(rss(item.format("Fabrikam outage hits 2,000 clients", "f-1", page),
                                        item.format("Litware weighs sale", "l-1", "")))
    _, first = scrape_once(server, "/edits", tmp_path)
    server.routes["/edits"] = Route(rss(item.format("Fabrikam outage hits 20,000 clients", "f-1", page),
                                        item.format("Litware agrees sale to Contoso", "l-1", "")))
    _, second = scrape_once(server, "/edits", tmp_path)
    assert [r["headline"] for r in first] == ["Fabrikam outage hits 2,000 clients", "Litware weighs sale"]
    assert [r["headline"] for r in second] == ["Litware agrees sale to Contoso"]
    assert second[0]["id"] != first[1]["id"]


def test_a_guid_never_seen_is_a_new_story_unless_its_title_and_date_were_sent(server: FeedServer, tmp_path: Path) -> None:
    # A live page every item links to, a daily briefing with one title and no date, and a daily wrap at
    # one page under each day's date: each item has a fresh guid, and each was lost as "already sent"
    # when a shared link or title key was looked up before the guid. Two notices of one title and
    # time, each with a guid and a page of its own (two companies' trading halts), are two stories.
    live = '<title>{}</title><guid isPermaLink="false">{}</guid><link>https://news.example/live/markets</link>'
    briefing = '<title>Morning briefing</title><guid isPermaLink="false">{0}</guid><link>https://news.example/{0}</link>'
    wrap = ('<title>Daily market wrap</title><guid isPermaLink="false">{0}</guid><link>https://news.example/wrap</link>'
            '<pubDate>{1} Nov 2026 21:00:00 GMT</pubDate>')
    halt = ('<title>Trading halt</title><guid isPermaLink="false">{0}</guid>'
            '<link>https://news.example/{0}</link><pubDate>Mon, 30 Nov 2026 09:30:00 GMT</pubDate>')
    server.routes["/live"] = Route(rss(live.format("Stocks open higher", "l-1"), briefing.format("b-1"),
                                       wrap.format("w-1", "29")))
    _, first = scrape_once(server, "/live", tmp_path)
    server.routes["/live"] = Route(rss(live.format("Oil jumps 5%", "l-2"), briefing.format("b-2"),
                                       wrap.format("w-2", "30"), halt.format("fabrikam-h"), halt.format("litware-h")))
    _, second = scrape_once(server, "/live", tmp_path)
    assert [r["headline"] for r in first] == ["Stocks open higher", "Morning briefing", "Daily market wrap"]
    assert [r["headline"] for r in second] == ["Oil jumps 5%", "Morning briefing", "Daily market wrap",
                                               "Trading halt", "Trading halt"]
    assert len({r["id"] for r in first + second}) == 8
    _, third = scrape_once(server, "/live", tmp_path)
    assert third == []


def test_a_story_whose_link_changes_under_its_title_and_date_is_sent_once(server: FeedServer, tmp_path: Path) -> None:
    # a signed link that rotates every poll, and a site moving from http to https: the whole feed
    # was sent again on every poll
    item = ('<title>Contoso names new chief executive</title><link>{}</link>'
            '<pubDate>Mon, 30 Nov 2026 08:00:00 GMT</pubDate>')
    sent = []
    for link in ("http://news.example/contoso-ceo?Expires=1&amp;Signature=a",
                 "https://news.example/contoso-ceo?Expires=2&amp;Signature=b",
                 "https://news.example/contoso-ceo?Expires=3&amp;Signature=c"):
        server.routes["/signed"] = Route(rss(item.format(link)))
        sent += scrape_once(server, "/signed", tmp_path)[1]
    assert [r["headline"] for r in sent] == ["Contoso names new chief executive"]


def test_items_without_a_guid_at_one_section_page_are_each_a_story(server: FeedServer, tmp_path: Path) -> None:
    # a new title at a link seen before was taken for an edit of the story sent there, and lost
    item = "<title>{}</title><link>https://news.example/markets</link>"
    sent = []
    for title in ("Fabrikam shares slide", "Litware wins contract", "Litware wins contract"):
        server.routes["/section"] = Route(rss(item.format(title)))
        sent += scrape_once(server, "/section", tmp_path)[1]
    assert [r["headline"] for r in sent] == ["Fabrikam shares slide", "Litware wins contract"]


def test_the_same_story_in_two_feeds_of_a_publisher_has_one_id(server: FeedServer, tmp_path: Path) -> None:
    for section in ("markets", "top"):
        server.routes[f"/rss/{section}"] = Route(rss(
            "<title>Contoso agrees to buy Fabrikam</title>"
            f"<link>https://news.example/2026/11/30/contoso-fabrikam?utm_source={section}</link>",
            f'<title>{section} story one</title><guid isPermaLink="false">1</guid>',  # a guid per feed
            f"<title>{section} brief</title><link>https://news.example/</link>",  # the site's root
        ))
    _, markets = scrape_once(server, "/rss/markets", tmp_path)
    _, top = scrape_once(server, "/rss/top", tmp_path)
    assert [r["headline"] for r in markets + top] == [
        "Contoso agrees to buy Fabrikam", "markets story one", "markets brief",
        "Contoso agrees to buy Fabrikam", "top story one", "top brief"]
    assert markets[0]["id"] == top[0]["id"]  # classify scores and counts it once
    assert markets[1]["id"] != top[1]["id"] and markets[2]["id"] != top[2]["id"]


# feedparser answers `updated` with the pubDate (and a DeprecationWarning): the date was named twice.
@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_entries_dated_with_the_receive_time_are_named_once_and_counted(
        server: FeedServer, client: httpx.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server.routes["/zones"] = Route(rss(
        "<title>Northwind beats</title><guid>z-1</guid><pubDate>Mon, 30 Nov 2026 09:30:00 ET</pubDate>",
        "<title>Contoso misses</title><guid>z-2</guid><pubDate>yesterday</pubDate>",
        "<title>Fabrikam holds</title><guid>z-3</guid><pubDate>Mon, 30 Nov 2099 09:30:00 GMT</pubDate>",
        "<title>Litware rises</title><guid>z-4</guid><pubDate>Mon, 30 Nov 2026 09:30:00 EST</pubDate>",
        "<title>Tailspin flat</title><guid>z-5</guid>",  # no date given: nothing stands in for one
    ))
    caplog.set_level(logging.INFO, logger="streams.sources.scrape")
    with SeenStore(tmp_path / "seen.sqlite") as store:
        result = poll_once(client, server.url("/zones"), store, lambda r: None, now=NOW)
        scrape.log_result(result)
        again = poll_once(client, server.url("/zones"), store, lambda r: None, now=NOW)
    assert (result.new, result.undated, again.undated) == (5, 3, 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [(f"{server.url('/zones')}: 3 new entries sent with the receive time for a date that cannot "
                         "be used, the first 'Mon, 30 Nov 2026 09:30:00 ET': unknown time zone 'ET'")]
    assert f"{server.url('/zones')}: HTTP 200, 5 new (3 with the receive time for an unusable date), 0 skipped" in [
        r.getMessage() for r in caplog.records]
