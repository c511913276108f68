"""Validate and normalise one `news.raw` value. Pure: bytes in, a clean story or a rejection out.

Every way a record can be wrong maps to one of a fixed set of reason codes, so the dead-letter
metric has bounded labels and an operator can group failures; the message adds the detail.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from alerts.records import finite_number, iso
from models.text import DEFAULT_STYLE, STYLES, cashtags, clean, style_name, tidy
from models.tickers import is_ticker, normalise_ticker

MAX_RECORD_BYTES = 64 * 1024
MAX_HEADLINE_CHARS = 1_000
MAX_BODY_CHARS = 20_000
MAX_ID_CHARS = 200
MAX_TICKERS = 50
# A story nests two levels; the limit only has to be far below Python's recursion limit, because
# json.loads recurses and a RecursionError depends on how deep the caller's stack already is: the
# same record must get the same verdict in the agent and in a test.
MAX_JSON_DEPTH = 64
# A publication time further ahead of the receive time than this is replaced by the receive time
# (streams/agents/ingest.py `received_at`): a wrong clock at one source must not close everyone's
# time windows early.
MAX_FUTURE_SKEW = 300.0

# ISO 4217 codes people write as cashtags ($USD weakens): a currency, not a listed company.
CURRENCIES = frozenset(
    ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "CNY", "CNH", "HKD", "SGD", "SEK", "NOK", "DKK", "INR", "KRW", "BRL", "MXN", "ZAR", "RUB", "TRY", "PLN", "CZK", "HUF", "ILS", "AED", "SAR", "THB", "TWD", "IDR", "MYR", "PHP", "VND", "ARS", "CLP", "COP", "PEN", "NGN", "EGP", "KWD", "QAR"]
)
_STRING_FIELDS = ("headline", "body", "url", "lang")


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    message: str


# How much of a body the model reads when a story has no headline (headlines are the model's input;
# a body's opening sentences are the nearest thing to one).
BODY_CHARS_READ = 500


def model_text(record: dict[str, Any]) -> str:
    """The text the model classifies for a `news.clean` or `news.scored` record: its headline, else
    the first BODY_CHARS_READ characters of its body ("" for a foreign record with neither as text).
    The monitor keeps this text as the story's headline, so the case an analyst reviews, and the
    correction that becomes training data, hold the text that was labelled."""
    headline, body = record.get("headline"), record.get("body")
    if isinstance(headline, str) and headline:
        return headline
    return body[:BODY_CHARS_READ] if isinstance(body, str) else ""


def model_style(record: dict[str, Any]) -> str | None:
    """The style the model reads a `news.clean` record in (models.text.STYLES), None for a record
    from before stories carried one (the model's default applies)."""
    style = record.get("style")
    return style if style in STYLES else None


@dataclass(frozen=True, slots=True)
class Story:
    """A validated, normalised story as it travels on `news.clean` and into `news.scored`."""

    id: str
    source: str
    headline: str
    body: str | None
    url: str | None
    published_at: str
    tickers: list[str] = field(default_factory=list)
    lang: str | None = None
    received_at: float = 0.0
    # "source": published_at is the story's own date; "received": it had none, or none that could be
    # read (or one too far in the future), so the receive time stands in.
    published_at_source: str = "source"
    truncated: bool = False  # the headline or body was cut at a word boundary to fit its limit
    # Tickers the story named that are not tickers (models/tickers.py; docs/INPUTS.md states the rule):
    # dropped (and counted), the story kept.
    dropped_tickers: list[str] = field(default_factory=list)
    # Fields the story sent that could not be kept (`url 'N/A': expected an absolute http(s) URL`, `body: a
    # list is no string`): dropped, the story kept, and named so that `produce` can report them.
    dropped_fields: list[str] = field(default_factory=list)
    # How the model reads it (models.text.STYLES): "social" for a post from social media, which the
    # source declares; newswire otherwise.
    style: str = DEFAULT_STYLE

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        del data["dropped_tickers"], data["dropped_fields"]
        return data

    @property
    def text(self) -> str:
        """What the classifier reads: the headline, or the body's opening when there is none."""
        return self.headline or (self.body or "")[:500]


def stable_id(source: str, url: str | None, headline: str, body: str | None = None, published: object = None) -> str:
    """The id of a story sent without one, the same each time the story is sent (classify drops a
    repeated id as a duplicate). With a url: a hash of the source, url and headline. Without one the
    url cannot tell stories apart, so the text kept (the headline, else the body) and the
    publication time as sent stand in: body-only stories, and two stories under one headline at two
    times, are stories of their own. (A url-less story without a date keeps the id it always had.)"""
    # The text as `clean` has it, as ids were made before stored text kept compatibility forms (`…`,
    # `™`): a story re-sent across an upgrade keeps its id, and classify still drops the repeat.
    parts = [clean(source), url_identity(url) if url else "", clean(headline if url else headline or body or "")]
    if url is None and published not in (None, ""):
        parts.append(str(published))  # last: clean leaves no \x1f in the others, so no two inputs meet
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"h-{digest[:32]}"


# A number as text: an epoch in a string.
NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december")
# Zone names feeds use beside numeric offsets, each naming one offset; anything else is unreadable,
# never guessed.
_ZONES = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 1, "CET": 1, "MET": 1, "CEST": 2,
    "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "SGT": 8, "HKT": 8, "AWST": 8, "JST": 9, "KST": 9,
    "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13, "EST": -5, "EDT": -4, "CDT": -5, "MST": -7,
    "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10,
}
# Names that feeds write for more than one zone: reading one as any of them could put a story hours
# off, so the date is unreadable and the receive time stands in (the message names the readings).
_AMBIGUOUS_ZONES = {
    "CST": "US Central -0600, China +0800 or Cuba -0500",
    "IST": "India +0530, Irish +0100 or Israel +0200",
    "BST": "British Summer +0100 or Bangladesh +0600",
}
# A zone after a clock or date, optional: ` +0200`, `+02:00`, ` GMT+2`, ` CET`, `Z`.
_ZONE = r"(?: ?(?:(?:GMT|UTC|UT) ?)?([+-]\d{1,2}(?::?\d{2})?)| ?([A-Za-z]{1,5}))?"
# The clock and zone after a written date, all optional: ` 09:30`, `, 9:30:15 AM`, ` at 2:05 p.m. EST`,
# ` 09:30:00 +0200 (CEST)`, ` 16:45 GMT+2`, `T09:30`. Whitespace is collapsed to single spaces first.
_CLOCK = (r"(?:,?(?: |T)(?:at )?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?: ?([AaPp])\.?[Mm]\.?)?)?"
          + _ZONE + r"(?: ?\([^)]*\))?$")
