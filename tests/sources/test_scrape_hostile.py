"""Issue #17's scraper rows, each against feeds served by the local test server (127.0.0.1 only):
a body that names a local file, a /dev/zero body, too many items, headers sent slowly, a redirect
to another host, one bad feed among good ones (a crash, a 1.2 MB title, `&#xD800;`), the store's
file mode, and credentials in logged URLs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.sources import scrape
from streams.sources.scrape import Policy, PollResult, SeenStore
from tests.sources.feedserver import FeedServer, Route, poll, serve


def rss(*titles: str, channel: str = "Wire") -> bytes:
    items = "".join(f"<item><title>{t}</title><guid>g-{n}</guid></item>" for n, t in enumerate(titles))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{channel}</title>'
            f"{items}</channel></rss>").encode()


def test_a_body_that_names_a_local_file_is_parsed_as_text_not_opened(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    secret = tmp_path / "local-secret.xml"
    secret.write_bytes(rss("LOCAL SECRET the scraper must never read"))
    server.routes["/path"] = Route(str(secret).encode(), content_type="text/plain")
    result, emitted = poll(client, server.url("/path"), tmp_path / "seen.sqlite")
    assert emitted == []  # the old code sent the file's item as news
    assert "not a readable RSS or Atom feed" in (result.error or "")


def test_a_body_that_names_dev_zero_is_not_opened(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/zero"] = Route(b"/dev/zero", content_type="text/plain")
    result, emitted = poll(client, server.url("/zero"), tmp_path / "seen.sqlite")
    assert emitted == [] and "not a readable RSS or Atom feed" in (result.error or "")


def test_an_endless_body_is_cut_at_the_byte_cap(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    # 256 MiB of zeros without a Content-Length: read at most --max-bytes of it.
    server.routes["/endless"] = Route(b"<rss>", declare_length=False, endless_bytes=256 * 1024 * 1024)
    result, emitted = poll(client, server.url("/endless"), tmp_path / "seen.sqlite", policy=Policy(max_bytes=1 << 20))
    assert emitted == [] and "over the 1048576-byte limit" in (result.error or "")


def test_items_per_poll_are_capped(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/many"] = Route(rss(*(f"Story number {n}" for n in range(1200))))
    result, emitted = poll(client, server.url("/many"), tmp_path / "seen.sqlite", policy=Policy(max_items=500))
    assert (result.error, result.new, result.skips) == (None, 500, {"over_limit": 700})
    assert emitted[0]["headline"] == "Story number 0" and emitted[-1]["headline"] == "Story number 499"
    assert Policy().max_items == 500
    # the rest wait for the next polls (they once never came: the same first 500 were read each time)
    for expected_new, expected_last in ((500, "Story number 999"), (200, "Story number 1199")):
        result, emitted = poll(client, server.url("/many"), tmp_path / "seen.sqlite", policy=Policy(max_items=500))
        assert (result.error, result.new) == (None, expected_new) and emitted[-1]["headline"] == expected_last


def test_slow_headers_are_cut_off_by_the_total_time_cap(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    # About 740 header bytes at 0.05 s each: 37 s of headers, each byte well within httpx's read timeout.
    server.routes["/slow-headers"] = Route(rss("Slow"), header_drip_seconds=0.05)
    began = time.monotonic()
    result, emitted = poll(client, server.url("/slow-headers"), tmp_path / "seen.sqlite", policy=Policy(max_seconds=1.0))
    assert emitted == [] and "longer than 1s" in (result.error or "")
    assert time.monotonic() - began < 15  # the cap, not the drip, ended it (generous for a busy machine)


def test_a_redirect_to_another_host_is_refused(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    port = httpx.URL(server.base_url).port
    server.routes["/internal"] = Route(rss("Internal page content"))
    server.routes["/moved"] = Route(status=302, location=f"http://localhost:{port}/internal")
    result, emitted = poll(client, server.url("/moved"), tmp_path / "seen.sqlite")
    assert emitted == [] and result.status == 302
    assert "refused" in (result.error or "") and "another host" in (result.error or "")
    assert server.headers_for("/internal") == []  # never fetched


def test_a_redirect_to_another_port_of_the_same_host_is_refused(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    with serve() as other:
        other.routes["/admin"] = Route(rss("Internal service"))
        server.routes["/moved"] = Route(status=301, location=other.url("/admin"))
        result, emitted = poll(client, server.url("/moved"), tmp_path / "seen.sqlite")
        assert emitted == [] and "refused" in (result.error or "") and other.requests == []


def test_a_redirect_on_the_same_host_or_to_an_allowed_host_is_followed(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    port = httpx.URL(server.base_url).port
    server.routes["/rss"] = Route(rss("Same host story"))
    server.routes["/old"] = Route(status=301, location="/rss")
    result, emitted = poll(client, server.url("/old"), tmp_path / "seen.sqlite")
    assert (result.error, [r["headline"] for r in emitted]) == (None, ["Same host story"])

    server.routes["/cdn"] = Route(status=302, location=f"http://localhost:{port}/rss")
    result, emitted = poll(client, server.url("/cdn"), tmp_path / "other.sqlite", allowed_hosts=frozenset({"localhost"}))
    assert (result.error, [r["headline"] for r in emitted]) == (None, ["Same host story"])


def test_a_redirect_loop_ends(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/a"] = Route(status=302, location="/b")
    server.routes["/b"] = Route(status=302, location="/a")
    result, emitted = poll(client, server.url("/a"), tmp_path / "seen.sqlite")
    assert emitted == [] and "more than 5 redirects" in (result.error or "")
    assert len(server.requests) == 6


def test_a_lone_surrogate_charref_costs_nothing(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/surrogate"] = Route(rss("Acme &#xD800; falls", "Bluewater &#55296; rises", "Fed holds"))
    result, emitted = poll(client, server.url("/surrogate"), tmp_path / "seen.sqlite")
    assert result.error is None
    assert [r["headline"] for r in emitted] == ["Acme \ufffd falls", "Bluewater \ufffd rises", "Fed holds"]


def test_a_charref_too_long_for_a_number_costs_nothing(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    # feedparser's chr() raised OverflowError on the first: the feed's every item was lost, each poll
    server.routes["/long-ref"] = Route(rss("Acme &#99999999999999999999; falls", "Bluewater &#x" + "f" * 40 + "; rises",
                                           "Fed &#" + "9" * 5000 + "; holds", "Contoso &#0000000065; A"))
    result, emitted = poll(client, server.url("/long-ref"), tmp_path / "seen.sqlite")
    assert result.error is None
    assert [r["headline"] for r in emitted] == ["Acme \ufffd falls", "Bluewater \ufffd rises", "Fed \ufffd holds",
                                                "Contoso A A"]


def test_a_huge_feed_title_does_not_sink_its_stories(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/huge-title"] = Route(rss("Acme falls", "x" * 1_200_000, channel="Wire " * 240_000))
    result, emitted = poll(client, server.url("/huge-title"), tmp_path / "seen.sqlite")
    assert result.error is None and [r["headline"][:10] for r in emitted] == ["Acme falls", "x" * 10]
    assert all(len(r["source"]) <= scrape.MAX_SOURCE_CHARS for r in emitted)
    assert len(emitted[1]["headline"]) <= 1000 and emitted[1]["truncated"] is True


def cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="finsentry")
    scrape.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def run_cli(argv: list[str]) -> int:
    args = cli(argv)
    return args.handler(args)


def test_one_bad_feed_never_stops_the_others(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_parse = scrape.feedparser.parse

    def parse(source: Any, **kwargs: Any) -> Any:  # a feedparser bug that only this feed's body triggers
        data = source.getvalue() if hasattr(source, "getvalue") else source
        if b"CRASH" in data:
            raise RecursionError("maximum recursion depth exceeded")
        return real_parse(source, **kwargs)

    monkeypatch.setattr(scrape.feedparser, "parse", parse)
    server.routes["/crash"] = Route(rss("CRASH"))
    server.routes["/surrogate"] = Route(rss("Acme &#xD800; falls"))
    server.routes["/huge-title"] = Route(rss("Granite up", channel="T" * 1_200_000))
    server.routes["/good"] = Route(rss("Fed holds"))
    out, store = tmp_path / "out.jsonl", tmp_path / "seen.sqlite"
    feeds = [server.url(p) for p in ("/crash", "/surrogate", "/huge-title", "/good")]
    argv = ["scrape", "--once", "--store", str(store), "-o", str(out)] + [a for f in feeds for a in ("--feed", f)]

    assert run_cli(argv) == 1  # one feed could not be read: reported in the exit status, as documented
    assert sorted(json.loads(line)["headline"] for line in out.read_text().splitlines()) == [
        "Acme \ufffd falls", "Fed holds", "Granite up"]
    assert len(server.requests) == 4

    results: list[PollResult] = []
    scrape.run(feeds, lambda r: None, store, 60.0, max_rounds=1, on_result=results.append)
    crash = results[0]
    assert crash.url == feeds[0] and "RecursionError" in (crash.error or "") and crash.next_poll_in > 0
    assert [r.error for r in results[1:]] == [None, None, None]

    del server.routes["/crash"]  # without the broken feed, the others alone: exit 0
    assert run_cli(argv[:6] + [a for f in feeds[1:] for a in ("--feed", f)]) == 0


def test_a_failing_sink_still_stops_the_run(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/good"] = Route(rss("Fed holds"))

    def emit(record: dict[str, Any]) -> None:
        raise ConnectionError("broker went away")

    with pytest.raises(ConnectionError, match="broker went away"):
        scrape.run([server.url("/good")], emit, tmp_path / "seen.sqlite", 60.0, max_rounds=1)


def test_the_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with SeenStore(tmp_path / "state" / "seen.sqlite") as store:
            store.add("http://feed/", ["k"], "story")
        loose = tmp_path / "loose.sqlite"
        loose.touch(mode=0o644)
        with SeenStore(loose):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state" / "seen.sqlite").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_logged_urls_carry_no_credentials(
    server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/feed?token=s3cret-token&cat=markets"] = Route(b"", status=503)
    port = httpx.URL(server.base_url).port
    url = f"http://alice:pa55w0rd@127.0.0.1:{port}/feed?token=s3cret-token&cat=markets"
    out = tmp_path / "out.jsonl"
    with caplog.at_level(logging.DEBUG):
        assert run_cli(["scrape", "--once", "--feed", url, "--store", str(tmp_path / "s.sqlite"), "-o", str(out)]) == 1
    logged = caplog.text
    assert "503" in logged and "cat=markets" in logged
    assert "pa55w0rd" not in logged and "s3cret-token" not in logged
    assert scrape.redact_url(url) == f"http://***@127.0.0.1:{port}/feed?token=***&cat=markets"
    assert scrape.redact_url("https://x.example/rss?api_key=k&X-Amz-Signature=s&page=2") == (
        "https://x.example/rss?api_key=***&X-Amz-Signature=***&page=2")


def test_refused_urls_are_reported_without_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli(["scrape", "--feed", "ftp://bob:hunter2@files.example/feed.xml", "--once"])
    assert "hunter2" not in capsys.readouterr().err


def test_allow_redirect_names_a_polled_feed(tmp_path: Path) -> None:
    from streams.usage import UsageError

    with pytest.raises(UsageError, match="not one of the --feed URLs"):
        run_cli(["scrape", "--once", "--feed", "http://127.0.0.1:9/rss", "--allow-redirect", "http://other/rss", "cdn",
                 "--store", str(tmp_path / "s.sqlite"), "-o", str(tmp_path / "o.jsonl")])


def test_a_bug_in_one_feeds_poll_is_that_feeds_error(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_identities = scrape.entry_identities

    def entry_identities(feed_url: str, entries: list[dict[str, Any]]) -> list[scrape.Identity]:
        if feed_url.endswith("/bug"):
            raise KeyError("a bug this feed's items trigger")
        return real_identities(feed_url, entries)

    monkeypatch.setattr(scrape, "entry_identities", entry_identities)
    server.routes["/bug"] = Route(rss("Anything"))
    server.routes["/good"] = Route(rss("Fed holds"))
    emitted: list[dict[str, Any]] = []
    results: list[PollResult] = []
    feeds = [server.url("/bug"), server.url("/good")]
    scrape.run(feeds, emitted.append, tmp_path / "seen.sqlite", 60.0, max_rounds=1, on_result=results.append)
    assert [r["headline"] for r in emitted] == ["Fed holds"]
    assert "poll failed: KeyError" in (results[0].error or "") and results[0].next_poll_in > 0
    assert results[1].error is None
