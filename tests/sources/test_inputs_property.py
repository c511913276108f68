"""Property: every good story, whatever date format, ticker notation and file dialect it comes in,
is either sent or skipped with a reason by `finsentry produce` and `finsentry scrape`, and nothing
sent is rejected by ingest afterwards (nothing is both counted as sent and dead-lettered downstream).

Good stories are also expected to be *sent*, with the date and tickers they stated.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.cli import main
from streams.sources import scrape
from streams.sources.scrape import Policy, SeenStore, poll_once
from streams.validation import MISSING, Story, validate
from tests.sources.feedserver import FeedServer, Route, serve

WORDS = st.sampled_from(["Acme", "Globex", "Initech", "shares", "rise", "fall", "beats", "misses", "profit", "forecast", "merger", "bank", "rates", "oil", "Acme,", "says \"no\";", "10%\t", "Q3|Q4", "it's"])
headlines = st.lists(WORDS, min_size=1, max_size=8).map(" ".join)

# (as written, as ingest keeps it)
# A cell reading NaN, NULL, None or NA is a missing value (docs/INPUTS.md), not a ticker.
_ROOT = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5).filter(lambda t: t.lower() not in MISSING)
_DIGITS = st.text("0123456789", min_size=4, max_size=6)
tickers = st.one_of(
    _ROOT.map(lambda t: (t, t)),
    _ROOT.map(lambda t: (t.lower(), t)),
    _ROOT.map(lambda t: ("$" + t, t)),
    st.tuples(_DIGITS, st.sampled_from([".T", ".HK", ".KS", ".SS"])).map(lambda p: (p[0] + p[1], p[0] + p[1])),
    st.tuples(_ROOT, st.sampled_from([".DE", ".L", ".PA", "-A"])).map(lambda p: (p[0] + p[1], p[0] + p[1])),
    st.tuples(_ROOT, st.sampled_from(["A", "B"])).map(lambda p: (f"{p[0]}/{p[1]}", f"{p[0]}.{p[1]}"))
    .filter(lambda t: t[0].lower() not in MISSING),  # a cell reading N/A is a missing value too
    _ROOT.map(lambda t: ("^" + t, "^" + t)),
)

ZONES = {"GMT": 0, "UTC": 0, "EST": -5, "EDT": -4, "CET": 1, "CEST": 2, "JST": 9, "PST": -8}
moments = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2025, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC))


def _rfc2822(moment: datetime, zone: str, twelve_hour: bool) -> str:
    local = moment.astimezone(timezone(timedelta(hours=ZONES[zone])))
    clock = (f"{(local.hour % 12) or 12}:{local:%M:%S} {'PM' if local.hour >= 12 else 'AM'}" if twelve_hour
             else f"{local:%H:%M:%S}")
    return f"{local:%a, %d %b %Y} {clock} {zone}"


def written_dates(moment: datetime) -> st.SearchStrategy[str | int]:
    seconds = int(moment.timestamp())
    return st.one_of(
        st.just(moment.isoformat()),
        st.just(moment.strftime("%Y-%m-%dT%H:%M:%SZ")),
        st.just(moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()),
        st.builds(_rfc2822, st.just(moment), st.sampled_from(sorted(ZONES)), st.booleans()),
        st.just(moment.strftime("%a, %d %b %Y %H:%M:%S +0000")),
        st.just(moment.strftime("%Y/%m/%d %H:%M:%S")),
        st.sampled_from([1, 1_000, 1_000_000, 1_000_000_000]).map(lambda unit: seconds * unit),
        st.sampled_from([1, 1_000, 1_000_000, 1_000_000_000]).map(lambda unit: str(seconds * unit)),
    )


@st.composite
def stories(draw: st.DrawFn) -> tuple[dict, dict]:
    """(the record as a user writes it, what ingest must keep: published_at and tickers)."""
    moment = draw(moments)
    chosen = draw(st.lists(tickers, max_size=3, unique_by=lambda t: t[1]))
    record = {"headline": draw(headlines), "published_at": draw(written_dates(moment)),
              "tickers": [written for written, _ in chosen]}
    expected = {"published_at": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "tickers": [kept for _, kept in chosen]}
    return record, expected


dialects = st.fixed_dictionaries({
    "delimiter": st.sampled_from([",", ";", "\t"]),
    "lineterminator": st.sampled_from(["\r\n", "\n"]),
    "quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    "bom": st.booleans(),
    "list_separator": st.sampled_from([",", ";"]),
})


def csv_bytes(rows: list[dict], dialect: dict) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=dialect["delimiter"], lineterminator=dialect["lineterminator"],
                        quoting=dialect["quoting"])
    writer.writerow(["id", "headline", "published_at", "tickers"])
    for row in rows:
        writer.writerow([row["id"], row["headline"], str(row["published_at"]),
                         dialect["list_separator"].join(row["tickers"])])
    return ("\ufeff" if dialect["bom"] else "").encode() + buffer.getvalue().encode("utf-8")


def run_produce(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[bytes], dict[int, str]]:
    out = path.with_suffix(".sent")
    code = main(["produce", str(path), "-o", str(out)])
    skipped = {int(m.group(1)): m.group(2) for m in re.finditer(r"^line (\d+): skipped: (\S.*)$",
                                                                  capsys.readouterr().err, re.MULTILINE)}
    return code, out.read_bytes().splitlines(), skipped


def check(rows: list[tuple[dict, dict]], sent: list[bytes], skipped: dict[int, str]) -> None:
    # Every story is accounted for exactly once: sent, or skipped with a reason.
    assert len(sent) + len(skipped) == len(rows)
    assert all(reason.split(":")[0] for reason in skipped.values())
    by_id = {record["id"]: expected for record, expected in rows}
    for raw in sent:
        story = validate(raw, time.time())  # what ingest does next: it must not reject what was sent
        assert isinstance(story, Story), story
        expected = by_id[story.id]
        assert story.published_at == expected["published_at"], (json.loads(raw)["published_at"], story.published_at)
        assert story.published_at_source == "source"
        assert story.tickers == expected["tickers"]
    assert skipped == {}  # and these stories are all good, so all of them are sent


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(stories(), min_size=1, max_size=6), dialects)
def test_good_stories_in_any_csv_dialect_are_sent_and_kept(capsys: pytest.CaptureFixture[str],
                                                           generated: list[tuple[dict, dict]], dialect: dict) -> None:
    rows = [({"id": f"s-{n}", **record}, expected) for n, (record, expected) in enumerate(generated)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "news.csv"
        path.write_bytes(csv_bytes([record for record, _ in rows], dialect))
        code, sent, skipped = run_produce(path, capsys)
    assert code == 0
    check(rows, sent, skipped)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(stories(), min_size=1, max_size=6), st.booleans(), st.sampled_from(["\n", "\r\n"]))
def test_good_stories_as_jsonl_are_sent_and_kept(capsys: pytest.CaptureFixture[str], generated: list[tuple[dict, dict]],
                                                 bom: bool, newline: str) -> None:
    rows = [({"id": f"j-{n}", **record}, expected) for n, (record, expected) in enumerate(generated)]
    text = newline.join(json.dumps(record) for record, _ in rows) + newline
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "news.jsonl"
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
        code, sent, skipped = run_produce(path, capsys)
    assert code == 0
    check(rows, sent, skipped)


# --- feeds through the scraper -------------------------------------------------------------------

GUIDS = st.sampled_from(["unique", "placeholder", "none"])
LINKS = st.sampled_from(["unique", "homepage", "none"])


@st.composite
def feed_items(draw: st.DrawFn) -> tuple[dict, str | None]:
    """(the item's parts, the published_at the scraper must send or None when the date is unreadable)."""
    moment = draw(moments)
    written = draw(st.one_of(
        st.builds(_rfc2822, st.just(moment), st.sampled_from(sorted(ZONES)), st.booleans()),
        st.just(moment.strftime("%a, %d %b %Y %H:%M:%S %z")),
        st.just(moment.strftime("%Y/%m/%d %H:%M:%S")),
        st.just(moment.isoformat()),
        st.sampled_from(["yesterday", "27th of Brumaire", "2026-13-45", "Fri, 27 Nov 2026 25:99:00 GMT"]),
    ))
    readable = not any(junk in written for junk in ("yesterday", "Brumaire", "-13-", "25:99"))
    ticker = draw(st.one_of(st.none(), tickers))
    item = {"headline": draw(headlines), "date": written, "guid": draw(GUIDS), "link": draw(LINKS),
            "cashtag": None if ticker is None else ticker[1]}
    return item, moment.isoformat() if readable else None


def feed_xml(items: list[dict]) -> bytes:
    parts = []
    for n, item in enumerate(items):
        cashtag = f" ${item['cashtag']}" if item["cashtag"] and item["cashtag"].isalpha() else ""
        xml = f"<title>{item['headline']} {n}{cashtag}</title><pubDate>{item['date']}</pubDate>"
        if item["guid"] != "none":
            xml += f'<guid isPermaLink="false">{"N/A" if item["guid"] == "placeholder" else f"g-{n}"}</guid>'
        if item["link"] != "none":
            xml += f"<link>https://wire.example/{'' if item['link'] == 'homepage' else n}</link>"
        parts.append(f"<item>{xml}</item>")
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Wire</title>'
            + "".join(parts) + "</channel></rss>").encode()