_WEEKDAY = r"(?:[A-Za-z]{3,9}\.?,? )?"
# RFC 2822/5322 (and RFC 822's two-digit years) and the day-first forms people write: `30 Nov 2026`,
# `30-Nov-2026`, `Mon, 30 Nov 2026 09:30:00 GMT`.
_DAY_MONTH = re.compile(_WEEKDAY + r"(\d{1,2})(?:st|nd|rd|th)?[ -]([A-Za-z]{3,9})\.?,?[ -](\d{4}|\d{2})" + _CLOCK)
# Month first, as US wires and spreadsheets write it: `Nov 30, 2026`, `November 30, 2026 9:30 AM EST`.
_MONTH_DAY = re.compile(_WEEKDAY + r"([A-Za-z]{3,9})\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})" + _CLOCK)
# Year first with / or . (`2026/11/27 15:07:41`, `2026.11.27`), or - with a clock ISO 8601 does not read
# (`2026-11-27 3:07 PM`).
_YEAR_FIRST = re.compile(r"^(\d{4})([/.-])(\d{1,2})\2(\d{1,2})" + _CLOCK)
# Day and month in numbers before the year: `30/11/2026`, `11/30/2026`, `30.11.2026 14:05`. Read only
# when the order is certain: a dot is day first (as Europe writes it), a part over 12 is the day.
_NUMBERS_FIRST = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})" + _CLOCK)
_MAX_TIME_CHARS = 100  # no date form is longer; bounds the patterns' work on a hostile value


# A number before this (1990-01-01, in seconds) is not a feed's or a desk's Unix time but something a
# spreadsheet wrote in the date column: an Excel serial date (46356.5), YYYYMMDD (20261130) or a year.
EPOCH_FLOOR = 631152000.0


