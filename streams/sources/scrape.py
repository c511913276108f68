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
A poll's entries are marked seen only once the sink has flushed its records (the broker acknowledged
every one, or the file holds them): a refused send, a full disk, or a process killed before then
leaves them unmarked, so the next poll sends them again (at-least-once), and the record id, derived from the entry's key (and the feed URL, unless the key is the story's
own URL), lets consumers drop the repeat.

An entry's key (its identity) is the first usable of its guid, its link, or a hash of the feed,
its title and its raw date (without a guid or link: its title and description): a guid or link that repeats within one poll for different stories
(`<guid isPermaLink="false">N/A</guid>` on every item), or that an earlier poll saw for another
story (a feed that numbers its items, a guid that is the site's root), identifies nothing. Every
record runs through ingest's validation before it is emitted and marked seen, so nothing is counted
as sent that ingest would reject; an over-long body is cut at a word boundary and marked `truncated`.
A date ingest cannot use is named once per poll and counted in the poll's line.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import io
import logging
import os
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Mapping
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

from models.text import DEFAULT_STYLE, STYLES, style_name, tidy
from streams.sources.kafka_sink import SinkError, encode_value
from streams.sources.output import add_output_arguments, open_sink
from streams.usage import UsageError
from streams.validation import (
    Rejection,
    fit_record,
    normalise_url,
    parse_time,
    truncate_words,
    unread_because,
    url_identity,
    validate,
)

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
    # How the model reads the feeds' stories (models.text.STYLES): "social" for posts (a Mastodon or
    # other social feed), sent as each record's `style`; newswire, the default, is left unsaid.
    style: str = DEFAULT_STYLE


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
    undated: int = 0  # of `new`, those whose feed date ingest cannot use: the receive time stands in


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


STORE_BUSY_SECONDS = 60.0


class StoreInUse(OSError):
    """Another scraper holds the store: two would each send the stories the other has not marked yet."""


def _hold_store(path: Path) -> int:
    """An exclusive lock on `<store>.lock`, held until the store closes (a descriptor to close). The
    lock, not the database, says who owns the store: sqlite's own locks are per transaction."""
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise StoreInUse(f"in use by another `finsentry scrape` (it holds {path}.lock); run one scraper per "
                         "store, or give this one its own --store") from None
    return lock


def _open_store(path: str | os.PathLike[str]) -> sqlite3.Connection:
    # Owner only, whatever the umask: the store names every feed polled, credentials in URLs included.
    # sqlite gives its journal the database file's mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
    # autocommit: each add is durable at once. The wait for a lock held by another reader of the file
    # (a backup copying it) is a minute, not sqlite's 5 s, after which the scraper stopped.
    return sqlite3.connect(path, isolation_level=None, timeout=STORE_BUSY_SECONDS)


class SeenStore:
    """Entry keys already emitted, each with the story it was emitted for, and each feed's validators
    and failure count, in one sqlite file.

    A key alone is no proof of a story: feeds reuse a guid or link for a new story (a one-item feed
    whose guid is the site's root, a CMS that numbers the items on the page), so each key is kept with
    its story's fingerprint (`story_fingerprint`). A store written before fingerprints has keys without
    one; they still count as sent, and take the fingerprint of the story seen under them next."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = _hold_store(Path(path))
        try:
            self._db = _open_store(path)
        except BaseException:
            os.close(self._lock)
            raise
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS seen (feed TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL,
                                             story TEXT, PRIMARY KEY (feed, key));
            CREATE TABLE IF NOT EXISTS feeds (feed TEXT PRIMARY KEY, etag TEXT, last_modified TEXT,
                                              failures INTEGER NOT NULL, polled_at REAL NOT NULL);
            """
        )
        if "story" not in {row[1] for row in self._db.execute("PRAGMA table_info(seen)")}:
            self._db.execute("ALTER TABLE seen ADD COLUMN story TEXT")  # a store from before fingerprints

    def stories(self, feed: str, keys: Iterable[str]) -> dict[str, str | None]:
        """The stored keys among `keys`, each with the fingerprint of the story sent under it (None for a
        key stored before fingerprints were)."""
        wanted = list(dict.fromkeys(keys))
        marks = ", ".join("?" * len(wanted))
        rows = self._db.execute(f"SELECT key, story FROM seen WHERE feed = ? AND key IN ({marks})",
                                (feed, *wanted))
        return dict(rows.fetchall())

    def add(self, feed: str, keys: Iterable[str], story: str) -> None:
        """Marks `story` sent under each of `keys`, at once. A key already stored keeps its story, unless
        it had none (stored before fingerprints): then it takes this one."""
        now = time.time()
        with self._db:  # one transaction: commits, or rolls back on an error
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO seen (feed, key, at, story) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (feed, key) DO UPDATE SET story = excluded.story WHERE seen.story IS NULL",
                [(feed, key, now, story) for key in dict.fromkeys(keys)],
            )

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
        os.close(self._lock)  # releases the store for the next scraper

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3", "h4", "h5",
                         "h6", "blockquote", "pre", "hr", "section", "article", "header", "footer"})
