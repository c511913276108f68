"""Poll RSS and Atom feeds and turn new entries into `news.raw` records.

A polite and bounded poller: conditional GETs so an unchanged feed costs one 304, a de-duplication
store on disk so a restart never re-sends what was sent, per-feed exponential backoff with jitter
so a failing server is not hammered (the failure count is stored, so backoff survives restarts too),
and caps on response size, items and time so one hostile feed cannot stall or exhaust the poller.
A hostile feed is contained: the body is handed to feedparser as a stream (given bytes or a str,
feedparser first tries them as a file name or URL and reads that instead), the time cap covers the
whole exchange, headers included, a redirect to another host is refused unless the feed is
configured to allow it, a feed that cannot be parsed is that feed's error and never stops the
others, the store file is readable by its owner only, and URLs are logged without credentials.
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
import io
import logging
import os
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser
import httpcore
import httpx

from streams.sources.kafka_sink import SinkError, encode_value
from streams.sources.output import add_output_arguments, open_sink
from streams.usage import UsageError
from streams.validation import Rejection, fit_record, normalise_url, parse_time, truncate_words, validate

log = logging.getLogger(__name__)

USER_AGENT = "finsentry-scrape/0.1"


@dataclass(frozen=True)
class Policy:
    interval: float = 60.0  # seconds between polls of a healthy feed; also the first backoff step
    max_bytes: int = 5 * 1024 * 1024
    max_seconds: float = 30.0  # whole exchange (connect, headers, body, redirects), however slowly it trickles in
    backoff_cap: float = 3600.0
    max_items: int = 500  # new entries sent from one response; the rest wait for the next poll
    max_redirects: int = 5


@dataclass(frozen=True)
class FeedState:
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0  # consecutive failed polls


# guids that feeds put on every item: never an identity, even on a feed that shows one item at a time.
PLACEHOLDER_GUIDS = frozenset({"n/a", "na", "none", "null", "undefined", "0", "-", "guid", "id"})
# Why an entry was not emitted; each is counted per poll.
SKIP_REASONS = ("already_sent", "duplicate", "unusable", "rejected", "over_limit")
MAX_SOURCE_CHARS = 200  # a feed's title names the source of every record: a huge one must not sink them all
MAX_LANG_CHARS = 35  # longer than any BCP 47 tag in use


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


# Query parameters whose values are credentials (api_key, access_token, X-Amz-Signature, sessionid, ...).
_SECRET_PARAM = re.compile(r"token|key|secret|pass|pwd|auth|sig|session|cred|ticket|jwt|bearer|code", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL as it may be logged: user:password@ becomes ***@, and secret-looking query values ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rpartition("@")[2]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


def _redact_in(text: str, url: str) -> str:
    """`text` with `url`, as given and as httpx writes it, replaced by its redacted form."""
    forms = {url}
    try:
        forms.add(str(httpx.URL(url)))
    except (httpx.InvalidURL, TypeError, ValueError):
        pass
    for form in forms:
        text = text.replace(form, redact_url(form))
    return text


def check_feed_url(url: str) -> str:
    """Only http(s): a feed URL must never become a way to read local files or other services' schemes."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"refusing feed URL {redact_url(url)!r}: only http:// and https:// URLs with a host "
                         "can be polled")
    return url


