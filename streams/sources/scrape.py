"""Poll RSS and Atom feeds and turn new entries into `news.raw` records.

A polite and bounded poller: conditional GETs so an unchanged feed costs one 304, a de-duplication
store on disk so a restart never re-sends what was sent, per-feed exponential backoff with jitter
so a failing server is not hammered (the failure count is stored, so backoff survives restarts too),
and caps on response size and time so one hostile feed cannot stall or exhaust the poller.
Records are emitted before their entry is marked seen: a crash in between re-sends (at-least-once),
and the record id, derived from feed URL and entry key, lets consumers drop the repeat.

An entry's key (its identity) is the first usable of its guid, its link, or a hash of the feed,
its title and its raw date: a guid or link that repeats within one poll for different stories
(`<guid isPermaLink="false">N/A</guid>` on every item) identifies nothing. Every record runs through
ingest's validation before it is emitted and marked seen, so nothing is counted as sent that
ingest would reject; an over-long body is cut at a word boundary and marked `truncated`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import feedparser
import httpx

from streams.sources.kafka_sink import SinkError, encode_value
from streams.sources.output import add_output_arguments, open_sink
from streams.usage import UsageError
from streams.validation import Rejection, fit_record, normalise_url, parse_time, validate

log = logging.getLogger(__name__)

USER_AGENT = "finsentry-scrape/0.1"


@dataclass(frozen=True)
class Policy:
    interval: float = 60.0  # seconds between polls of a healthy feed; also the first backoff step
    max_bytes: int = 5 * 1024 * 1024
    max_seconds: float = 30.0  # whole response, however slowly it trickles in
    backoff_cap: float = 3600.0


@dataclass(frozen=True)
class FeedState:
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0  # consecutive failed polls


# guids that feeds put on every item: never an identity, even on a feed that shows one item at a time.
PLACEHOLDER_GUIDS = frozenset({"n/a", "na", "none", "null", "undefined", "0", "-", "guid", "id"})
# Why an entry was not emitted; each is counted per poll.
SKIP_REASONS = ("already_sent", "duplicate", "unusable", "rejected")


@dataclass
class PollResult:
    url: str
    status: int | None  # HTTP status of the final response; None when there was none
    new: int  # records emitted
    skipped: int  # entries not emitted, all reasons together (skips has them by reason)
    error: str | None
    next_poll_in: float
    skips: dict[str, int] | None = None  # SKIP_REASONS -> count; only reasons that occurred


class FeedError(Exception):
    """A poll that failed in a way worth retrying later (with backoff, unless `backoff` is False:
    a feed over --max-bytes will be as big next time, so it is reported each poll at the normal interval)."""

    def __init__(self, message: str, status: int | None = None, *, backoff: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.backoff = backoff


def check_feed_url(url: str) -> str:
    """Only http(s): a feed URL must never become a way to read local files or other services' schemes."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"refusing feed URL {url!r}: only http:// and https:// URLs with a host can be polled")
    return url