def _from_epoch(value: float) -> datetime:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude: each unit's
    range up to the year 5000 lies below the next unit's range from 1973 on. ValueError below 1990."""
    magnitude = abs(value)
    divisor = 1.0 if magnitude < 1e11 else 1e3 if magnitude < 1e14 else 1e6 if magnitude < 1e17 else 1e9
    if value / divisor < EPOCH_FLOOR:
        raise ValueError(f"{value:.15g} is no Unix time after 1990 (an Excel serial date, YYYYMMDD or a year?); "
                         "write ISO 8601, e.g. 2026-11-30T14:05:00Z")
    return datetime.fromtimestamp(value / divisor, UTC)


def _month(name: str) -> int:
    lowered = name.lower()
    month = next((i for i, full in enumerate(_MONTH_NAMES, start=1) if full.startswith(lowered)), None)
    if month is None:
        raise ValueError(f"unknown month {name!r}")
    return month


def _zone(offset: str | None, name: str | None) -> timezone:
    """`+0200`, `+02:00`, `-5`, `+530` or a zone name from _ZONES; UTC when neither is given."""
    if offset:
        digits = offset[1:].replace(":", "")
        hours, minutes = (int(digits), 0) if len(digits) <= 2 else (int(digits[:-2]), int(digits[-2:]))
        if minutes >= 60 or hours * 60 + minutes > 14 * 60:
            raise ValueError(f"offset {offset!r} out of range")
        total = hours * 60 + minutes
        return timezone(timedelta(minutes=-total if offset[0] == "-" else total))
    if name:
        if name.upper() in _AMBIGUOUS_ZONES:
            raise ValueError(f"time zone {name!r} could be {_AMBIGUOUS_ZONES[name.upper()]}; write the offset "
                             "instead of the name")
        if name.upper() not in _ZONES:
            raise ValueError(f"unknown time zone {name!r}")
        return timezone(timedelta(hours=_ZONES[name.upper()]))
    return UTC


class DateOnly(ValueError):
    """A date without a time of day: midnight is not when the story was published, so such a value is
    no publication time (a live story would be hours late, a replay would put a day into one minute)."""

    def __init__(self, day: date) -> None:
        super().__init__(f"{day.isoformat()} has no time of day, and midnight is not the story's time; write "
                         f"the time ({day.isoformat()}T14:05:00Z)")


def _at(year: int, month: int, day: int, clock: tuple[str | None, ...]) -> datetime:
    """The date at a _CLOCK match's groups (hour, minute, second, a/p, offset, zone name); DateOnly
    (a ValueError) without an hour."""
    hour, minute, second, ampm, offset, zone = clock
    if hour is None:
        raise DateOnly(date(year, month, day))  # date() first: an impossible date says so
    hours = int(hour or 0)
    if ampm:
        if not 1 <= hours <= 12:
            raise ValueError(f"hour {hours} with {ampm}m")
        hours = hours % 12 + (12 if ampm.lower() == "p" else 0)
    return datetime(year, month, day, hours, int(minute or 0), int(second or 0), tzinfo=_zone(offset, zone))


def _written(text: str) -> datetime | None:
    """A date as feeds, wires and spreadsheets write it (the patterns above); None when no pattern
    matches, ValueError when one matches but the date is impossible or its order is not certain."""
    if match := _DAY_MONTH.match(text):
        day, name, year = match.groups()[:3]
        full_year = int(year) if len(year) == 4 else (2000 + int(year) if int(year) < 50 else 1900 + int(year))
        return _at(full_year, _month(name), int(day), match.groups()[3:])
    if match := _MONTH_DAY.match(text):
        name, day, year = match.groups()[:3]
        return _at(int(year), _month(name), int(day), match.groups()[3:])
    if match := _YEAR_FIRST.match(text):
        year, _, month, day = match.groups()[:4]
        return _at(int(year), int(month), int(day), match.groups()[4:])
    if match := _NUMBERS_FIRST.match(text):
        first, separator, second, year = match.groups()[:4]
        a, b = int(first), int(second)
        if separator == "." or a > 12 or a == b:
            day, month = a, b
        elif b > 12:
            day, month = b, a
        else:
            raise ValueError(f"{first}{separator}{second}{separator}{year} could be day {a} of month {b} or "
                             f"day {b} of month {a}; write ISO 8601 ({year}-{b:02d}-{a:02d})")
        return _at(int(year), month, day, match.groups()[4:])
    if match := _COMPACT.match(text):
        return _compact(match)
    return None