@pytest.fixture(scope="module")
def feed_server() -> Iterator[FeedServer]:
    with serve() as server:
        yield server


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(feed_items(), min_size=1, max_size=6))
def test_every_feed_item_is_sent_once_or_skipped_with_a_reason(feed_server: FeedServer,
                                                                generated: list[tuple[dict, str | None]]) -> None:
    items = [item for item, _ in generated]
    path = f"/feed-{uuid.uuid4().hex}"
    feed_server.routes[path] = Route(feed_xml(items))
    sent: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, scrape.make_client(Policy()) as client, \
            SeenStore(Path(tmp) / "seen.sqlite") as store:
        first = poll_once(client, feed_server.url(path), store, sent.append, now=time.time())
        again = poll_once(client, feed_server.url(path), store, sent.append, now=time.time())
    # Every item has a distinct title, so every one is a story, sent once, whatever its guid and link.
    assert (first.new, first.skipped, first.error) == (len(items), 0, None), first
    assert (again.new, again.skips) == (0, {"already_sent": len(items)})
    assert len({r["id"] for r in sent}) == len(items)
    for record, (_, expected_date) in zip(sent, generated, strict=True):
        story = validate(json.dumps(record, ensure_ascii=False).encode(), time.time())
        assert isinstance(story, Story), story  # sent, so ingest must keep it
        assert record.get("published_at") == expected_date, record
        assert story.published_at_source == ("source" if expected_date else "received")