_HIDDEN_TAGS = frozenset({"script", "style"})
# feedparser's content types of a title or summary that holds markup; any other is text as written.
_MARKUP = frozenset({"text/html", "application/xhtml+xml"})


# An `&` that starts no character reference ending in `;`: text, as `models.text` reads it (`BTC&ETH`,
# `GBP&pound`, `Q&A`). HTML's parser would expand a legacy name in it (`&ETH` became `Ð`).
_BARE_HTML_AMPERSAND = re.compile(r"&(?!#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]{0,31};)")


class _TextOnly(HTMLParser):
    """The text between the tags, its character references left as written, for `tidy` to decode
    (the one reading of references, ingest's); `strip_html` escapes every bare `&` first."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self.hidden = 0  # inside <script> or <style>: code, not text

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        self.parts.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.parts.append(f"&#{name};")

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.hidden += tag in _HIDDEN_TAGS
        if tag in _BLOCK_TAGS:  # <br>, <p>: words on either side must not run together; <b> joins them
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in _HIDDEN_TAGS and self.hidden > 0
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")


def strip_html(text: str) -> str:
    """The text of an HTML fragment: tags dropped, references decoded as ingest decodes them (only
    with their `;`, so `BTC&ETH` stays as written), whitespace collapsed."""
    parser = _TextOnly()
    parser.feed(_BARE_HTML_AMPERSAND.sub("&amp;", text))
    parser.close()
    return tidy("".join(parser.parts))


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


def raw_dates(entry: dict[str, Any]) -> list[str]:
    """The entry's raw date strings, in the order they are read: published (`pubDate`), updated
    (`dc:date`, Atom's `updated`), created. Read past feedparser's mapping, which answers `updated`
    with the `published` string when an entry has no updated date of its own."""
    found = (dict.get(entry, name) for name in ("published", "updated", "created"))
    return [raw for raw in found if isinstance(raw, str) and raw.strip()]


def entry_date(entry: dict[str, Any]) -> str | None:
    """The entry's date as ISO 8601, from the first of its raw strings that can be read exactly (a
    pubDate in German does not hide a dc:date); None when none can be, and ingest stamps the story
    with its receive time (`poll_once` reports that). feedparser's parsed dates are not used: it
    accepts a prefix (`2026/11/27 15:07:41` became 1 November) and ignores `PM` (`2:17:57 PM CET`
    became 02:17:57 CET)."""
    for raw in raw_dates(entry):
        try:
            return parse_time(raw).astimezone(UTC).isoformat()
        except (ValueError, OverflowError, OSError):
            continue
    return None


def _names_a_page(url: str) -> bool:
    """An absolute http(s) URL other than a site's root (where feeds point stories without a page)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and (
        parts.path not in ("", "/") or bool(parts.query) or bool(parts.fragment))


