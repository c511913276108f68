"""Analysts and the roster file they are declared in.

The roster is edited by people while the scheduler runs, so a mistake in it must never take the
scheduler down or silently drop analysts: parsing walks the YAML node tree (not the plain loaded
data) so every error can name the line and the field, and `RosterWatcher` keeps the last good
roster in force until the file is fixed.

It holds two roles: analysts (who take cases) and operators (silences and other configuration-like
actions). Each person's bearer token is referenced, never written in the file: a salted scrypt hash
(`token_hash`, scheduler/tokens.py), or an environment variable or file holding the token. Tokens
shorter than `tokens.MIN_LENGTH` are refused when the roster is read.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from alerts.receivers import webhook_url
from models.tickers import is_ticker, normalise_ticker
from scheduler.tokens import CACHE, TokenFormatError, parse_hash, short_token, verify_hash

log = logging.getLogger(__name__)

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# YAML section under `skills:` -> the scope prefix the monitor writes (`topic:Earnings`).
SKILL_KINDS = {"topics": "topic", "tickers": "ticker", "sectors": "sector"}
MAX_LEVEL = 5
# The most open cases one analyst may hold. The optimiser makes one column per free unit of capacity
# (scheduler/optimizer.py), so a typo like `capacity: 1000000000` would build a billion-column problem
# and stall the scheduler's single writer; nobody works a thousand open cases at once, so a value
# above this is a mistake to refuse at its line, not a setting to honour.
MAX_CAPACITY = 1000
_SHIFT = re.compile(r"^(?P<days>\S+)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})\s+(?P<tz>\S+)$")


class RosterError(ValueError):
    """A roster file that cannot be used, located precisely enough to fix without guessing."""

    def __init__(self, source: str, line: int, field: str, message: str) -> None:
        self.source, self.line, self.field = source, line, field
        super().__init__(f"{source}:{line}: {field}: {message}")


@dataclass(frozen=True)
class Shift:
    """A weekly working window in the analyst's own time zone, so DST moves with the analyst.

    Minutes of the day are kept rather than `time` so that `24:00` and overnight shifts
    (`22:00-06:00`, belonging to the day they start) need no special cases elsewhere.
    """

    days: frozenset[int]  # Monday == 0
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight, 1..1440; end < start means the shift crosses midnight
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str) -> Shift:
        """Parse `Mon-Fri 08:00-17:00 Europe/London`; raises ValueError with the reason."""
        m = _SHIFT.match(text.strip())
        if not m:
            raise ValueError(f"expected 'DAYS HH:MM-HH:MM Area/City', got {text!r}")
        try:
            tz = ZoneInfo(m["tz"])
        # A key naming a tzdata folder (`Europe`, `America/Argentina`) is an IsADirectoryError, one too
        # long for a file name an OSError: unknown zones all the same, never a crash of the reload.
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {m['tz']!r}") from None
        start, end = _minutes(m["start"]), _minutes(m["end"])
        if start == end or start >= 24 * 60:
            raise ValueError(f"empty or impossible shift {m['start']}-{m['end']}")
        return cls(_days(m["days"]), start, end, tz)

    def covers(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        minute, day = local.hour * 60 + local.minute, local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)


def _minutes(hhmm: str) -> int:
    hours, minutes = int(hhmm[:2]), int(hhmm[3:])
    if minutes >= 60 or hours * 60 + minutes > 24 * 60:
        raise ValueError(f"impossible time {hhmm}")
    return hours * 60 + minutes


def _days(spec: str) -> frozenset[int]:
    """`Mon-Fri`, `Sat,Sun`, `Mon-Wed,Fri`; ranges may wrap (`Fri-Mon`). A range missing its end
    (`Mon-`) is refused: read as its first day alone, it silently dropped the rest of the week."""
    days: set[int] = set()
    for part in spec.split(","):
        first, dash, last = part.partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise ValueError(f"days must be like Mon-Fri or Sat,Sun, got {spec!r}")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


@dataclass(frozen=True)
class Credential:
    """How a person's bearer token is checked: exactly one of a scrypt hash, an environment
    variable or a file (the parser guarantees one)."""

    token_hash: str | None = None
    token_env: str | None = None
    token_file: str | None = None

    @property
    def reference(self) -> str:
        """What the roster says about the token (the hash, or where the token is): the cache's value."""
        return self.token_hash or (f"env:{self.token_env}" if self.token_env is not None else f"file:{self.token_file}")

    def fingerprint(self) -> str | None:
        """Which token is in force now, without the token: the stored hash, or the reference and a keyed
        digest of the token its env var or file holds (read afresh, as `matches` does). It changes when
        the token is rotated, so a console session made with the old token can end (streams/console).
        None when the env var or file holds no token at this moment (a file being rewritten): unknown,
        which is not a change."""
        if self.token_hash is not None:
            return self.token_hash
        token = self.plaintext()
        if not token:
            return None
        return f"{self.reference}${CACHE.digest(token.encode('utf-8', 'surrogateescape')).hex()}"

    def plaintext(self) -> str | None:
        """The token an env var or file holds (None for a hash, or when it cannot be read)."""
        if self.token_env is not None:
            return os.environ.get(self.token_env)
        if self.token_file is not None:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError:
                return None
        return None

    def verify_token(self, presented: str) -> bool:
        """One check of a presented token, without the cache (Roster.authenticate is the request path)."""
        return self.matches(presented.encode("utf-8", "surrogateescape"), None)

    def matches(self, raw: bytes, known: str | None) -> bool:
        """Constant-time check of a presented token. `known` is the reference the token already matched
        (TokenCache), which spares scrypt; None means verify a hash the slow way. A token referenced by
        env or file is compared each time (cheap), so a changed one takes effect at once."""
        if self.token_hash is not None:
            if known is not None:
                return hmac.compare_digest(known.encode(), self.token_hash.encode())
            return verify_hash(raw, self.token_hash)
        expected = self.plaintext()
        return expected is not None and hmac.compare_digest(raw, expected.encode())


