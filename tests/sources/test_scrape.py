from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.cli import main as finsentry
from streams.sources import scrape
from streams.sources.scrape import Policy, SeenStore, backoff, poll_once
from tests.sources.feedserver import FeedServer, Route, fixture, poll


def test_rss_entries_become_news_raw_records(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/rss"] = Route(fixture("markets.rss"))
    result, emitted = poll(client, server.url("/rss"), tmp_path / "seen.sqlite")

    assert (result.status, result.new, result.skipped, result.error) == (200, 3, 1, None)
    first, second, third = emitted
    assert first["headline"] == "Acme Corp shares slide 8% after quarterly revenue misses estimates"
    assert first["body"] == "Shares of Acme Corp fell after the results."
    assert first["source"] == "Harbor Street Wire"
    assert first["url"] == "https://wire.example/2024/03/04/acme-slide"
    assert first["published_at"] == "2024-03-04T13:05:00+00:00"  # +0100 in the feed
    assert first["lang"] == "en-us"
    assert second["headline"] == "Bluewater Bank & Granite Financial agree merger"
    assert "body" not in second
    assert third["headline"] == "Fed holds rates steady, in line with expectations"
    assert "published_at" not in third  # the item has no date; none is invented
    assert len({r["id"] for r in emitted}) == 3 and all(r["id"].startswith("rss-") for r in emitted)


def test_atom_entries_become_news_raw_records(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/atom"] = Route(fixture("markets.atom"), content_type="application/atom+xml")
    result, emitted = poll(client, server.url("/atom"), tmp_path / "seen.sqlite")

    assert (result.new, result.skipped) == (2, 0)
    assert [r["headline"] for r in emitted] == [
        "Oil jumps 3% as supply cuts tighten the market",
        "Copperline Mining names new chief financial officer",
    ]
    assert emitted[0]["body"] == "Brent rose for a third day."
    assert emitted[0]["source"] == "Ledger Markets Desk"
    assert emitted[1]["published_at"] == "2024-03-05T12:15:00+00:00"


def test_feed_without_title_is_named_by_its_host(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    body = fixture("markets.rss").replace(b"<title>Harbor Street Wire</title>", b"")
    server.routes["/untitled"] = Route(body)
    _, emitted = poll(client, server.url("/untitled"), tmp_path / "seen.sqlite")
    assert {r["source"] for r in emitted} == {"127.0.0.1"}


def test_entries_are_emitted_once_across_restarts(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    store_path = tmp_path / "state" / "seen.sqlite"
    server.routes["/rss"] = Route(fixture("markets.rss"))  # no validators: the full feed every time
    first, _ = poll(client, server.url("/rss"), store_path)
    again, emitted_again = poll(client, server.url("/rss"), store_path)

    extra = b"<item><title>Acme names new CEO</title><guid>wire-2001</guid></item></channel>"
    server.routes["/rss"] = Route(fixture("markets.rss").replace(b"</channel>", extra))
    later, emitted_later = poll(client, server.url("/rss"), store_path)

    assert (first.new, again.new, again.skipped, later.new) == (3, 0, 4, 1)
    assert emitted_again == []
    assert [r["headline"] for r in emitted_later] == ["Acme names new CEO"]
    assert len(server.headers_for("/rss")) == 3  # every poll really fetched


def test_unchanged_feed_costs_a_304_and_emits_nothing(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    store_path = tmp_path / "seen.sqlite"
    stamp = "Mon, 04 Mar 2024 15:00:00 GMT"
    server.routes["/rss"] = Route(fixture("markets.rss"), etag='"v1"', last_modified=stamp)
    first, _ = poll(client, server.url("/rss"), store_path)
    second, emitted = poll(client, server.url("/rss"), store_path)  # a new store: validators survive restarts

    conditional = server.headers_for("/rss")[1]
    assert conditional["if-none-match"] == '"v1"'
    assert conditional["if-modified-since"] == stamp
    assert (first.new, second.status, second.new, second.skipped, second.error) == (3, 304, 0, 0, None)
    assert emitted == []
    assert second.next_poll_in == Policy().interval


def test_server_errors_back_off_and_recovery_resets(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    store_path = tmp_path / "seen.sqlite"
    policy = Policy(interval=10.0)
    server.routes["/flaky"] = Route(b"oops", status=500)
    delays = []
    for _ in range(4):
        result, emitted = poll(client, server.url("/flaky"), store_path, policy=policy, jitter=lambda: 0.5)
        assert result.status == 500 and "500" in (result.error or "") and emitted == []
        delays.append(result.next_poll_in)
    assert delays == [7.5, 15.0, 30.0, 60.0]  # doubling from the interval, half of each step jittered

    server.routes["/flaky"] = Route(fixture("markets.rss"))
    recovered, emitted = poll(client, server.url("/flaky"), store_path, policy=policy)
    assert (recovered.error, recovered.new, recovered.next_poll_in) == (None, 3, 10.0)
    with SeenStore(store_path) as store:
        assert store.state(server.url("/flaky")).failures == 0


def test_backoff_is_capped_and_jittered() -> None:
    policy = Policy(interval=60.0, backoff_cap=300.0)
    assert backoff(policy, 30, lambda: 1.0) == 300.0
    assert backoff(policy, 30, lambda: 0.0) == 150.0
    assert backoff(policy, 1, lambda: 0.0) == 30.0


def test_unreachable_feed_is_an_error_not_an_exception(client: httpx.Client, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with SeenStore(tmp_path / "seen.sqlite") as store:
        result = poll_once(client, f"http://127.0.0.1:{port}/rss", store, lambda r: None, now=0.0)
    assert result.status is None and "ConnectError" in (result.error or "")
    assert result.next_poll_in > 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/feed.xml", "gopher://x", "http:///nohost"])
def test_only_http_urls_are_polled(client: httpx.Client, tmp_path: Path, url: str) -> None:
    with SeenStore(tmp_path / "seen.sqlite") as store, pytest.raises(ValueError, match="only http:// and https://"):
        poll_once(client, url, store, lambda r: None, now=0.0)
    with pytest.raises(ValueError, match="refusing feed URL"):
        scrape.run([url], lambda r: None, tmp_path / "seen.sqlite", 60.0, max_rounds=1)


@pytest.mark.parametrize("declare_length", [True, False])
def test_oversized_body_is_refused(
    server: FeedServer, client: httpx.Client, tmp_path: Path, declare_length: bool
) -> None:
    limit = Policy().max_bytes
    items = b"<item><title>Filler</title><guid>g</guid></item>" * (limit // 40)
    body = fixture("markets.rss").replace(b"</channel>", items + b"</channel>")
    assert len(body) > limit
    server.routes["/huge"] = Route(body, declare_length=declare_length)
    result, emitted = poll(client, server.url("/huge"), tmp_path / "seen.sqlite")
    assert "byte limit" in (result.error or "")
    assert emitted == []


def test_slow_body_is_cut_off(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    body, drip = fixture("markets.rss"), 0.05  # a slow server: the whole body takes over a minute
    server.routes["/slow"] = Route(body, drip_seconds=drip, declare_length=False)
    began = time.monotonic()
    result, emitted = poll(client, server.url("/slow"), tmp_path / "seen.sqlite", policy=Policy(max_seconds=0.5))
    assert "longer than 0.5s" in (result.error or "")
    # Cut off, not read to the end: well before the body could have arrived, however busy the machine.
    assert emitted == [] and time.monotonic() - began < len(body) * drip / 2


def test_failed_emit_leaves_entries_for_the_next_poll(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/rss"] = Route(fixture("markets.rss"), etag='"v1"')
    store_path = tmp_path / "seen.sqlite"
    sent: list[str] = []

    def flaky_emit(record: dict[str, Any]) -> None:
        if len(sent) == 1:
            raise RuntimeError("broker went away")
        sent.append(record["headline"])

    with SeenStore(store_path) as store, pytest.raises(RuntimeError):
        poll_once(client, server.url("/rss"), store, flaky_emit, now=0.0)
    result, emitted = poll(client, server.url("/rss"), store_path)
    assert "if-none-match" not in server.headers_for("/rss")[1]  # validators were not saved
    # Nothing of the failed poll was marked: the record emitted before the failure may never have
    # reached the broker, so it is sent again (same id: classify drops it if it had arrived).
    assert result.new == 3 and sent[0] in [r["headline"] for r in emitted]


def test_run_polls_each_feed_then_sleeps_until_due(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/rss"] = Route(fixture("markets.rss"))
    server.routes["/atom"] = Route(fixture("markets.atom"))
    emitted: list[dict[str, Any]] = []
    sleeps: list[float] = []
    feeds = [server.url("/rss"), server.url("/atom")]
    scrape.run(feeds, emitted.append, tmp_path / "seen.sqlite", 30.0, max_rounds=2, sleep=sleeps.append)
    assert len(emitted) == 5
    assert len(sleeps) == 1 and 29.0 < sleeps[0] <= 30.0
    assert len(server.requests) == 2  # the second wake-up came early (sleep is a stub): nothing was due


def cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="finsentry")
    scrape.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_a_feed_of_social_posts_is_sent_with_its_style(server: FeedServer, tmp_path: Path) -> None:
    """`--style social` marks every story of the run's feeds, so the model reads them as posts; a
    newswire feed's stories say nothing (newswire is the default)."""
    server.routes["/rss"] = Route(fixture("markets.rss"))
    for style, expected in (("Social", "social"), ("newswire", None)):
        out, store = tmp_path / f"{style}.jsonl", tmp_path / f"{style}.sqlite"
        argv = ["scrape", "--feed", server.url("/rss"), "--once", "--store", str(store), "-o", str(out), "--style", style]
        assert cli(argv).handler(cli(argv)) == 0
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(records) == 3 and {r.get("style") for r in records} == {expected}


def test_cli_once_writes_new_entries_and_exits(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/rss"] = Route(fixture("markets.rss"))
    out, store = tmp_path / "out.jsonl", tmp_path / "seen.sqlite"
    argv = ["scrape", "--feed", server.url("/rss"), "--once", "--store", str(store), "-o", str(out)]
    assert cli(argv).handler(cli(argv)) == 0
    assert [json.loads(line)["headline"][:4] for line in out.read_text().splitlines()] == ["Acme", "Blue", "Fed "]
    assert cli(argv).handler(cli(argv)) == 0
    assert out.read_text() == ""

    server.routes["/rss"] = Route(b"", status=503)
    assert cli(argv).handler(cli(argv)) == 1  # --once reports a failed feed in its exit code


def test_cli_refuses_non_http_feed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(["scrape", "--feed", "file:///etc/passwd", "--once"])
    assert exit_info.value.code == 2
    assert "refusing feed URL 'file:///etc/passwd'" in capsys.readouterr().err


def test_a_second_scraper_on_the_same_store_is_refused_in_one_line(
        server: FeedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two scrapers on one store (a cron `--once` overlapping a running one) each sent what the other
    had not marked yet, and one stopped on sqlite's 5 s lock wait with a bare "database is locked"."""
    server.routes["/rss"] = Route(fixture("markets.rss"))
    out, store = tmp_path / "out.jsonl", tmp_path / "seen.sqlite"
    argv = ["scrape", "--feed", server.url("/rss"), "--once", "--store", str(store), "-o", str(out)]
    with SeenStore(store):  # the running scraper
        assert finsentry(argv) == 2
        err = capsys.readouterr().err.strip()
        assert f"scrape store {store}: in use by another `finsentry scrape`" in err and "--store" in err
        assert len(err.splitlines()) == 1 and (not out.exists() or out.read_text() == "")  # nothing sent
    assert finsentry(argv) == 0  # released when the other one stops
    assert len(out.read_text().splitlines()) == 3