# YYYYMMDD or YYYYMMDDHHMMSS, as spreadsheets and databases write a date without separators
# (`20261130`, `20261130140500`), then an optional zone. No Unix time since 1990 has 8 digits, and 14
# digits would be milliseconds after the year 2286, no news's date: neither can be an epoch.
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2}))?" + _ZONE + "$")


def _compact(match: re.Match[str]) -> datetime:
    """A _COMPACT match's moment; ValueError for an impossible one (20261399, hour 25)."""
    year, month, day, hour, minute, second = match.groups()[:6]  # no hour: DateOnly
    return _at(int(year), int(month), int(day), (hour, minute, second, None, *match.groups()[6:]))


def _from_number(value: float) -> datetime:
    """A YYYYMMDD or YYYYMMDDHHMMSS number (`_COMPACT`, UTC), else an epoch (`_from_epoch`)."""
    digits = f"{value:.0f}" if value.is_integer() else ""
    if match := _COMPACT.match(digits):
        try:
            return _compact(match)
        except DateOnly:
            raise
        except ValueError as exc:
            if len(digits) == 14:  # no epoch either (see _COMPACT): say what it is not
                raise ValueError(f"{digits} is no YYYYMMDDHHMMSS date and time ({exc})") from None
            # 20261399 is no date: the epoch's error says what to write
    return _from_epoch(value)


def _mongo_date(value: dict[Any, Any]) -> object:
    """What a mongoexport `{"$date": ...}` (MongoDB Extended JSON) holds: an ISO 8601 string, or
    milliseconds as a number or as `{"$numberLong": "..."}`; any other object is no date (ValueError)."""
    inner = value.get("$date") if len(value) == 1 else None
    if isinstance(inner, dict) and len(inner) == 1 and isinstance(inner.get("$numberLong"), str):
        return float(inner["$numberLong"]) if NUMBER.match(inner["$numberLong"]) else None
    if isinstance(inner, str | int | float):
        return inner
    raise ValueError('an object is no time; a date from mongoexport is {"$date": "2026-11-30T14:05:00Z"}')