@dataclass(frozen=True)
class Operator(Credential):
    """Someone who may change how the worker behaves (silences), but takes no cases."""

    id: str = ""


@dataclass(frozen=True)
class Analyst(Credential):
    """One analyst. `notify_secret` (read from the roster's `notify_secret_file`) signs this analyst's
    case webhooks instead of the worker's shared secret, so one analyst's receiver cannot forge another's."""

    id: str = ""
    name: str = ""
    capacity: int = 1
    skills: Mapping[str, int] = field(default_factory=dict)  # "topic:Earnings" etc. -> level 1..5
    shifts: tuple[Shift, ...] = ()
    notify: str = ""
    notify_secret: bytes | None = field(default=None, repr=False)

    def on_shift(self, now: datetime) -> bool:
        return any(shift.covers(now) for shift in self.shifts)



@dataclass(frozen=True)
class Roster:
    analysts: Mapping[str, Analyst]  # in file order, which is also the order ties are broken in
    sectors: Mapping[str, str]  # ticker -> sector, so a sector skill covers `ticker:` scopes
    operators: Mapping[str, Operator] = field(default_factory=dict)

    def authenticate(self, presented: str, slow: bool = True) -> Analyst | Operator | None:
        """Whose bearer token this is. Every person is checked, so the time says nothing about who matched.
        With `slow` False no scrypt is computed: only tokens already verified (or kept in plaintext)
        match, which is how a throttled client is kept from making the worker hash for it.

        aiohttp decodes header bytes that are not UTF-8 as lone surrogates; surrogateescape turns
        them back into the bytes sent, so such a token is a plain mismatch, not an exception.
        """
        raw = presented.encode("utf-8", "surrogateescape")
        people = (*self.analysts.values(), *self.operators.values())
        known = CACHE.lookup(raw)
        if known is not None and not any(hmac.compare_digest(p.reference.encode(), known.encode()) for p in people):
            known = None  # what it matched was edited out of the roster: verify afresh
        match: Analyst | Operator | None = None
        for person in people:
            if (slow or known is not None or person.token_hash is None) and person.matches(raw, known) and match is None:
                match = person
        if match is not None and known is None:
            CACHE.remember(raw, match.reference)
        return match

    def unknown_topics(self, topics: Iterable[str]) -> list[str]:
        """`analyst: topic` for each topic skill naming none of `topics` (the running model's): such a
        skill matches no case, silently (`M&A` where the model says `M&A | Investments`). The roster
        is parsed without the model, so the worker, which has both, says so."""
        known = set(topics)
        return [f"{analyst.id}: {scope.removeprefix('topic:')}" for analyst in self.analysts.values()
                for scope in analyst.skills if scope.startswith("topic:") and scope.removeprefix("topic:") not in known]

    def skill_level(self, analyst: Analyst, scope: str) -> int:
        """The analyst's level for a case's scope; 0 means not qualified to take it."""
        level = analyst.skills.get(scope, 0)
        kind, _, name = scope.partition(":")
        if kind == "ticker" and name in self.sectors:
            level = max(level, analyst.skills.get(f"sector:{self.sectors[name]}", 0))
        return level