class SeenStore:
    """Entry keys already emitted and each feed's validators and failure count, in one sqlite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit: each add is durable at once
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS seen (feed TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL,
                                             PRIMARY KEY (feed, key));
            CREATE TABLE IF NOT EXISTS feeds (feed TEXT PRIMARY KEY, etag TEXT, last_modified TEXT,
                                              failures INTEGER NOT NULL, polled_at REAL NOT NULL);
            """
        )

    def seen(self, feed: str, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM seen WHERE feed = ? AND key = ?", (feed, key)).fetchone() is not None

    def add(self, feed: str, key: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (feed, key, time.time()))

    def state(self, feed: str) -> FeedState:
        row = self._db.execute("SELECT etag, last_modified, failures FROM feeds WHERE feed = ?", (feed,)).fetchone()
        return FeedState(*row) if row else FeedState()

    def set_state(self, feed: str, state: FeedState, polled_at: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?, ?)",
            (feed, state.etag, state.last_modified, state.failures, polled_at),
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.parts.append(" ")  # <br>, <p>: words on either side must not run together


def strip_html(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return " ".join("".join(parser.parts).split())


def entry_date(entry: dict[str, Any]) -> str | None:
    """The entry's date as ISO 8601, read from the feed's raw string; None when there is none or it cannot
    be read exactly. feedparser's parsed dates are not used: it accepts a prefix (`2026/11/27 15:07:41`
    became 1 November) and ignores `PM` (`2:17:57 PM CET` became 02:17:57 CET)."""
    for name in ("published", "updated", "created"):
        raw = entry.get(name)
        if isinstance(raw, str) and raw.strip():
            try:
                return parse_time(raw).astimezone(UTC).isoformat()
            except (ValueError, OverflowError, OSError):
                log.info("entry %r: date %r is not ISO 8601 or RFC 2822; ingest will use the receive time",
                         entry.get("title", "")[:80], raw[:60])
                return None
    return None


def entry_to_record(feed_url: str, feed: dict[str, Any], entry: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A news.raw record cut to ingest's limits, or None for an entry without a usable title."""
    headline = strip_html(entry.get("title", ""))
    if not headline:
        return None
    digest = hashlib.sha256(f"{feed_url}\n{key}".encode()).hexdigest()[:24]
    record: dict[str, Any] = {
        "id": f"rss-{digest}",
        "source": strip_html(feed.get("title", "")) or urlsplit(feed_url).hostname,
        "headline": headline,
    }
    body = strip_html(entry.get("summary", ""))
    if body and body != headline:
        record["body"] = body
    link = entry.get("link")
    if isinstance(link, str) and link.strip():
        try:  # feedparser makes a link of a guid without isPermaLink="false" (<guid>12345</guid>)
            record["url"] = normalise_url(link)
        except ValueError:
            log.info("entry %r: link %r is not an http(s) URL; sent without one", headline[:80], link[:100])
    published = entry_date(entry)
    if published:
        record["published_at"] = published
    if feed.get("language"):
        record["lang"] = feed["language"]
    return fit_record(record)


def entry_keys(feed_url: str, entries: list[dict[str, Any]]) -> list[str | None]:
    """Each entry's identity: its guid, else its link, else a hash of feed, title and raw date; None when
    it has no title and no identity. A guid (or link) shared within this poll by entries with different
    titles or links is not an identity and is passed over for the next candidate, as is a placeholder
    guid (N/A, none, null, ...) even when it appears once."""

    def story(entry: dict[str, Any]) -> tuple[str, str]:
        return (entry.get("title") or "", entry.get("link") or "")

    claims: dict[tuple[str, str], set[tuple[str, str]]] = {}
    def candidate(entry: dict[str, Any], kind: str) -> str | None:
        value = entry.get(kind)
        if not isinstance(value, str) or not value.strip():
            return None
        return None if kind == "id" and value.strip().lower() in PLACEHOLDER_GUIDS else value

    for entry in entries:
        for kind in ("id", "link"):
            value = candidate(entry, kind)
            if value is not None:
                claims.setdefault((kind, value), set()).add(story(entry) if kind == "id" else story(entry)[:1])
    keys: list[str | None] = []
    for entry in entries:
        key = None
        for kind in ("id", "link"):
            value = candidate(entry, kind)
            if value is not None and len(claims[(kind, value)]) == 1:
                key = value
                break
        if key is None and (entry.get("title") or "").strip():
            raw_date = entry.get("published") or entry.get("updated") or ""
            digest = hashlib.sha256(f"{feed_url}\x1f{entry['title']}\x1f{raw_date}".encode()).hexdigest()[:32]
            key = f"hash:{digest}"
        keys.append(key)
    return keys


def _fetch(client: httpx.Client, url: str, headers: dict[str, str], policy: Policy) -> tuple[httpx.Response, bytes]:
    """The closed response and its body, or FeedError; the body is read in chunks to enforce the caps."""
    deadline = time.monotonic() + policy.max_seconds
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                return response, b""
            if not response.is_success:
                raise FeedError(f"HTTP {response.status_code} {response.reason_phrase}", response.status_code)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > policy.max_bytes:
                raise FeedError(f"body of {declared} bytes is over the {policy.max_bytes}-byte limit "
                                "(raise it with --max-bytes)", 200, backoff=False)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > policy.max_bytes:
                    raise FeedError(f"body is over the {policy.max_bytes}-byte limit (raise it with --max-bytes)",
                                    response.status_code, backoff=False)
                if time.monotonic() > deadline:
                    raise FeedError(f"body took longer than {policy.max_seconds:g}s", response.status_code)
                chunks.append(chunk)
            return response, b"".join(chunks)
    except httpx.HTTPError as exc:
        raise FeedError(f"{type(exc).__name__}: {exc}") from exc


def backoff(policy: Policy, failures: int, jitter: Callable[[], float] = random.random) -> float:
    """Doubling delay, capped, with "equal jitter": half fixed so it still grows, half random so feeds desynchronise."""
    delay = min(policy.backoff_cap, policy.interval * 2 ** (failures - 1))
    return delay / 2 + delay / 2 * jitter()


def poll_once(
    client: httpx.Client,
    url: str,
    store: SeenStore,
    emit: Callable[[dict[str, Any]], None],
    *,
    now: float,
    policy: Policy = Policy(),
    jitter: Callable[[], float] = random.random,
) -> PollResult:
    """One conditional GET of one feed. `now` (epoch seconds) is recorded as the feed's last poll.

    Raises ValueError for a non-http(s) URL; an exception from `emit` propagates and leaves the
    unsent entries unseen and the validators unchanged, so the next poll retries them.
    """
    check_feed_url(url)
    state = store.state(url)
    headers = {"User-Agent": USER_AGENT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        response, body = _fetch(client, url, headers, policy)
        if response.status_code == 304:
            store.set_state(url, replace(state, failures=0), now)
            return PollResult(url, 304, 0, 0, None, policy.interval)
        parsed = feedparser.parse(
            body,
            response_headers={
                "content-location": str(response.url),  # base for relative links
                "content-type": response.headers.get("content-type", ""),  # charset
            },
        )
        if parsed.bozo and not parsed.entries:
            raise FeedError(f"not a readable RSS or Atom feed: {parsed.get('bozo_exception')}", response.status_code)
    except FeedError as exc:
        if not exc.backoff:  # the same next time: say so every poll, at the normal pace
            store.set_state(url, replace(state, failures=0), now)
            return PollResult(url, exc.status, 0, 0, str(exc), policy.interval)
        failures = state.failures + 1
        store.set_state(url, replace(state, failures=failures), now)
        return PollResult(url, exc.status, 0, 0, str(exc), backoff(policy, failures, jitter))
    new = 0
    skips: dict[str, int] = {}
    this_poll: set[str] = set()
    for entry, key in zip(parsed.entries, entry_keys(url, parsed.entries), strict=True):
        record = entry_to_record(url, parsed.feed, entry, key) if key else None
        reason = None
        if record is None or key is None:
            reason = "unusable"
            log.warning("%s: entry %r skipped: no title", url, strip_html(entry.get("summary", ""))[:80])
        elif key in this_poll:
            reason = "duplicate"
        else:
            this_poll.add(key)
            if store.seen(url, key):
                reason = "already_sent"
            else:
                checked = validate(encode_value(record), now)  # what ingest will do with these very bytes
                if isinstance(checked, Rejection):
                    reason = "rejected"
                    log.warning("%s: entry %r skipped: ingest would reject it: %s: %s", url,
                                record["headline"][:80], checked.reason, checked.message)
        if reason:
            skips[reason] = skips.get(reason, 0) + 1
            continue
        emit(record)
        store.add(url, key)
        new += 1
    validators = FeedState(response.headers.get("etag"), response.headers.get("last-modified"), 0)
    store.set_state(url, validators, now)
    return PollResult(url, response.status_code, new, sum(skips.values()), None, policy.interval, skips)


def make_client(policy: Policy) -> httpx.Client:
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(min(policy.max_seconds, 10.0), connect=5.0),
        headers={"User-Agent": USER_AGENT},
    )


def log_result(result: PollResult) -> None:
    if result.error:
        log.warning("%s: %s; retrying in %.0fs", result.url, result.error, result.next_poll_in)
    else:
        why = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in (result.skips or {}).items())
        log.info("%s: HTTP %s, %d new, %d skipped%s", result.url, result.status, result.new, result.skipped,
                 f" ({why})" if why else "")


def run(
    feeds: list[str],
    emit: Callable[[dict[str, Any]], None],
    store_path: str | os.PathLike[str],
    interval: float,
    *,
    max_rounds: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_result: Callable[[PollResult], None] = log_result,
    max_bytes: int = Policy.max_bytes,
) -> None:
    """Poll every feed when it is due, forever or for `max_rounds` wake-ups (1 polls each feed once)."""
    for url in feeds:
        check_feed_url(url)
    policy = Policy(interval=interval, max_bytes=max_bytes)
    due = dict.fromkeys(feeds, 0.0)
    rounds = 0
    with SeenStore(store_path) as store, make_client(policy) as client:
        while True:
            now = time.time()
            for url in feeds:
                if due[url] <= now:
                    result = poll_once(client, url, store, emit, now=now, policy=policy)
                    on_result(result)
                    due[url] = now + result.next_poll_in
            rounds += 1
            if max_rounds is not None and rounds >= max_rounds:
                return
            sleep(max(0.0, min(due.values()) - time.time()))


# --- command line ------------------------------------------------------------------------------


def default_store_path() -> Path:
    state_home = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state_home) / "finsentry" / "scrape.sqlite"


def _feed_arg(text: str) -> str:
    try:
        return check_feed_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _interval_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 1")
    return value


def _bytes_arg(text: str) -> int:
    """A size in bytes, with an optional k, M or G (powers of 1024): 5M, 20000000."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)[iI]?[bB]?\s*", text)
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes >= 1, e.g. 5000000 or 20M")
    return int(match.group(1)) * 1024 ** " kmg".index(match.group(2).lower() or " ")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scrape",
        help="poll RSS/Atom feeds and send new entries to news.raw",
        description="Poll feeds with conditional GETs; entries already sent (kept in --store) are never sent again.",
    )
    parser.add_argument("--feed", type=_feed_arg, action="append", required=True, metavar="URL", help="repeatable")
    parser.add_argument("--interval", type=_interval_arg, default=60.0, help="seconds between polls (default 60)")
    parser.add_argument("--store", default=None, help=f"de-duplication database (default {default_store_path()})")
    parser.add_argument("--once", action="store_true", help="poll each feed once and exit")
    parser.add_argument("--max-bytes", type=_bytes_arg, default=Policy.max_bytes, metavar="SIZE",
                        help=f"largest feed response read, e.g. 20M (default {Policy.max_bytes // 1024 // 1024}M); "
                             "a bigger feed is reported each poll and not read")
    add_output_arguments(parser, kafka_by_default=True)
    parser.set_defaults(handler=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is ours; httpx would add another
    errors = 0

    def note(result: PollResult) -> None:
        nonlocal errors
        log_result(result)
        errors += result.error is not None

    try:
        with open_sink(args) as sink:
            run(
                list(dict.fromkeys(args.feed)),
                sink.send,
                args.store or default_store_path(),
                args.interval,
                max_rounds=1 if args.once else None,
                on_result=note,
                max_bytes=args.max_bytes,
            )
    except SinkError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"scrape store {args.store or default_store_path()}: {exc}") from None
    except KeyboardInterrupt:
        return 130
    return 1 if errors else 0