def _iso_day(text: str) -> date | None:
    """The day an ISO 8601 date without a time names (`2026-11-30`, `2026-W48-1`), else None."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# An ISO 8601 date whose clock is written with dots or commas (`2026-03-04 09.30`, `23,59`), as several
# locales write the time of day: datetime.fromisoformat read `09.30` as 09:00:00.300, half an hour early.
_DOTTED_CLOCK = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ])(\d{2})([.,])(\d+)(?:\3(\d+))?(.*)$")
# ISO 8601's fraction of a minute (`09:30.5`, half a minute past): fromisoformat read it as half a second.
_MINUTE_FRACTION = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}[.,]\d")


def _colon_clock(text: str) -> str:
    """`text` with a dotted clock after an ISO date written with colons (`09.30.15` -> `09:30:15`);
    ValueError for an hour or a minute followed by any other fraction (ISO 8601's `09.5`, half past
    nine, and `09:30.5`, which fromisoformat misreads, or `14.5`: 14:05 or 14:30?)."""
    if _MINUTE_FRACTION.match(text):
        raise ValueError(f"{text[11:]} holds a fraction of a minute; write the time as HH:MM:SS")
    match = _DOTTED_CLOCK.match(text)
    if match is None:
        return text
    day, hour, separator, minute, second, rest = match.groups()
    if len(minute) != 2 or (second is not None and len(second) != 2):
        raise ValueError(f"{hour}{separator}{minute}{separator + second if second else ''} is no clock "
                         "(HH.MM or HH.MM.SS); write the time as HH:MM")
    return f"{day}{hour}:{minute}{':' + second if second is not None else ''}{rest}"


def parse_time(value: object) -> datetime:
    """A publication time from what sources send; ValueError when it cannot be read exactly.

    Accepted: ISO 8601 (a trailing Z allowed; naive times are UTC), RFC 2822/5322 as feeds and HTTP
    write it (zone as an offset, `GMT+2` or a common name; 12-hour clocks), dates written with a month
    name (`30 Nov 2026`, `Nov 30, 2026 9:30 AM`), YYYY/MM/DD and YYYY.MM.DD, DD/MM/YYYY or MM/DD/YYYY
    where the order is certain (`30/11/2026`, `11/30/2026`, `30.11.2026`; `03/11/2026` is a ValueError
    naming both readings), YYYYMMDD and YYYYMMDDHHMMSS (a zone may follow in a string), and epochs in
    seconds, milliseconds, microseconds or nanoseconds as numbers or numeric strings, and mongoexport's
    `{"$date": ...}` of any of these. Written dates take an optional clock and zone; without a zone
    they are UTC. The whole string must match: a prefix that looks like a date is not a date. A date
    without a time of day is no time (DateOnly), nor is a zone name that names several zones (CST).
    """
    if isinstance(value, dict):
        value = _mongo_date(value)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")  # noqa: TRY004 - callers treat every bad time alike
    if isinstance(value, int | float):
        if not finite_number(value):
            raise ValueError("not a finite number")
        return _from_number(float(value))
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - callers treat every bad time alike
            f"expected an ISO 8601 or RFC 2822 string or an epoch number, got {type(value).__name__}")
    text = " ".join(value.split())
    if not text:
        raise ValueError("empty")
    if len(text) > _MAX_TIME_CHARS:
        raise ValueError(f"{len(text)} characters is no date")
    if NUMBER.match(text):
        if "e" in text.lower():  # Excel's General format shows a 13-digit epoch as 1.77263E+12 and saves that
            raise ValueError(f"{text} is in scientific notation and may have lost digits (Excel shows long "
                             "numbers so); format the column as a number with 0 decimals, or as a date")
        return _from_number(float(text))
    iso = _colon_clock(text)
    try:
        parsed = datetime.fromisoformat(re.sub(r"[Zz]$", "+00:00", iso))
    except ValueError:
        parsed = _written(text)
        if parsed is None:
            raise ValueError("not ISO 8601, RFC 2822, a written date or an epoch number") from None
    else:
        if day := _iso_day(text):
            raise DateOnly(day)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:  # year 1 at +14:00, or 9999-12-31 at -14:00, is a datetime no UTC datetime can hold
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range in UTC") from None
    return parsed


def readable(stamp: object) -> bool:
    """Whether ingest reads this publication time (`parse_time`)."""
    try:
        parse_time(stamp)
    except (ValueError, OverflowError, OSError):
        return False
    return True


def unread_because(stamp: object, now: float) -> str:
    """Why ingest stamps a story with its receive time: parse_time's error, or a date outside the
    range ingest keeps (before 1970, or ahead of the clock at `now`, Unix seconds)."""
    try:
        moment = parse_time(stamp)
    except (ValueError, OverflowError, OSError) as exc:
        return str(exc)
    if moment.timestamp() < 0:
        return "before 1970"
    ahead = (moment.timestamp() - now) / 60
    naive = (isinstance(stamp, str) and not NUMBER.match(stamp.strip()) and moment.utcoffset() == timedelta(0)
             and not re.search(r"(?:Z|UTC|GMT|UT|[+-]\d\d(?::?\d\d)?)\s*$", stamp.strip(), re.IGNORECASE))
    return (f"{ahead:.0f} min ahead of this clock" + ("; a time without a zone is read as UTC: write its zone "
                                                      "(2026-11-30T14:05:00+01:00)" if naive else ""))


# Cells that spreadsheets and pandas write for "no value": such a field, or such a ticker, is missing.
MISSING = frozenset({"", "nan", "null", "none", "n/a", "#n/a", "na"})


def ticker_names(text: str) -> list[str]:
    """The tickers a text names, as a spreadsheet cell or a `"tickers"` string writes them: separated
    by commas, semicolons or line breaks (Excel's Alt+Enter), no-value markers left out. Not by
    spaces: `AAPL US Equity` is one terminal ticker and `BRK B` or `HOME DEPOT` no list, so a space
    never splits a text into guessed tickers; a name that is no ticker is dropped and counted."""
    return [name.strip() for name in re.split(r"[,;\r\n]", text) if name.strip().lower() not in MISSING]


def truncate_words(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at the last space in its final fifth when there is one."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ", limit - limit // 5)
    return (cut[:space] if space > 0 else cut[:limit]).rstrip()


def truncate_utf8_words(text: str, max_bytes: int) -> str:
    """`text` cut so its UTF-8 form fits `max_bytes`, at a word boundary where there is one."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    head = encoded[:max_bytes].decode("utf-8", errors="ignore")
    return truncate_words(head, len(head) - 1) if len(head) else head


def normalise_url(url: str) -> str:
    """Lower-case scheme and host, drop utm_* tracking parameters and the fragment (a place in the
    page); ValueError for anything but an absolute http(s) URL (`www.site/x`, `//site/x`, `/x` and
    `N/A` are not guessed at). The rest of the query stays as written, not decoded and re-encoded:
    `?12345` and `?id=1;sid=2` are what the site reads. A hashbang fragment (`#!/article/9`) is
    kept: a single-page site names its pages so."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError("expected an absolute http(s) URL such as https://news.example/a")
    query = "&".join(part for part in parts.query.split("&")
                     if not unquote_plus(part.partition("=")[0]).startswith("utm_"))
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, fragment))


def url_identity(url: str) -> str:
    """A normalised url as ids and feed link keys were first made from it: its query decoded and
    re-encoded (`?12345` as `?12345=`, `?p=1,2` as `?p=1%2C2`), its fragment left out. The stored url
    keeps the query as written; ids keep this form, so a story re-sent across that change keeps its
    id and classify still drops the repeat."""
    parts = urlsplit(url)
    query = urlencode(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether JSON text opens more than `limit` arrays/objects at once, counting outside strings."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


# JSON's \uXXXX escapes can spell half a surrogate pair; Python keeps it as a code point no UTF-8
# encoder (the tokenizer's, Kafka's serializer) accepts. Pairs are already joined by json.loads.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub_surrogates(value: Any) -> Any:
    """Every string inside `value` with lone surrogates replaced by U+FFFD, so one escaped half-pair
    costs a character, not the story (nor, in the model, its whole micro-batch)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [scrub_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {scrub_surrogates(key): scrub_surrogates(item) for key, item in value.items()}
    return value


def validate(value: bytes, received_at: float) -> Story | Rejection:
    """`received_at` is the Kafka record timestamp (epoch seconds), the fallback publication time."""
    if len(value) > MAX_RECORD_BYTES:
        return Rejection("oversized", f"record is {len(value)} bytes; the limit is {MAX_RECORD_BYTES}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("invalid_utf8", f"not UTF-8: {exc.reason} at byte {exc.start}")
    if nests_deeper_than(text, MAX_JSON_DEPTH):
        return Rejection("invalid_json", f"not JSON: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejection("invalid_json", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except ValueError as exc:  # an integer of more than 4,300 digits (sys.set_int_max_str_digits)
        return Rejection("invalid_json", f"not JSON: {exc}")
    if not isinstance(data, dict):
        return Rejection("not_object", f"expected a JSON object, got {type(data).__name__}")
    data = scrub_surrogates(data)
    if isinstance(data.get("source"), dict):  # NewsAPI: {"id": null, "name": "Reuters"}
        data["source"] = data["source"].get("name") or data["source"].get("id")
    for name in ("id", "source"):  # an odd one costs the field: the id is derived, the source "unknown"
        item = data.get(name)
        if isinstance(item, int) and not isinstance(item, bool):
            data[name] = str(item)  # pandas writes a column of whole numbers as numbers
        elif not isinstance(item, str):
            data[name] = None
    dropped_fields: list[str] = []  # one odd field costs that field, never the story
    for name in _STRING_FIELDS:
        item = data.get(name)
        if item is not None and not isinstance(item, str):
            dropped_fields.append(f"{name} must be a string, got {type(item).__name__}")
            data[name] = None

    headline = tidy(data.get("headline") or "")
    body = tidy(data.get("body") or "") or None
    if not headline and not body:
        if wrong := [why for why in dropped_fields if why.startswith(("headline ", "body "))]:
            return Rejection("wrong_type", f"{wrong[0]}, and the story has no other text")
        return Rejection("missing_text", "needs a non-empty headline or body")
    truncated = data.get("truncated") is True
    if len(headline) > MAX_HEADLINE_CHARS:
        headline, truncated = truncate_words(headline, MAX_HEADLINE_CHARS), True
    if body and len(body) > MAX_BODY_CHARS:
        body, truncated = truncate_words(body, MAX_BODY_CHARS), True

    url: str | None = None
    if data.get("url"):
        try:
            url = normalise_url(data["url"])
        except ValueError as exc:
            dropped_fields.append(f"url {data['url'][:100]!r}: {exc}")

    # Any value the story gives: one that is not a time (a list, a boolean, `2026-11-30` without a
    # time of day) is unreadable, and the receive time stands in (published_at_source "received").
    stamp = data.get("published_at")
    published: datetime | None = None
    if stamp is not None and stamp != "":
        try:
            published = parse_time(stamp)
        except (ValueError, OverflowError, OSError):
            published = None  # an unreadable date never costs the story: the receive time stands in

    # A ticker that cannot be read costs that ticker, never the story: a string, in place of the list or
    # in it (`["CTSO, FBKM"]`, a cell pasted into a list), names its tickers as a spreadsheet cell does
    # (`"AAPL; MSFT"`), and anything but strings is dropped and counted, by type.
    tickers = data.get("tickers")
    if not isinstance(tickers, list):
        tickers = [] if tickers is None else [tickers]
    tickers = [name for t in tickers for name in (ticker_names(t) if isinstance(t, str) else [t])]
    dropped: list[str] = [type(t).__name__ for t in tickers if not isinstance(t, str)]
    merged: dict[str, None] = {}
    named = [normalise_ticker(t) for t in tickers if isinstance(t, str) and t.strip().lower() not in MISSING]
    # A cashtag is a symbol without its exchange: `$BA` beside a named `BA.L` (BAE Systems in London)
    # is that listing, not Boeing's BA, so it adds nothing.
    listed = {t.partition(".")[0] for t in named if "." in t}
    named += [t for t in cashtags(headline) + cashtags(body or "") if t not in CURRENCIES and t not in listed]
    for ticker in named:
        if not is_ticker(ticker) or (ticker not in merged and len(merged) >= MAX_TICKERS):
            dropped.append(ticker[:20])
            continue
        merged.setdefault(ticker, None)

    # Before 1970 is no news feed's date but a default or a typo, and the monitor cannot place it
    # in a window (streams/agents/monitor.py): the receive time stands in, as for an unreadable date.
    if published is not None and not 0 <= published.timestamp() <= received_at + MAX_FUTURE_SKEW:
        published = None
    style = data.get("style")
    if isinstance(style, str) and style_name(style) in STYLES:
        style = style_name(style)
    else:
        if style not in (None, ""):
            dropped_fields.append(f"style {str(style)[:40]!r}: expected one of {', '.join(STYLES)}; read as {DEFAULT_STYLE}")
        style = DEFAULT_STYLE
    source = tidy(data.get("source") or "") or "unknown"
    story_id = tidy(data.get("id") or "")
    if len(story_id) > MAX_ID_CHARS:
        return Rejection("bad_id", f"id has {len(story_id)} characters; the limit is {MAX_ID_CHARS}")
    return Story(
        id=story_id or stable_id(source, url, headline, body, stamp),
        source=source[:200],
        headline=headline,
        body=body,
        url=url,
        published_at=iso(published or datetime.fromtimestamp(received_at, UTC)),
        tickers=list(merged),
        lang=tidy(data.get("lang") or "") or None,
        received_at=received_at,
        published_at_source="source" if published is not None else "received",
        truncated=truncated,
        dropped_tickers=dropped,
        dropped_fields=dropped_fields,
        style=style,
    )


def fit_record(record: dict[str, object]) -> dict[str, object]:
    """A source's record with its headline and body cut (at word boundaries) to the limits ingest keeps,
    and its body cut further if the encoded record would pass MAX_RECORD_BYTES; `truncated: true` when
    anything was cut. What is cut here is what ingest would cut, so the record a source sends is
    the story ingest keeps."""
    out = dict(record)
    for name, limit in (("headline", MAX_HEADLINE_CHARS), ("body", MAX_BODY_CHARS)):
        value = out.get(name)
        if isinstance(value, str) and len(tidy(value)) > limit:
            out[name], out["truncated"] = truncate_words(tidy(value), limit), True
    for _ in range(8):  # JSON escapes make the encoded size a little more than the text's: cut again
        size = len(json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        body = out.get("body")
        if size <= MAX_RECORD_BYTES or not isinstance(body, str) or not body:
            break
        room = len(body.encode("utf-8")) - (size - MAX_RECORD_BYTES) - 64  # 64: the flag, and some slack
        out["body"], out["truncated"] = truncate_utf8_words(body, max(0, room)), True
    return out
