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
from tests.sources.feedserver import FeedServer, Route

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
    with SeenStore(tmp_path / "old.sqlite") as store:
        store.add(server.url("/utm"), link.replace("&amp;", "&").replace("utm_source=rss", "utm_source=rss2")
                  + "&utm_campaign=jun")
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
        "<description>No title at all</description><guid>m-3</guid>",
        "<title>Globex falls</title><guid>m-4</guid>",
    ))
    caplog.set_level(logging.WARNING)
    with SeenStore(tmp_path / "seen.sqlite") as store:
        first = poll_once(client, server.url("/mixed"), store, lambda r: None, now=NOW)
        second = poll_once(client, server.url("/mixed"), store, lambda r: None, now=NOW)
    assert (first.new, first.skips) == (2, {"duplicate": 1, "unusable": 1})
    assert (second.new, second.skips) == (0, {"already_sent": 2, "duplicate": 1, "unusable": 1})
    assert "No title at all" in caplog.text


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
    assert "over the 2048-byte limit (raise it with --max-bytes); retrying in 60s" in caplog.text
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
