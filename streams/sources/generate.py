"""A synthetic, reproducible stream of finance headlines, with planted surges, for demos, tests and benchmarks.

Time is simulated: `published_at` advances by Poisson arrivals at the configured rate, so a stream
of an hour's news is produced in a moment and the same seed always gives the same records. Every
surge is its own Poisson process with its own random generator, so planting a surge adds records
inside its window without changing the content or timing of the background stream around it;
the detector under test must find exactly what was planted.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import re
import string
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.sources import catalog
from streams.sources.catalog import COMPANIES, IPO_CANDIDATES, SENTIMENTS, TOPICS, Company
from streams.sources.kafka_sink import SinkError
from streams.sources.output import add_output_arguments, open_sink
from streams.usage import UsageError, positive
from streams.validation import MAX_ID_CHARS

# Where simulated time starts when the caller gives no start: fixed, so a seed fixes every byte.
EPOCH = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
BODY_PROBABILITY = 0.4
SURGE_FORM = "topic=Earnings,start=10m,duration=5m,rate=2/s[,sentiment=negative][,ticker=ACME]"

_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*(ms|s|sec|m|min|h)?")
_RATE = re.compile(r"(\d+(?:\.\d*)?)\s*(?:/\s*(s|sec|m|min|h))?")
_TICKER = re.compile(r"[A-Z][A-Z0-9.]{0,9}")


@dataclass(frozen=True)
class Surge:
    """Extra news of one topic and sentiment (optionally about one ticker) inside a time window."""

    topic: str
    start: float  # seconds from stream start
    duration: float
    rate: float  # extra records per second during the surge
    sentiment: str = "negative"
    ticker: str | None = None

    def __post_init__(self) -> None:
        if self.topic not in TOPICS:
            raise ValueError(f"unknown topic {self.topic!r}; known topics: {'; '.join(TOPICS)}")
        if self.sentiment not in SENTIMENTS:
            raise ValueError(f"unknown sentiment {self.sentiment!r}; use one of {', '.join(SENTIMENTS)}")
        if self.start < 0 or self.duration <= 0 or self.rate <= 0:
            raise ValueError("start must be >= 0 and duration and rate > 0")
        if self.ticker is not None:
            if not _TICKER.fullmatch(self.ticker):
                raise ValueError(f"bad ticker {self.ticker!r}: a surge ticker is an upper-case letter, then up to 9 "
                                 "upper-case letters, digits or '.', e.g. ACME or BRK.B")
            if not _COMPILED[self.topic][self.sentiment].company:
                raise ValueError(f"{self.topic} has no {self.sentiment} headlines about a company; drop the ticker")


@dataclass(frozen=True)
class GeneratedItem:
    record: dict[str, Any]
    topic: str
    sentiment: str
    surge: bool
    offset: float  # simulated seconds since the stream started; what --realtime paces by


def _seconds(text: str, what: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"bad {what} {text!r}; use a number with s, m or h, e.g. 90s, 10m, 1.5h")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _per_second(text: str) -> float:
    match = _RATE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"bad rate {text!r}; use records per s, m or h, e.g. 2/s or 30/m")
    return float(match.group(1)) / _UNITS[match.group(2) or "s"]


def parse_surge(spec: str) -> Surge:
    """`topic=Earnings,start=10m,duration=5m,rate=2/s[,sentiment=negative][,ticker=ACME]` -> Surge."""
    fields: dict[str, str] = {}
    try:
        for part in spec.split(","):
            name, sep, value = part.partition("=")
            name = name.strip().lower()
            if not sep or not value.strip():
                raise ValueError(f"{part.strip()!r} is not name=value")
            if name not in ("topic", "start", "duration", "rate", "sentiment", "ticker"):
                raise ValueError(f"unknown field {name!r}")
            if name in fields:
                raise ValueError(f"{name} given twice")
            fields[name] = value.strip()
        missing = [name for name in ("topic", "start", "duration", "rate") if name not in fields]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        topic = {t.lower(): t for t in TOPICS}.get(fields["topic"].lower(), fields["topic"])
        return Surge(
            topic=topic,
            start=_seconds(fields["start"], "start"),
            duration=_seconds(fields["duration"], "duration"),
            rate=_per_second(fields["rate"]),
            sentiment=fields.get("sentiment", "negative").lower(),
            ticker=fields["ticker"].upper() if "ticker" in fields else None,
        )
    except ValueError as exc:
        raise ValueError(f"bad surge {spec!r}: {exc}; expected {SURGE_FORM}") from None


# --- content -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    text: str
    names: frozenset[str]
    social: bool  # cashtag post rather than a wire headline


@dataclass(frozen=True)
class _Choices:
    all: tuple[_Template, ...]
    company: tuple[_Template, ...]  # the ones that name a company: the only ones a ticker surge can use


def _compile(text: str) -> _Template:
    names = frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)
    return _Template(text, names, text.startswith("$"))


def _choices(texts: Sequence[str]) -> _Choices:
    compiled = tuple(_compile(text) for text in texts)
    return _Choices(compiled, tuple(t for t in compiled if t.names & {"company", "ticker"}))


_COMPILED: dict[str, dict[str, _Choices]] = {
    topic: {sentiment: _choices(texts) for sentiment, texts in by_sentiment.items()}
    for topic, by_sentiment in catalog.TEMPLATES.items()
}
_BY_TICKER = {company.ticker: company for company in COMPANIES + IPO_CANDIDATES}
_SECTORS = tuple(sorted({company.sector for company in COMPANIES}))


def _pool(topic: str) -> tuple[Company, ...]:
    if topic == "IPO":
        return IPO_CANDIDATES
    sectors = catalog.TOPIC_SECTORS.get(topic)
    return tuple(c for c in COMPANIES if sectors is None or c.sector in sectors)


_POOLS = {topic: _pool(topic) for topic in TOPICS}


class _Fields(dict[str, str]):
    """Template values made on first use, so a template only consumes the randomness it needs."""

    def __init__(self, rng: random.Random, when: datetime, values: dict[str, str]) -> None:
        super().__init__(values)
        self.rng = rng
        self.when = when

    def __missing__(self, key: str) -> str:
        value = _MAKERS[key](self)
        self[key] = value
        return value


def _pick(options: Sequence[str]) -> Callable[[_Fields], str]:
    return lambda f: f.rng.choice(options)


def _target_lo(f: _Fields) -> str:
    return str(int(int(f["target_hi"]) * f.rng.uniform(0.7, 0.92)) // 5 * 5)


_MAKERS: dict[str, Callable[[_Fields], str]] = {
    "pct": lambda f: f"{f.rng.uniform(1.5, 14.0):.1f}",
    "pct_small": lambda f: f"{f.rng.uniform(0.3, 2.5):.1f}",
    "bp": _pick(("25", "50", "75")),
    "amount": lambda f: f"{f.rng.uniform(0.5, 40.0):.1f}",
    "eps": lambda f: f"{f.rng.uniform(0.2, 6.0):.2f}",
    "beat": lambda f: f"{f.rng.uniform(0.02, 0.6):.2f}",
    "target_hi": lambda f: str(f.rng.randrange(60, 600, 5)),
    "target_lo": _target_lo,
    "price": lambda f: str(f.rng.randrange(20, 900)),
    "quarter": _pick(("Q1", "Q2", "Q3", "Q4")),
    "year": lambda f: str(f.when.year),
    "next_year": lambda f: str(f.when.year + 1),
    "maturity": lambda f: str(f.when.year + f.rng.randint(3, 30)),
    "units": lambda f: f"{f.rng.randrange(10, 900) * 1000:,}",
    "yield_pct": lambda f: f"{f.rng.uniform(3.5, 5.2):.2f}",
    "dividend": lambda f: f"{f.rng.uniform(0.1, 2.5):.2f}",
    "streak": lambda f: str(f.rng.randint(5, 19)),
    "oil_price": lambda f: f"{f.rng.uniform(62, 95):.0f}",
    "gold_price": lambda f: f"{f.rng.uniform(1900, 2600):,.0f}",
    "ipo_low": lambda f: str(f.rng.randint(12, 30)),
    "ipo_high": lambda f: str(int(f["ipo_low"]) + f.rng.randint(2, 4)),
    "cpi": lambda f: f"{f.rng.uniform(2.0, 6.0):.1f}",
    "months": lambda f: str(f.rng.randint(3, 18)),
    "jobs": lambda f: str(f.rng.randrange(150, 400, 5)),
    "sector": _pick(_SECTORS),
    "firm": _pick(catalog.FIRMS),
    "bank": _pick(catalog.BANKS),
    "official": _pick(catalog.OFFICIALS),
    "person": _pick(catalog.PEOPLE),
    "city": _pick(catalog.CITIES),
    "country": _pick(catalog.COUNTRIES),
    "currency": _pick(catalog.CURRENCIES),
    "pair": _pick(catalog.PAIRS),
    "index": _pick(catalog.INDEXES),
    "metal": _pick(catalog.METALS),
    "crude": _pick(catalog.CRUDES),
    "region": _pick(catalog.REGIONS),
    "agency": _pick(catalog.AGENCIES),
    "rater": _pick(catalog.RATERS),
    "tenor": _pick(catalog.TENORS),
    "month": _pick(catalog.MONTHS),
}


def _company(ticker: str) -> Company:
    """A surge may name a ticker outside the catalogue; it still gets a plausible company name."""
    return _BY_TICKER.get(ticker) or Company(f"{ticker.title()} Holdings", ticker, "diversified")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _record(
    rng: random.Random, ident: str, n: int, when: datetime, topic: str, sentiment: str, ticker: str | None
) -> dict[str, Any]:
    choices = _COMPILED[topic][sentiment]
    template = rng.choice(choices.company if ticker else choices.all)
    fields = _Fields(rng, when, {})
    tickers: list[str] = []
    if template.names & {"company", "ticker", "company2", "ticker2"}:
        first = _company(ticker) if ticker else rng.choice(_POOLS[topic])
        fields.update(company=first.name, ticker=first.ticker, sector=first.sector)
        tickers.append(first.ticker)
        if template.names & {"company2", "ticker2"}:
            second = rng.choice([c for c in COMPANIES if c.ticker != first.ticker])
            fields.update(company2=second.name, ticker2=second.ticker)
            tickers.append(second.ticker)
    text = template.text.format_map(fields)
    headline = text[0].upper() + text[1:]  # "{index} closes at record high" -> "The Nasdaq ..."
    record: dict[str, Any] = {"id": ident}
    if template.social:
        handle = rng.choice(catalog.SOCIAL_HANDLES)
        record.update(
            source=handle,
            headline=headline,
            url=f"https://{catalog.SOCIAL_DOMAIN}/{handle[1:]}/status/{rng.getrandbits(56)}",
            style="social",
        )
    else:
        name, domain = rng.choice(catalog.NEWS_SOURCES)
        record.update(source=name, headline=headline)
        if rng.random() < BODY_PROBABILITY:
            record["body"] = rng.choice(catalog.BODIES[sentiment, bool(tickers)]).format_map(fields)
        record["url"] = f"https://{domain}/{when:%Y/%m/%d}/{_slug(headline)}-{n}"
    record["published_at"] = when.isoformat(timespec="milliseconds")
    if tickers:
        record["tickers"] = tickers
    record["lang"] = "en"
    return record


# --- time --------------------------------------------------------------------------------------


@dataclass
class _Process:
    """One Poisson arrival process: the background news or one surge."""

    rng: random.Random
    rate: float
    end: float
    surge: Surge | None

    def after(self, t: float) -> float | None:
        nxt = t + self.rng.expovariate(self.rate)
        return nxt if nxt < self.end else None


def generate(
    count: int, rate: float, seed: int, surges: Sequence[Surge] = (), start: datetime | None = None
) -> Iterator[GeneratedItem]:
    """`count` records in simulated-time order, with ids `gen-{seed}-{start as epoch seconds}-{n}`.

    The start is part of the id so that replaying a stream repeats its ids (consumers drop the
    repeats) while a fresh run started later is new news, not a redelivery to be de-duplicated away.
    """
    if count < 0 or rate <= 0:
        raise ValueError("count must be >= 0 and rate > 0")
    if start is not None and start.tzinfo is None:
        raise ValueError("start must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    origin = EPOCH if start is None else start.astimezone(UTC)
    topics = list(catalog.TOPIC_WEIGHTS)
    topic_weights = list(catalog.TOPIC_WEIGHTS.values())
    processes = [_Process(random.Random(f"{seed}:background"), rate, float("inf"), None)]
    processes += [
        _Process(random.Random(f"{seed}:surge:{i}"), s.rate, s.start + s.duration, s) for i, s in enumerate(surges)
    ]
    heap: list[tuple[float, int]] = []
    for index, process in enumerate(processes):
        first = process.after(process.surge.start if process.surge else 0.0)
        if first is not None:
            heap.append((first, index))
    heapq.heapify(heap)
    for n in range(count):
        offset, index = heapq.heappop(heap)
        process = processes[index]
        rng = process.rng
        if process.surge is None:
            topic = rng.choices(topics, topic_weights)[0]
            sentiment = rng.choices(SENTIMENTS, catalog.SENTIMENT_WEIGHTS)[0]
            ticker = None
        else:
            topic, sentiment, ticker = process.surge.topic, process.surge.sentiment, process.surge.ticker
        when = origin + timedelta(seconds=offset)
        record = _record(rng, f"gen-{seed}-{int(origin.timestamp())}-{n}", n, when, topic, sentiment, ticker)
        yield GeneratedItem(record, topic, sentiment, process.surge is not None, offset)
        following = process.after(offset)
        if following is not None:
            heapq.heappush(heap, (following, index))


# --- hostile input -----------------------------------------------------------------------------

MALFORMED_KINDS: tuple[str, ...] = (
    "broken_json",
    "invalid_utf8",
    "not_an_object",
    "missing_text",
    "empty_text",
    "headline_not_string",
    "body_not_string",
    "oversized",
    "overlong_id",
    "control_chars_only",
)
OVERSIZED_BYTES = 200 * 1024


def _hostile(kind: str, rng: random.Random, n: int) -> bytes:
    ident = f"bad-{n}"

    def dump(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    if kind == "broken_json":
        return rng.choice((b'{"id":"%s","source":"x","headline":"Acme', b"{'headline': 'single quotes'}", b"{,}"))
    if kind == "invalid_utf8":
        return b'{"id":"' + ident.encode() + b'","source":"x","headline":"Acme \xff\xfe shares \xc3\x28 fall"}'
    if kind == "not_an_object":
        return dump(rng.choice((["Acme shares fall"], "Acme shares fall", 42, None, True)))
    if kind == "missing_text":
        return dump({"id": ident, "source": "Finwire"})
    if kind == "empty_text":
        return dump({"id": ident, "source": "Finwire", "headline": "", "body": "   "})
    if kind == "headline_not_string":
        return dump({"id": ident, "source": "Finwire", "headline": rng.randint(0, 10**6)})
    if kind == "body_not_string":  # the only text: beside a headline a body of another type costs only itself
        return dump({"id": ident, "source": "Finwire", "body": {"text": "Acme"}})
    if kind == "oversized":
        return dump({"id": ident, "source": "Finwire", "headline": "A" * OVERSIZED_BYTES})
    if kind == "overlong_id":
        # (A date of any kind, or none, costs only the date: the receive time stands in. An id too long
        # to be one is the story's key, so it costs the story.)
        return dump({"id": ident + "-" + "x" * (MAX_ID_CHARS + rng.randint(1, 100)), "source": "Finwire",
                     "headline": "Acme shares fall"})
    if kind == "control_chars_only":
        return dump({"id": ident, "source": "Finwire", "headline": "\x00\x01\x07\x1b\x7f", "body": "\u200b\t\r\n"})
    raise AssertionError(f"no hostile value for kind {kind!r}")


def malformed_with_kinds(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """Hostile `news.raw` values, cycling through MALFORMED_KINDS so any `count` >= 10 has every kind."""
    rng = random.Random(f"{seed}:malformed")
    for n in range(count):
        kind = MALFORMED_KINDS[n % len(MALFORMED_KINDS)]
        yield kind, _hostile(kind, rng, n)


def malformed(count: int, seed: int) -> Iterator[bytes]:
    return (value for _, value in malformed_with_kinds(count, seed))


# --- command line ------------------------------------------------------------------------------

PROGRESS_EVERY = 2.0  # seconds of wall time between progress lines


def _surge_arg(text: str) -> Surge:
    try:
        return parse_surge(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _start_arg(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time, e.g. 2024-01-02T14:30:00Z") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    try:  # year 1 at +01:00 is a datetime that no UTC datetime can hold
        when.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range in UTC; write a time from 1970 on, e.g. "
                                         "2024-01-02T14:30:00Z") from None
    return when


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a synthetic stream of finance headlines, optionally with planted surges",
        description="Synthetic news.raw records in simulated time; the same seed and --start give the same records.",
    )
    parser.add_argument("--count", type=positive(int), default=1000, help="records in total (default 1000)")
    parser.add_argument("--rate", type=positive(float), default=5.0, help="background records per second (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--surge", type=_surge_arg, action="append", default=[], metavar="SPEC", help=f"repeatable: {SURGE_FORM}"
    )
    parser.add_argument(
        "--start",
        type=_start_arg,
        default=None,
        help="published_at of the stream start, ISO-8601 (default: so that the stream ends now, its span "
        "being COUNT/RATE simulated seconds; with --realtime, now). A stream published in the future is "
        "clamped to the receive time by the worker's validation, which would flatten its surges",
    )
    parser.add_argument("--realtime", action="store_true", help="send each record when its published_at comes round")
    add_output_arguments(parser, kafka_by_default=False)
    parser.set_defaults(handler=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    span = args.count / args.rate  # simulated seconds, before the surges add theirs
    for surge in args.surge:
        if surge.start >= span:
            raise UsageError(f"generate: the surge starting at {surge.start:g}s comes after the stream ends: "
                             f"{args.count} records at {args.rate:g}/s span {span:g} simulated seconds; raise "
                             "--count or lower the surge's start")
    now = datetime.now(UTC).replace(microsecond=0)
    try:  # the stream's first and last dates must be dates: --rate 1e-300 spans more than any calendar
        start = args.start or (now if args.realtime else now - timedelta(seconds=span))
        start + timedelta(seconds=span)
    except OverflowError:
        raise UsageError(f"generate: {args.count} records at --rate {args.rate:g}/s span {span:g} simulated "
                         "seconds, past the last date there is; raise --rate or lower --count (or an earlier "
                         "--start)") from None
    began = time.monotonic()
    sent = planted = 0
    last_report = began
    try:
        with open_sink(args) as sink:
            for item in generate(args.count, args.rate, args.seed, args.surge, start):
                if args.realtime:
                    time.sleep(max(0.0, began + item.offset - time.monotonic()))
                sink.send(item.record)
                sent += 1
                planted += item.surge
                if time.monotonic() - last_report >= PROGRESS_EVERY:
                    last_report = time.monotonic()
                    print(f"generate: {sent}/{args.count} records ({planted} surge)", file=sys.stderr)
    except SinkError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        print(f"generate: interrupted after {sent} records", file=sys.stderr)
        return 130
    print(
        f"generate: {sent} records ({planted} surge) in {time.monotonic() - began:.2f}s",
        file=sys.stderr,
    )
    return 0