class SeenStore:
    """Entry keys already emitted and each feed's validators and failure count, in one sqlite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Owner only, whatever the umask: the store names every feed polled, credentials in URLs included.
        # sqlite gives its journal the database file's mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
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


_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3", "h4", "h5",
                         "h6", "blockquote", "pre", "hr", "section", "article", "header", "footer"})
# feedparser's content types of a title or summary that holds markup; any other is text as written.
_MARKUP = frozenset({"text/html", "application/xhtml+xml"})


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _BLOCK_TAGS:  # <br>, <p>: words on either side must not run together; <b> joins them
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")


def strip_html(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return " ".join("".join(parser.parts).split())


def entry_text(entry: dict[str, Any], name: str) -> str:
    """An entry's title or summary as text. Markup is stripped only where feedparser says it is markup:
    a plain-text title keeps what looks like a tag (`Apple <AAPL.O> beats` lost its ticker)."""
    text = entry.get(name, "")
    if not isinstance(text, str):
        return ""
    detail = entry.get(f"{name}_detail")
    if isinstance(detail, dict) and detail.get("type") not in _MARKUP:
        return " ".join(text.split())
    return strip_html(text)


def entry_date(entry: dict[str, Any]) -> str | None:
    """The entry's date as ISO 8601, read from the feed's raw strings in turn (published, updated,
    created: a pubDate in German does not hide a dc:date); None when none can be read exactly.
    feedparser's parsed dates are not used: it accepts a prefix (`2026/11/27 15:07:41` became 1
    November) and ignores `PM` (`2:17:57 PM CET` became 02:17:57 CET)."""
    unread = []
    for name in ("published", "updated", "created"):
        raw = entry.get(name)
        if isinstance(raw, str) and raw.strip():
            try:
                return parse_time(raw).astimezone(UTC).isoformat()
            except (ValueError, OverflowError, OSError):
                unread.append(raw[:60])
    if unread:
        log.info("entry %r: date %s not ISO 8601 or RFC 2822; ingest will use the receive time",
                 entry.get("title", "")[:80], " / ".join(repr(r) for r in unread))
    return None


def entry_to_record(feed_url: str, feed: dict[str, Any], entry: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A news.raw record cut to ingest's limits, or None for an entry without a usable title."""
    headline = entry_text(entry, "title")
    if not headline:
        return None
    digest = hashlib.sha256(f"{feed_url}\n{key}".encode()).hexdigest()[:24]
    source = strip_html(feed.get("title", ""))
    record: dict[str, Any] = {
        "id": f"rss-{digest}",
        "source": truncate_words(source, MAX_SOURCE_CHARS) if source else urlsplit(feed_url).hostname,
        "headline": headline,
    }
    body = entry_text(entry, "summary")
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
    lang = feed.get("language")
    if isinstance(lang, str) and lang.strip() and len(lang) <= MAX_LANG_CHARS:
        record["lang"] = lang
    return fit_record(record)


def link_key(link: str) -> str:
    """A link as an identity: normalised as the record's url is (tracking parameters such as utm_*
    dropped), so a link that changes only in them between polls is the same story; as written when
    it is no http(s) URL."""
    try:
        normalised = normalise_url(link)
    except ValueError:
        return link
    fragment = urlsplit(link.strip()).fragment  # a liveblog's /live#post-5 and #post-6 are two stories
    return f"{normalised}#{fragment}" if fragment else normalised


def sent_before(store: SeenStore, feed_url: str, entry: dict[str, Any], key: str) -> bool:
    """Whether this entry was sent by an earlier poll, under its key or, for a link key, under the raw
    link that versions before link_key stored."""
    if store.seen(feed_url, key):
        return True
    link = entry.get("link")
    return isinstance(link, str) and link != key and link_key(link) == key and store.seen(feed_url, link)


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
        if kind == "link":
            return link_key(value)
        return None if value.strip().lower() in PLACEHOLDER_GUIDS else value

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


# The monotonic time by which the current fetch must be over; read by every socket operation.
_deadline: ContextVar[float | None] = ContextVar("scrape_deadline", default=None)