def record_id(feed_url: str, key: str) -> str:
    """The record's id, derived from the entry's key. An absolute http(s) URL (a link, or a guid that is
    one, normalised by link_key) names one story wherever it appears, so the id is the URL's alone: the
    same story in two feeds of one publisher (/rss/markets and /rss/top) is one record, scored and
    counted once. Any other key (a guid such as `1`, a title key) names a story only within its feed,
    and so does a site's root, where feeds point stories that have no page of their own."""
    basis = key if _names_a_page(key) else f"{feed_url}\n{key}"
    return "rss-" + hashlib.sha256(basis.encode()).hexdigest()[:24]


def entry_to_record(feed_url: str, feed: dict[str, Any], entry: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A news.raw record cut to ingest's limits, or None for an entry with neither a title nor a
    description. An item with only a description (a Mastodon post) is a story without a headline:
    ingest classifies it on its body's opening."""
    headline = entry_text(entry, "title")
    body = entry_text(entry, "summary")
    if not headline and not body:
        return None
    source = strip_html(feed.get("title", ""))
    record: dict[str, Any] = {
        "id": record_id(feed_url, key),
        "source": truncate_words(source, MAX_SOURCE_CHARS) if source else urlsplit(feed_url).hostname,
    }
    if headline:
        record["headline"] = headline
    if body and body != headline:
        record["body"] = body
    link = entry.get("link")
    if isinstance(link, str) and link.strip():
        try:  # feedparser makes a link of a guid without isPermaLink="false" (<guid>12345</guid>)
            record["url"] = normalise_url(link)
        except ValueError:
            log.info("entry %r: link %r is not an http(s) URL; sent without one", (headline or body)[:80],
                     link[:100])
    published = entry_date(entry)
    if published:
        record["published_at"] = published
    lang = feed.get("language")
    if isinstance(lang, str) and lang.strip() and len(lang) <= MAX_LANG_CHARS:
        record["lang"] = lang
    return fit_record(record)


def link_key(link: str) -> str:
    """A link as an identity: normalised as the record's url is (tracking parameters such as utm_*
    dropped), so a link that changes only in them between polls is the same story, in the form keys
    were first stored in (`url_identity`), so an upgrade does not send a stored story again; its
    fragment kept (a liveblog's /live#post-5 and #post-6 are two stories). As written when it is no
    http(s) URL."""
    try:
        key = url_identity(normalise_url(link))
    except ValueError:
        return link
    fragment = urlsplit(link.strip()).fragment
    return f"{key}#{fragment}" if fragment else key


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def story_fingerprint(entry: dict[str, Any]) -> str:
    """What a key is stored with, to tell whether it still names the story it was sent for:
    `<title digest>:<link digest>`, the title spacing aside and the link as link_key has it (empty
    when the entry has none, or only the site's root, which names no story). See `same_story`."""
    link = entry.get("link")
    link = link_key(link) if isinstance(link, str) and link.strip() else ""
    return _digest(entry_heading(entry)) + ":" + (_digest(link) if _names_a_page(link) else "")


def entry_heading(entry: dict[str, Any]) -> str:
    """What stands for an entry's title in its identity, spacing aside: its title, or for an item
    without one (a Mastodon post) its description, as the record's body stands for its headline."""
    for name in ("title", "summary"):
        value = entry.get(name)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return ""


def same_story(stored: str | None, story: str, by_page: bool) -> bool:
    """Whether a key stored with fingerprint `stored` (None: stored before fingerprints) still names
    the story with fingerprint `story`: the same title, or, for a guid (`by_page`), the same page. A
    headline edited under its guid and page (an update, a corrected figure) is the story it was, and
    is not sent again, as a second copy would count its news twice. A guid reused for another title
    and another page (a CMS that numbers the items on the page) is a new story; so is a new title under
    a guid with no page, and a new title at a link seen before (a section or live page that items
    without a guid share: taken for the same story, each later one was lost)."""
    if stored is None:
        return True
    title, _, link = stored.partition(":")
    new_title, _, new_link = story.partition(":")
    return title == new_title or (by_page and bool(link) and link == new_link)


@dataclass(frozen=True)
class Identity:
    """An entry's identity. `keys` are its candidate keys, best first: its guid, its link, a title
    key (a hash of feed, title and raw date; for an item with neither, which has no other identity,
    of feed, title and description, so that a date re-stamped each poll makes no new story) and a story key
    (a hash of fingerprint and raw date, used when each of the others names another story); none
    for an entry without a title. The entry is marked sent under all of them, so a story is known
    again by its link when the feed has moved its guid to another item, and by its title key when
    it has neither. `legacy` are keys older versions stored that are looked up but never written
    (a raw link or guid before link_key normalised it). `story` is its `story_fingerprint`.
    `guid` is the key that is its guid, if any. `witness` is the key that tells a story moved to a
    fresh guid or link from a new one (`sent_under`): with a page and an opaque guid, or a page and no
    date, its story key (the same title at the same page); else its title key (the same title at the
    same date in one feed is one story, wherever it links)."""

    keys: tuple[str, ...]
    legacy: tuple[str, ...]
    story: str
    witness: str | None = None
    guid: str | None = None


def sent_under(identity: Identity, stored: Mapping[str, str | None],
               this_poll: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(the key to send the entry under, None) for a story not sent yet, else (None, why not):
    `already_sent` or `duplicate` (read earlier in this poll).

    Keys are tried best first. A key held for the same story (`same_story`: the same title, or an
    edit under the same page of a guid) means sent; one held for another story is a reused key,
    passed over for the next. The first key nobody holds makes a new story, unless the entry's
    `witness` is held under the same title: then the feed moved the story to a fresh guid (a page
    that numbers its items) or link (a rotating signed link, http to https). So a guid never seen is
    a new story unless its title and date, or without a date its title and page, were sent: a live
    page every item links to, a daily "Market wrap" at one page under each day's date. (Without a
    date or a page, a fresh guid under a title seen before is taken for a moved story.) `stored`
    maps the keys the store holds (of `identity`'s keys and legacy keys) to their fingerprints;
    `this_poll` the keys of the entries read before this one."""
    if any(key in stored for key in identity.legacy):  # written by a version before fingerprints
        return None, "already_sent"
    if any(key in this_poll for key in identity.legacy):  # an entry of this poll holds it, not yet stored
        return None, "duplicate"

    def holder(key: str) -> tuple[str | None, str | None] | None:
        """(why a key held is not new, the fingerprint holding it), or None when nobody holds it."""
        if key in this_poll:
            return "duplicate", this_poll[key]
        if key in stored:
            return "already_sent", stored[key]
        return None

    for key in identity.keys:
        held = holder(key)
        if held is None:
            moved = holder(identity.witness) if identity.witness not in (None, key) else None
            if moved is not None and (moved[1] is None or _title(moved[1]) == _title(identity.story)):
                return None, moved[0]
            return key, None
        if same_story(held[1], identity.story, by_page=key == identity.guid):
            return None, held[0]
    # Not reached: the last key (`story:`) is made of this fingerprint, so only this story holds it.
    return None, "already_sent"


def _text(value: object) -> str:
    """A raw title or description as an identity reads it: spacing aside, "" when it is no string."""
    return " ".join(value.split()) if isinstance(value, str) else ""


def _title(fingerprint: str) -> str:
    return fingerprint.partition(":")[0]


def entry_identities(feed_url: str, entries: list[dict[str, Any]]) -> list[Identity]:
    """Each entry's identity. A guid (or link) shared within this poll by entries with different
    titles or links is not an identity and is left out, as is a placeholder guid (N/A, none, null,
    ...) even when it appears once. A guid that is an absolute http(s) URL is normalised as a link is."""

    def candidate(entry: dict[str, Any], kind: str) -> tuple[str, str] | None:
        """(the key, as written) for the entry's guid or link; None when it has no usable one."""
        value = entry.get(kind)
        if not isinstance(value, str) or not value.strip() or (
                kind == "id" and value.strip().lower() in PLACEHOLDER_GUIDS):
            return None
        return link_key(value), value

    claims: dict[tuple[str, str], set[str]] = {}
    for entry in entries:
        for kind in ("id", "link"):
            if found := candidate(entry, kind):  # a guid claims a title and link, a link a title
                claim = story_fingerprint(entry) if kind == "id" else entry_heading(entry)
                claims.setdefault((kind, found[0]), set()).add(claim)
    identities = []
    for entry in entries:
        story = story_fingerprint(entry)
        title = entry.get("title")
        if not isinstance(title, str) or not title.strip():
            title = entry_heading(entry)  # a description alone (a Mastodon post)
        if not title:
            identities.append(Identity((), (), story))
            continue
        keys, legacy, guid = [], [], None
        for kind in ("id", "link"):
            if (found := candidate(entry, kind)) and len(claims[(kind, found[0])]) == 1:
                keys.append(found[0])
                if found[1] != found[0]:
                    legacy.append(found[1])
                if kind == "id":
                    guid = found[0]
        raw_date = dict.get(entry, "published") or dict.get(entry, "updated") or ""
        # The date stays in the title key even where it is the item's only identity: a daily "Market
        # wrap" is a new story each day. A feed that re-stamps an item each poll sends it again under
        # a new id, which the monitor's novelty check counts once (the same headline): a repeat can
        # be absorbed downstream, a story dropped here is gone. Undated too, such an item is its title
        # and description: two "Market wrap"s that say different things are two stories.
        title_key, story_key = f"hash:{_digest(feed_url, title, raw_date)}", f"story:{_digest(story, raw_date)}"
        if not keys and not raw_date:
            legacy.append(title_key)  # as versions before stored it
            title_key = f"text:{_digest(feed_url, title, _text(entry.get('summary')))}"
        has_page = bool(story.partition(":")[2])
        opaque_guid = guid is not None and not _names_a_page(guid)
        # An opaque guid fresh at a page of its own is a new story, even under a title and date sent
        # before (two "Trading halt" notices at 07:00); it moved only if its title was sent at its page.
        # Without one, a fresh link under a title and date sent before is that story moved (a rotating
        # signed link, http to https).
        witness = story_key if has_page and (opaque_guid or not raw_date) else title_key
        identities.append(Identity(tuple(dict.fromkeys([*keys, title_key, story_key])), tuple(legacy), story,
                                   witness, guid))
    return identities


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


# An `&` that begins no entity or character reference (`AT&T`, `S&P 500`, `BTC&ETH`). Such a document
# is not XML, and feedparser falls back to its loose SGML parser, which writes `AT&T;` and `S&P;` and
# reads `&ETH` as the HTML entity Ð. Escaped before parsing, the document is well-formed (or, when
# something else is wrong with it, the loose parser decodes `&amp;` right). The lookahead stops at the
# first character no name has: linear on a hostile body.
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[A-Za-z_:\x80-\xff][\w.:\x80-\xff-]*|#[0-9]+|#[xX][0-9a-fA-F]+);)")
_CDATA_OPEN, _CDATA_CLOSE = b"<![CDATA[", b"]]>"


def _escape_ampersands(body: bytes) -> bytes:
    """The body with every bare `&` written `&amp;`, except inside CDATA sections, whose `&` is already
    text (`<![CDATA[Northwind <NWT.O> & co]]>` is a plain-text title: an `&amp;` there would make
    feedparser take it for HTML and strip the ticker). A UTF-16 or UTF-32 body (NUL among its first
    four bytes) is left as it is: there an `&` is not the byte 0x26 alone."""
    if b"\x00" in body[:4]:
        return body
    parts, start = [], 0
    while (opening := body.find(_CDATA_OPEN, start)) != -1:
        closing = body.find(_CDATA_CLOSE, opening + len(_CDATA_OPEN))
        end = len(body) if closing == -1 else closing + len(_CDATA_CLOSE)
        parts += [_BARE_AMPERSAND.sub(b"&amp;", body[start:opening]), body[opening:end]]
        start = end
    parts.append(_BARE_AMPERSAND.sub(b"&amp;", body[start:]))
    return b"".join(parts)


def parse_feed(body: bytes, response: httpx.Response) -> Any:
    """feedparser's result for these bytes. Handed a stream: given bytes or a str, feedparser first
    tries to open them as a file name (and a str as a URL), so a body `/etc/passwd` was read from disk."""
    # Markup is left as the feed wrote it: feedparser's HTML sanitizer (and its relative-link pass)
    # re-writes a bare `&` in HTML as a reference (`BTC&ETH` became `BTC&ETH;`, read as `BTCÐ`), and
    # strip_html keeps only the text, script and style left out, so there is nothing to sanitize.
    return feedparser.parse(
        io.BytesIO(_escape_ampersands(_scrub_charrefs(body))),
        sanitize_html=False,
        resolve_relative_uris=False,
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
    flush: Callable[[], None] | None = None,
    policy: Policy = Policy(),
    jitter: Callable[[], float] = random.random,
    allowed_hosts: frozenset[str] = frozenset(),
) -> PollResult:
    """One conditional GET of one feed. `now` (epoch seconds) is recorded as the feed's last poll.
    `allowed_hosts`: other hosts this feed may redirect to.

    `flush` waits until everything `emit` took is delivered (the sink's flush) and raises if any was
    not; the poll's entries are marked seen only after it (None: `emit` delivers before it returns).
    Raises ValueError for a non-http(s) URL; an exception from `emit` or `flush` propagates and leaves
    the poll's entries unseen and the validators unchanged, so the next poll sends them again. A body that
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
    new = undated = 0
    first_undated: tuple[str, str] | None = None  # (the date, why ingest cannot use it) of the first undated
    skips: dict[str, int] = {}
    this_poll: dict[str, str] = {}  # key -> story fingerprint, for every entry read this poll
    sent: list[tuple[tuple[str, ...], str]] = []  # (keys, story) emitted this poll, marked seen once flushed
    entries = parsed.entries
    for entry, identity in zip(entries, entry_identities(url, entries), strict=True):
        record = None
        reason = None
        if not identity.keys:
            reason = "unusable"
        else:
            stored = store.stories(url, identity.keys + identity.legacy)
            key, reason = sent_under(identity, stored, this_poll)
            for known in identity.keys:
                this_poll.setdefault(known, identity.story)
            if reason == "already_sent" and any(stored.get(known) is None for known in identity.keys):
                store.add(url, identity.keys, identity.story)  # keys from before fingerprints take this story
            if key is not None:
                try:
                    record = entry_to_record(url, parsed.feed, entry, key)
                    if record is not None and policy.style != DEFAULT_STYLE:
                        record["style"] = policy.style
                except Exception:  # one entry that cannot be turned into a record costs only itself
                    log.exception("%s: entry could not be read; skipped", redact_url(url))
                if record is None:
                    reason = "unusable"
                else:
                    checked = validate(encode_value(record), now)  # what ingest will do with these very bytes
                    if isinstance(checked, Rejection):
                        reason = "rejected"
                        log.warning("%s: entry %r skipped: ingest would reject it: %s: %s", redact_url(url),
                                    (record.get("headline") or record.get("body") or "")[:80], checked.reason,
                                    checked.message)
                    elif new >= policy.max_items:  # only what is sent counts: rejected entries hold back none
                        reason = "over_limit"
        if reason:
            if reason == "unusable":
                log.warning("%s: entry skipped: no title and no description", redact_url(url))
            skips[reason] = skips.get(reason, 0) + 1
            continue
        emit(record)
        sent.append((identity.keys, identity.story))
        new += 1
        if checked.published_at_source == "received" and (raws := raw_dates(entry)):
            undated += 1  # the feed gave a date ingest cannot use: the receive time stands in
            if first_undated is None:
                stamp = record.get("published_at") or raws[0]  # read but out of range, or unreadable
                first_undated = (stamp, unread_because(stamp, now))
    if first_undated is not None:
        log.warning("%s: %d new %s sent with the receive time for a date that cannot be used, the first %r: %s",
                    redact_url(url), undated, "entry" if undated == 1 else "entries", first_undated[0][:60],
                    first_undated[1])
    if skips.get("over_limit"):
        log.warning("%s: %d entries not sent before; the first %d were sent, the rest wait for the next poll",
                    redact_url(url), new + skips["over_limit"], policy.max_items)
        validators = FeedState(None, None, 0)  # so the next poll gets the whole feed again, not a 304
    else:
        validators = FeedState(response.headers.get("etag"), response.headers.get("last-modified"), 0)
    if sent and flush is not None:
        flush()  # raises when a record was not delivered: nothing of this poll is marked, so it is sent again
    for keys, story in sent:
        store.add(url, keys, story)
    store.set_state(url, validators, now)
    return PollResult(url, response.status_code, new, sum(skips.values()), None, policy.interval, skips, undated)


def make_client(policy: Policy) -> httpx.Client:
    """Redirects are followed by `_fetch`, hop by hop, so each is checked against the feed's host.
    With an explicit transport httpx does not read proxy settings from the environment."""
    return httpx.Client(
        follow_redirects=False,
        timeout=httpx.Timeout(min(policy.max_seconds, 10.0), connect=5.0),
        headers={"User-Agent": USER_AGENT},
        transport=_deadline_transport(),
    )


def log_result(result: PollResult, once: bool = False) -> None:
    """One line per poll; a failed one says when it is tried again, unless this run polls `once`."""
    url = redact_url(result.url)
    if result.error:
        log.warning("%s: %s%s", url, result.error, "" if once else f"; retrying in {result.next_poll_in:.0f}s")
    else:
        why = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in (result.skips or {}).items())
        undated = f" ({result.undated} with the receive time for an unusable date)" if result.undated else ""
        log.info("%s: HTTP %s, %d new%s, %d skipped%s", url, result.status, result.new, undated, result.skipped,
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
    flush: Callable[[], None] | None = None,
) -> None:
    """Poll every feed when it is due, forever or for `max_rounds` wake-ups (1 polls each feed once).
    `flush`: the sink's, called before a poll's entries are marked seen (poll_once).

    Feeds are isolated: whatever goes wrong with one (a crash included) is that feed's error result,
    and the others are polled as usual. Only the sink's failures (`emit`, `flush`) and the store's stop the run.
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

    def checked_flush() -> None:
        try:
            if flush is not None:
                flush()
        except Exception as exc:
            raise _EmitFailed(exc) from exc

    with SeenStore(store_path) as store, make_client(policy) as client:
        while True:
            now = time.time()
            for url in feeds:
                if due[url] <= now:
                    try:
                        result = poll_once(client, url, store, checked_emit, now=now, flush=checked_flush, policy=policy,
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
    parser.add_argument("--style", choices=STYLES, default=DEFAULT_STYLE, type=style_name,
                        help="how the model reads these feeds' stories: newswire (the default) or social, for "
                             "feeds of social-media posts (docs/INPUTS.md)")
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
    for name in ("httpx", "kafka"):  # one line per poll is ours; httpx adds one, the Kafka client twenty
        logging.getLogger(name).setLevel(logging.WARNING)
    errors = 0

    def note(result: PollResult) -> None:
        nonlocal errors
        log_result(result, once=args.once)
        errors += result.error is not None

    feeds = list(dict.fromkeys(args.feed))
    redirect_hosts = redirect_hosts_arg(args.allow_redirect, feeds)
    policy = Policy(interval=args.interval, max_bytes=args.max_bytes, max_items=args.max_items, style=args.style)
    try:
        with open_sink(args) as sink:
            run(
                feeds,
                sink.send,
                args.store or default_store_path(),
                args.interval,
                flush=sink.flush,
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
