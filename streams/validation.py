"""Validate and normalise one `news.raw` value. Pure: bytes in, a clean story or a rejection out.

Every way a record can be wrong maps to one of a fixed set of reason codes, so the dead-letter
metric has bounded labels and an operator can group failures; the message adds the detail.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from models.text import cashtags, clean

MAX_RECORD_BYTES = 64 * 1024
MAX_HEADLINE_CHARS = 1_000
MAX_BODY_CHARS = 20_000
MAX_ID_CHARS = 200
MAX_TICKERS = 50
# A story nests two levels; the limit only has to be far below Python's recursion limit, because
# json.loads recurses and a RecursionError depends on how deep the caller's stack already is: the
# same record must get the same verdict in the agent and in a test.
MAX_JSON_DEPTH = 64
# A publication time further ahead of the broker's clock than this is clamped to the broker's
# clock: a wrong clock at one source must not close everyone's time windows early.
MAX_FUTURE_SKEW = 300.0

REASONS = (
    "oversized", "invalid_utf8", "invalid_json", "not_object", "wrong_type", "missing_text",
    "field_too_long", "bad_timestamp", "bad_url", "bad_id", "bad_ticker", "internal_error",
)
_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
_STRING_FIELDS = ("id", "source", "headline", "body", "url", "lang", "published_at")


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    message: str


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

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @property
    def text(self) -> str:
        """What the classifier reads: the headline, or the body's opening when there is none."""
        return self.headline or (self.body or "")[:500]


def stable_id(source: str, url: str | None, headline: str) -> str:
    digest = hashlib.sha256("\x1f".join((source, url or "", headline)).encode("utf-8")).hexdigest()
    return f"h-{digest[:32]}"


def parse_time(value: object) -> datetime:
    """ISO-8601 (a trailing Z allowed) or epoch seconds/milliseconds; naive times are UTC."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")  # noqa: TRY004 - callers treat every bad time alike
    if isinstance(value, int | float):
        seconds = float(value) / (1000.0 if abs(value) > 1e11 else 1.0)
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"expected an ISO-8601 string or epoch number, got {type(value).__name__}")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalise_url(url: str) -> str:
    """Lower-case scheme and host, drop the fragment and utm_* tracking parameters."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an absolute http(s) URL")
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("utm_")])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


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
    if not isinstance(data, dict):
        return Rejection("not_object", f"expected a JSON object, got {type(data).__name__}")
    for name in _STRING_FIELDS:
        item = data.get(name)
        if item is not None and not isinstance(item, str) and not (name == "published_at" and isinstance(item, int | float)):
            return Rejection("wrong_type", f"{name} must be a string, got {type(item).__name__}")

    headline = clean(data.get("headline") or "")
    body = clean(data.get("body") or "") or None
    if not headline and not body:
        return Rejection("missing_text", "needs a non-empty headline or body")
    if len(headline) > MAX_HEADLINE_CHARS:
        return Rejection("field_too_long", f"headline has {len(headline)} characters; the limit is {MAX_HEADLINE_CHARS}")
    if body and len(body) > MAX_BODY_CHARS:
        return Rejection("field_too_long", f"body has {len(body)} characters; the limit is {MAX_BODY_CHARS}")

    url: str | None = None
    if data.get("url"):
        try:
            url = normalise_url(data["url"])
        except ValueError as exc:
            return Rejection("bad_url", f"url {data['url'][:100]!r}: {exc}")

    try:
        published = parse_time(data["published_at"]) if data.get("published_at") is not None else None
    except (ValueError, OverflowError, OSError) as exc:
        return Rejection("bad_timestamp", f"published_at {str(data['published_at'])[:60]!r}: {exc}")

    tickers = data.get("tickers")
    if tickers is None:
        tickers = []
    if not isinstance(tickers, list) or not all(isinstance(t, str) for t in tickers):
        return Rejection("wrong_type", "tickers must be a list of strings")
    merged: dict[str, None] = {}
    for ticker in [t.strip().lstrip("$").upper() for t in tickers] + cashtags(headline) + cashtags(body or ""):
        if not _TICKER.match(ticker):
            return Rejection("bad_ticker", f"ticker {ticker[:20]!r} is not 1-10 letters, digits, '.' or '-'")
        merged.setdefault(ticker, None)
    if len(merged) > MAX_TICKERS:
        return Rejection("field_too_long", f"{len(merged)} tickers; the limit is {MAX_TICKERS}")

    if published is not None and published.timestamp() > received_at + MAX_FUTURE_SKEW:
        published = None
    source = clean(data.get("source") or "") or "unknown"
    story_id = clean(data.get("id") or "")
    if len(story_id) > MAX_ID_CHARS:
        return Rejection("bad_id", f"id has {len(story_id)} characters; the limit is {MAX_ID_CHARS}")
    return Story(
        id=story_id or stable_id(source, url, headline),
        source=source[:200],
        headline=headline,
        body=body,
        url=url,
        published_at=iso(published or datetime.fromtimestamp(received_at, UTC)),
        tickers=list(merged),
        lang=clean(data.get("lang") or "") or None,
        received_at=received_at,
    )