def _within_deadline(timeout: float | None, error: type[Exception]) -> float | None:
    """The socket timeout to use now: `timeout` shortened to what is left of the fetch's time."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the poll's time limit is spent")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the fetch's deadline. httpx's own timeouts are
    per socket operation: headers sent a byte every few seconds never trip them."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _within_deadline(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _deadline_transport() -> httpx.HTTPTransport:
    """httpx's transport on a network backend that enforces the fetch deadline. httpx does not take a
    backend as an argument; its pool does, and keeps it in one attribute, checked here so an upgrade
    that renames it fails loudly instead of silently dropping the cap."""
    transport = httpx.HTTPTransport()
    pool = transport._pool
    if not isinstance(getattr(pool, "_network_backend", None), httpcore.NetworkBackend):
        raise TypeError("httpx/httpcore changed: cannot install the scraper's deadline on the connection pool")
    pool._network_backend = _DeadlineBackend()
    return transport


def _default_port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def redirect_allowed(feed: httpx.URL, target: httpx.URL, allowed_hosts: frozenset[str]) -> bool:
    """A redirect stays on the feed's host and port (http to https on the same host is fine), or goes to
    a host the feed is configured to allow."""
    if target.scheme not in ("http", "https") or not target.host:
        return False
    if target.host.lower() in allowed_hosts:
        return True
    if target.host.lower() != feed.host.lower():
        return False
    if _default_port(target) == _default_port(feed):
        return True
    return feed.scheme == "http" and target.scheme == "https" and feed.port is None and target.port is None


def _fetch(client: httpx.Client, url: str, headers: dict[str, str], policy: Policy,
           allowed_hosts: frozenset[str] = frozenset()) -> tuple[httpx.Response, bytes]:
    """The closed response and its body, or FeedError. The body is read in chunks to enforce the size
    cap, and every socket operation (connect, headers, body, each redirect) ends by one deadline."""
    started = time.monotonic()
    token = _deadline.set(started + policy.max_seconds)
    first = httpx.URL(url)
    try:
        request = client.build_request("GET", url, headers=headers)
        for _ in range(policy.max_redirects + 1):
            response = client.send(request, stream=True, follow_redirects=False)
            try:
                if response.has_redirect_location and response.next_request is not None:
                    target = response.next_request.url
                    if not redirect_allowed(first, target, allowed_hosts):
                        raise FeedError(f"HTTP {response.status_code} redirect to {redact_url(str(target))} refused: "
                                        "another host (allow it for this feed with --allow-redirect)",
                                        response.status_code)
                    request = response.next_request
                    continue
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
                    chunks.append(chunk)
                return response, b"".join(chunks)
            finally:
                response.close()
        raise FeedError(f"more than {policy.max_redirects} redirects")
    except httpx.HTTPError as exc:
        if time.monotonic() - started >= policy.max_seconds:
            raise FeedError(f"response took longer than {policy.max_seconds:g}s") from exc
        raise FeedError(_redact_in(f"{type(exc).__name__}: {exc}", url)) from exc
    finally:
        _deadline.reset(token)


# A character reference to a surrogate or past U+10FFFF: feedparser's lenient parser crashes on it
# (UnicodeEncodeError, or OverflowError past a C long), which once took the whole run down, or lost
# every item of the feed. Replaced by U+FFFD before parsing. Any number of digits: past 6 hex or 7
# decimal significant ones it is out of range without int() (which refuses 4,300 decimal digits).
_BAD_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")  # no nested quantifier: linear on "&#000..."


def _scrub_charrefs(body: bytes) -> bytes:
    def fix(match: re.Match[bytes]) -> bytes:
        hexa, decimal = match.group(1), match.group(2)
        digits = (hexa or decimal).lstrip(b"0") or b"0"
        if len(digits) > (6 if hexa else 7):
            return b"&#xFFFD;"
        value = int(digits, 16) if hexa else int(digits)
        return b"&#xFFFD;" if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF else match.group(0)

    return _BAD_CHARREF.sub(fix, body)


def parse_feed(body: bytes, response: httpx.Response) -> Any:
    """feedparser's result for these bytes. Handed a stream: given bytes or a str, feedparser first
    tries to open them as a file name (and a str as a URL), so a body `/etc/passwd` was read from disk."""
    return feedparser.parse(
        io.BytesIO(_scrub_charrefs(body)),
        response_headers={
            "content-location": str(response.url),  # base for relative links
            "content-type": response.headers.get("content-type", ""),  # charset
        },
    )


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
    allowed_hosts: frozenset[str] = frozenset(),
) -> PollResult:
    """One conditional GET of one feed. `now` (epoch seconds) is recorded as the feed's last poll.
    `allowed_hosts`: other hosts this feed may redirect to.

    Raises ValueError for a non-http(s) URL; an exception from `emit` propagates and leaves the
    unsent entries unseen and the validators unchanged, so the next poll retries them. A body that
    feedparser fails on is this feed's error (a FeedError result), not an exception.
    """
    check_feed_url(url)
    state = store.state(url)
    headers = {"User-Agent": USER_AGENT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        response, body = _fetch(client, url, headers, policy, allowed_hosts)
        if response.status_code == 304:
            store.set_state(url, replace(state, failures=0), now)
            return PollResult(url, 304, 0, 0, None, policy.interval)
        try:
            parsed = parse_feed(body, response)
        except Exception as exc:  # feedparser's lenient parser raises on hostile input (UnicodeEncodeError, ...)
            raise FeedError(f"feed could not be parsed: {type(exc).__name__}: {str(exc)[:200]}",
                            response.status_code) from exc
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
    entries = parsed.entries
    for entry, key in zip(entries, entry_keys(url, entries), strict=True):
        try:
            record = entry_to_record(url, parsed.feed, entry, key) if key else None
        except Exception:  # one entry that cannot be turned into a record costs only itself
            log.exception("%s: entry could not be read; skipped", redact_url(url))
            record = None
        reason = None
        if record is None or key is None:
            reason = "unusable"
            log.warning("%s: entry %r skipped: no title", redact_url(url), strip_html(entry.get("summary", ""))[:80])
        elif key in this_poll:
            reason = "duplicate"
        else:
            this_poll.add(key)
            if sent_before(store, url, entry, key):
                reason = "already_sent"
            else:
                checked = validate(encode_value(record), now)  # what ingest will do with these very bytes
                if isinstance(checked, Rejection):
                    reason = "rejected"
                    log.warning("%s: entry %r skipped: ingest would reject it: %s: %s", redact_url(url),
                                record["headline"][:80], checked.reason, checked.message)
                elif new >= policy.max_items:  # only what is sent counts: rejected entries hold back none
                    reason = "over_limit"
        if reason:
            skips[reason] = skips.get(reason, 0) + 1
            continue
        emit(record)
        store.add(url, key)
        new += 1
    if skips.get("over_limit"):
        log.warning("%s: %d entries not sent before; the first %d were sent, the rest wait for the next poll",
                    redact_url(url), new + skips["over_limit"], policy.max_items)
        validators = FeedState(None, None, 0)  # so the next poll gets the whole feed again, not a 304
    else:
        validators = FeedState(response.headers.get("etag"), response.headers.get("last-modified"), 0)
    store.set_state(url, validators, now)
    return PollResult(url, response.status_code, new, sum(skips.values()), None, policy.interval, skips)


def make_client(policy: Policy) -> httpx.Client:
    """Redirects are followed by `_fetch`, hop by hop, so each is checked against the feed's host.
    With an explicit transport httpx does not read proxy settings from the environment."""
    return httpx.Client(
        follow_redirects=False,
        timeout=httpx.Timeout(min(policy.max_seconds, 10.0), connect=5.0),
        headers={"User-Agent": USER_AGENT},
        transport=_deadline_transport(),
    )


def log_result(result: PollResult) -> None:
    url = redact_url(result.url)
    if result.error:
        log.warning("%s: %s; retrying in %.0fs", url, result.error, result.next_poll_in)
    else:
        why = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in (result.skips or {}).items())
        log.info("%s: HTTP %s, %d new, %d skipped%s", url, result.status, result.new, result.skipped,
                 f" ({why})" if why else "")


class _EmitFailed(Exception):
    """An exception from `emit`: the sink's, not the feed's, so it stops the run."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


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
    policy: Policy | None = None,
    redirect_hosts: Mapping[str, frozenset[str]] | None = None,
) -> None:
    """Poll every feed when it is due, forever or for `max_rounds` wake-ups (1 polls each feed once).

    Feeds are isolated: whatever goes wrong with one (a crash included) is that feed's error result,
    and the others are polled as usual. Only the sink's failures (`emit`) and the store's stop the run.
    `redirect_hosts`: per feed URL, the other hosts it may redirect to."""
    for url in feeds:
        check_feed_url(url)
    policy = policy or Policy(interval=interval, max_bytes=max_bytes)
    redirect_hosts = redirect_hosts or {}
    due = dict.fromkeys(feeds, 0.0)
    failures: dict[str, int] = dict.fromkeys(feeds, 0)
    rounds = 0

    def checked_emit(record: dict[str, Any]) -> None:
        try:
            emit(record)
        except Exception as exc:
            raise _EmitFailed(exc) from exc

    with SeenStore(store_path) as store, make_client(policy) as client:
        while True:
            now = time.time()
            for url in feeds:
                if due[url] <= now:
                    try:
                        result = poll_once(client, url, store, checked_emit, now=now, policy=policy,
                                           allowed_hosts=redirect_hosts.get(url, frozenset()))
                        failures[url] = 0
                    except _EmitFailed as failed:
                        raise failed.original from None
                    except sqlite3.Error:
                        raise
                    except Exception as exc:  # this feed's bug must not stop the other feeds
                        failures[url] += 1
                        log.exception("%s: poll failed", redact_url(url))
                        error = _redact_in(f"poll failed: {type(exc).__name__}: {str(exc)[:200]}", url)
                        result = PollResult(url, None, 0, 0, error, backoff(policy, failures[url]))
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