def load_roster(path: str | Path) -> Roster:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RosterError(str(path), 0, "(file)", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RosterError(str(path), 0, "(file)", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return parse_roster(text, str(path))


def parse_roster(text: str, source: str = "<roster>") -> Roster:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise RosterError(source, line, "(syntax)", str(getattr(exc, "problem", exc))) from None
    except RecursionError:  # PyYAML composes recursively; a hostile edit must not stop the watcher
        raise RosterError(source, 0, "(syntax)", "nested too deeply") from None
    if root is None:
        raise RosterError(source, 1, "analysts", "the roster is empty")
    p = _Parser(source)
    top = p.mapping(root, "", required={"analysts"}, optional={"sectors", "operators"})
    sectors: dict[str, str] = {}
    listed: dict[str, int] = {}  # ticker -> the line it was first listed on
    if "sectors" in top:
        for sector, (_, tickers_node) in p.mapping(top["sectors"][1], "sectors").items():
            p.sectors.add(sector)
            for i, ticker_node in enumerate(p.sequence(tickers_node, f"sectors.{sector}")):
                ticker = p.ticker(ticker_node, f"sectors.{sector}[{i}]")
                if ticker in sectors:  # a ticker has one sector: the last one silently won before
                    raise p.fail(ticker_node, f"sectors.{sector}[{i}]",
                                 f"{ticker} is already listed under sector {sectors[ticker]} (line "
                                 f"{listed[ticker]}); list each ticker under one sector")
                sectors[ticker], listed[ticker] = sector, ticker_node.start_mark.line + 1
    analysts: dict[str, Analyst] = {}
    key_node, seq_node = top["analysts"]
    for i, node in enumerate(p.sequence(seq_node, "analysts")):
        analyst = p.analyst(node, f"analysts[{i}]")
        if analyst.id in analysts:
            raise RosterError(source, node.start_mark.line + 1, f"analysts[{i}].id", f"duplicate id {analyst.id!r}")
        analysts[analyst.id] = analyst
    if not analysts:
        raise RosterError(source, key_node.start_mark.line + 1, "analysts", "at least one analyst is required")
    operators: dict[str, Operator] = {}
    for i, node in enumerate(p.sequence(top["operators"][1], "operators") if "operators" in top else []):
        f = p.mapping(node, f"operators[{i}]", required={"id"}, optional=set(_TOKEN_FIELDS))
        operator = Operator(id=p.string(f["id"][1], f"operators[{i}].id"), **p.credential(node, f, f"operators[{i}]"))
        if operator.id in operators or operator.id in analysts:
            raise RosterError(source, node.start_mark.line + 1, f"operators[{i}].id", f"duplicate id {operator.id!r}")
        operators[operator.id] = operator
    return Roster(analysts, sectors, operators)


_ANALYST_REQUIRED = {"id", "name", "capacity", "skills", "shifts", "notify"}
_TOKEN_FIELDS = ("token_hash", "token_env", "token_file")


class _Parser:
    """Typed reads of YAML nodes; every failure becomes a RosterError at that node's line. It remembers
    what the checks across entries need: the sectors defined, and each token reference already used."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sectors: set[str] = set()
        self.tokens: dict[str, tuple[str, int]] = {}  # Credential.reference -> (field, line) that holds it

    def fail(self, node: yaml.Node, field: str, message: str) -> RosterError:
        return RosterError(self.source, node.start_mark.line + 1, field or "(top level)", message)

    def mapping(
        self, node: yaml.Node, field: str, required: set[str] | None = None, optional: set[str] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys -> (key node, value node). With `required`, unknown keys are errors (catches typos)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, "expected a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.string(key_node, field)
            where = f"{field}.{key}" if field else key
            if key in out:
                raise self.fail(key_node, where, "duplicate key")
            if required is not None and key not in required | (optional or set()):
                raise self.fail(
                    key_node, where, f"unknown field (expected one of {sorted(required | (optional or set()))})"
                )
            out[key] = (key_node, value_node)
        missing = sorted((required or set()) - out.keys())
        if missing:
            raise self.fail(node, f"{field}.{missing[0]}" if field else missing[0], "missing required field")
        return out

    def sequence(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field, "expected a list")
        return list(node.value)

    def string(self, node: yaml.Node, field: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            raise self.fail(node, field, "expected a non-empty string")
        return str(node.value)

    def ticker(self, node: yaml.Node, field: str) -> str:
        """The ticker as ingest keeps it (models/tickers.py), so a skill names the scope the monitor counts
        the story in: `aapl` is `ticker:AAPL`, `BRK/B` and `$brk.b` are `ticker:BRK.B`, `LON:VOD` is
        `ticker:VOD.L`. A name that is no ticker by those rules could never match: an error."""
        written = self.string(node, field)
        ticker = normalise_ticker(written)
        if not is_ticker(ticker):
            raise self.fail(node, field, f"{written.strip()!r} is no ticker as stories carry them (e.g. AAPL, BRK.B, "
                                         f"VOD.L, 0700.HK: docs/INPUTS.md), so no story could ever match it; fix it")
        return ticker

    def integer(self, node: yaml.Node, field: str, low: int, high: int, why: str = "") -> int:
        """Digits only, within `low..high` (`why` says why the bound is there). The digits are counted
        before `int()` reads them: Python refuses to convert more than 4300 digits with a plain
        ValueError, which no caller expects from a roster."""
        text = self.string(node, field)
        digits = text.lstrip("0") or "0"
        if not re.fullmatch(r"[0-9]+", text) or len(digits) > len(str(high)) or not low <= int(digits) <= high:
            shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"
            raise self.fail(node, field, f"expected an integer {low}..{high}{why}, got {shown!r}")
        return int(digits)

    def analyst(self, node: yaml.Node, field: str) -> Analyst:
        f = self.mapping(node, field, required=_ANALYST_REQUIRED, optional={*_TOKEN_FIELDS, "notify_secret_file"})
        notify = self.string(f["notify"][1], f"{field}.notify")
        if not webhook_url(notify):
            raise self.fail(f["notify"][1], f"{field}.notify", f"expected an http(s) webhook URL, got {notify!r}")
        shifts = []
        shift_nodes = self.sequence(f["shifts"][1], f"{field}.shifts")
        if not shift_nodes:  # never on shift: the analyst would never get a case, and nothing would say why
            raise self.fail(f["shifts"][1], f"{field}.shifts",
                            "at least one shift is required, e.g. ['Mon-Fri 08:00-17:00 Europe/London']")
        for i, shift_node in enumerate(shift_nodes):
            try:
                shifts.append(Shift.parse(self.string(shift_node, f"{field}.shifts[{i}]")))
            except ValueError as exc:
                raise self.fail(shift_node, f"{field}.shifts[{i}]", str(exc)) from None
        return Analyst(
            id=self.string(f["id"][1], f"{field}.id"),
            name=self.string(f["name"][1], f"{field}.name"),
            capacity=self.integer(f["capacity"][1], f"{field}.capacity", 1, MAX_CAPACITY,
                                  " (open cases held at once)"),
            skills=self.skills(f["skills"][1], f"{field}.skills"),
            shifts=tuple(shifts),
            notify=notify,
            notify_secret=self.secret(f["notify_secret_file"][1], f"{field}.notify_secret_file")
            if "notify_secret_file" in f else None,
            **self.credential(node, f, field),
        )

    def secret(self, node: yaml.Node, field: str) -> bytes:
        """A secret file's contents (surrounding whitespace stripped), read now so a bad path stops start-up."""
        path = self.string(node, field)
        try:
            secret = Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(node, field, f"cannot read {path} ({getattr(exc, 'strerror', None) or exc})") from None
        if not secret:
            raise self.fail(node, field, f"{path} is empty; put the analyst's webhook secret in it")
        return secret.encode()

    def credential(self, node: yaml.Node, f: dict[str, tuple[yaml.Node, yaml.Node]], field: str) -> dict[str, str]:
        """The one token reference of a person; a hash must parse, a referenced token must be long enough."""
        tokens = [k for k in _TOKEN_FIELDS if k in f]
        if len(tokens) != 1:
            raise self.fail(node, f"{field}.token", f"exactly one of {', '.join(_TOKEN_FIELDS)} is required")
        key = tokens[0]
        value_node = f[key][1]
        value = self.string(value_node, f"{field}.{key}")
        self.unique_token(Credential(**{key: value}).reference, value_node, f"{field}.{key}")
        if key == "token_hash":
            try:
                parse_hash(value)
            except TokenFormatError as exc:
                raise self.fail(value_node, f"{field}.token_hash", str(exc)) from None
            return {key: value}
        # A token not there yet (unset variable, missing file) only means that person cannot sign in;
        # one that is there must be long enough.
        token = Credential(**{key: value}).plaintext()
        problem = short_token(token) if token is not None else None
        if problem:
            raise self.fail(value_node, f"{field}.{key}", f"{problem}; make one with "
                            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return {key: value}

    def unique_token(self, reference: str, node: yaml.Node, field: str) -> None:
        """One token reference per person: authentication takes the first match, so a second entry with
        the same hash, variable or file would sign in as the first."""
        if reference in self.tokens:
            other, line = self.tokens[reference]
            raise self.fail(node, field, f"the same token as {other} (line {line}); give each person their own "
                                         "token (`finsentry token hash` for a token_hash)")
        self.tokens[reference] = (field.rpartition(".")[0], node.start_mark.line + 1)

    def skills(self, node: yaml.Node, field: str) -> dict[str, int]:
        """Skills keyed by the scope they match; a name no scope can have is refused, not ignored."""
        skills: dict[str, int] = {}
        for section, (_, section_node) in self.mapping(node, field, required=set(), optional=set(SKILL_KINDS)).items():
            for name, (key_node, level_node) in self.mapping(section_node, f"{field}.{section}").items():
                where = f"{field}.{section}.{name}"
                level = self.integer(level_node, where, 1, MAX_LEVEL)
                if section == "tickers":
                    name = self.ticker(key_node, where)
                elif section == "sectors" and name not in self.sectors:
                    defined = ", ".join(sorted(self.sectors)) or "none"
                    raise self.fail(key_node, where, f"no sector {name!r} is defined (defined: {defined}); add it "
                                                     "under the top-level `sectors:` with its tickers, or fix the name")
                scope = f"{SKILL_KINDS[section]}:{name}"
                if scope in skills:
                    raise self.fail(key_node, where, f"{scope} is listed twice (tickers are upper case); keep one")
                skills[scope] = level
        if not skills:
            raise self.fail(node, field, "at least one skill is required")
        return skills


# How long a changed roster file must stay the same before it is read (RosterWatcher).
SETTLE_SECONDS = 2.0


class RosterWatcher:
    """Reloads the roster when its file changes; a bad edit is reported and the old roster kept.

    Polling (stat) rather than inotify so it works on every filesystem a ConfigMap can be mounted
    on; (mtime_ns, size, inode) catches both in-place edits and atomic rename-over writes. A change
    is read once the file was last written `settle_seconds` ago, or has looked the same to polls
    that long (an mtime in the future); a read during which the file changed is thrown away. An
    editor or `>` writing in place truncates the file first, and a poll that read it half written
    could load a valid roster missing the analysts after the cut, whose cases the scheduler would
    then hand to others. (The case-webhooks agent polls at every lookup, so one poll alone is no wait.)
    """

    def __init__(self, path: str | Path, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.path = Path(path)
        self.settle_seconds = settle_seconds
        self._stamp = self._stat()
        # The stamp at the last poll and since when (monotonic seconds) polls have seen it.
        self._seen: tuple[tuple[int, int, int] | None, float] = (self._stamp, time.monotonic())
        self.roster = load_roster(self.path)  # no previous roster to fall back on: fail loudly
        self.error: RosterError | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def poll(self) -> Roster | None:
        """The new roster if the file changed, has settled since, and is valid; None otherwise (see `.error`).

        The stamp moves on only once the file it stamps was judged, loaded or reported: stamped first,
        a reload that raised left the bad edit unreported and never read again until the next edit."""
        stamp, now = self._stat(), time.monotonic()
        first_look = stamp != self._seen[0]
        if first_look:
            self._seen = (stamp, now)
        if stamp == self._stamp:
            return None
        # A file last written settle_seconds ago is read at the first look (an analyst added is known
        # to the first case event that names them); one written since waits for a later look.
        aged = stamp is not None and time.time() - stamp[0] / 1e9 >= self.settle_seconds
        if not aged and (first_look or now - self._seen[1] < self.settle_seconds):
            return None
        try:
            roster = load_roster(self.path)
        except Exception as exc:  # noqa: BLE001 - any failure is the edit's error; the old roster stays
            roster, error = None, _reload_error(self.path, exc)
        after = self._stat()
        if after != stamp:  # a write began while it was read: what was read may be half of it
            self._seen = (after, time.monotonic())
            return None
        if roster is None:
            self._stamp, self.error = stamp, error
            log.error("roster reload rejected, keeping the previous roster: %s", self.error)
            return None
        self._stamp, self.roster, self.error = stamp, roster, None
        return roster


def _reload_error(path: Path, exc: Exception) -> RosterError:
    """A failure to reload as the RosterError `.error` promises. A parser bug must not stop the watcher
    (the old roster stays in force), but it must be said, with where to look, like any bad edit."""
    if isinstance(exc, RosterError):
        return exc
    return RosterError(str(path), 0, "(file)", f"could not be read ({type(exc).__name__}: {exc}); fix the edit "
                                                "or report the roster parser's failure on it")