def _items_arg(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def redirect_hosts_arg(pairs: list[list[str]], feeds: list[str]) -> dict[str, frozenset[str]]:
    """--allow-redirect FEED HOST pairs as {feed: hosts}; UsageError for a FEED that is not polled."""
    allowed: dict[str, set[str]] = {}
    for feed, host in pairs:
        if feed not in feeds:
            raise UsageError(f"--allow-redirect {redact_url(feed)}: not one of the --feed URLs")
        name = host.strip().lower()
        if not name or "/" in name or "@" in name:
            raise UsageError(f"--allow-redirect: {host!r} is not a host name")
        allowed.setdefault(feed, set()).add(name)
    return {feed: frozenset(hosts) for feed, hosts in allowed.items()}


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
    parser.add_argument("--max-items", type=_items_arg, default=Policy.max_items, metavar="N",
                        help=f"new entries sent from one response (default {Policy.max_items}); the "
                             "rest are counted as skipped (over limit) and read on the next poll")
    parser.add_argument("--allow-redirect", nargs=2, action="append", default=[], metavar=("FEED", "HOST"),
                        help="let FEED (one of the --feed URLs) redirect to HOST; repeatable. Without it a redirect "
                             "to another host is refused")
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

    feeds = list(dict.fromkeys(args.feed))
    redirect_hosts = redirect_hosts_arg(args.allow_redirect, feeds)
    policy = Policy(interval=args.interval, max_bytes=args.max_bytes, max_items=args.max_items)
    try:
        with open_sink(args) as sink:
            run(
                feeds,
                sink.send,
                args.store or default_store_path(),
                args.interval,
                max_rounds=1 if args.once else None,
                on_result=note,
                policy=policy,
                redirect_hosts=redirect_hosts,
            )
    except SinkError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"scrape store {args.store or default_store_path()}: {exc}") from None
    except KeyboardInterrupt:
        return 130
    return 1 if errors else 0
