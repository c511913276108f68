"""Near-duplicate detection so one story syndicated by ten outlets counts once.

Titles are normalised (case, punctuation, a trailing " - Outlet" credit) and reduced to a 64-bit
SimHash; two headlines within a few bits of each other inside the time horizon are the same story.
An exact syndicated copy has distance 0, a lightly re-edited one a few bits. Only a tail that reads
as a credit is dropped (an outlet's name, a domain): "Contoso results delayed - CEO resigns" and
"... - SEC opens probe" are two stories, and dropping every short tail made them one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from itertools import pairwise

# A tail after " - ", " -- ", " | " or a dash: up to 40 characters holding no other such separator
# (an outlet's own hyphen stays: `St. Louis Post-Dispatch`, `CNBC-TV18`).
_CREDIT = re.compile(r"\s+(?:[-|–—]{1,2})\s+((?:(?!\s[-|–—]{1,2}\s).){1,40})$")
# Wire services named in brackets or after a colon (`... (Reuters)`, `...: Reuters`, `Reuters: ...`):
# only these names, since a bracketed or colon-led word is as often the news (`(Q3)`, `Acme: ...`).
_WIRES = r"(?:Reuters|Bloomberg|AP|AFP|Dow Jones|MT Newswires|RTRS)"
_WIRE_TAIL = re.compile(rf"(?:\s*\({_WIRES}\)|:\s+{_WIRES})\s*$", re.IGNORECASE)
_WIRE_HEAD = re.compile(rf"^{_WIRES}:\s+", re.IGNORECASE)
# A wire desk's slug before the headline, as Reuters writes them in capitals: `UPDATE 2-`, `EXCLUSIVE-`,
# `RPT-UPDATE 1-` (repeated); the same story updated or re-sent is the same story.
_SLUG = re.compile(r"^(?:(?:UPDATE|WRAPUP)\s*\d+|EXCLUSIVE|BRIEF|CORRECTED|REFILE|RPT|INSIGHT|ANALYSIS|BUZZ|"
                   r"FACTBOX|TIMELINE|EXPLAINER|BREAKINGVIEWS|GLOBAL MARKETS|MIDEAST STOCKS|EMERGING MARKETS)\s*-\s*")
_HYPHENS = re.compile("[-\u2010\u2011\u2012\u2013\u2014\u2212]")
_NON_WORD = re.compile(r"[^\w\s]+")
_CONNECTORS = frozenset({"the", "of", "and", "&", "de", "la", "le", "der", "die", "on", "via", "della", "del", "di"})


def _named(word: str) -> bool:
    """A word an outlet's name could hold: any word, but one with a hyphen (or a dash of another kind)
    only when it is a domain (`wallstreet-online.de`) or no part of it starts in lower case
    (`Post-Dispatch`, `CNBC-TV18`, `ロイター-日本`); `pre-market`, `pre–market`, `2-for-1`, `co-CEO`, `BBB-` are news."""
    parts = _HYPHENS.split(word)
    return len(parts) == 1 or "." in word or all(part and not part[0].islower() for part in parts)


def is_credit(tail: str) -> bool:
    """Whether a title's tail after " - " or " | " names its outlet: one word (`Reuters`, `reuters`,
    `marketwatch.com`, `ロイター`), or at most five words none of which is a lower-case word other than
    a connector (`The Wall Street Journal`, `24/7 Wall St.`, `Reuters via Yahoo Finance`). A clause
    with a lower-case word (`CEO resigns`) is news, not a credit; one in Title Case
    (`CEO Resigns`) cannot be told from an outlet's name and is taken for one."""
    words = tail.split()
    return all(_named(word) for word in words) and (len(words) == 1 or (0 < len(words) <= 5 and all(
        not word[0].islower() or word.lower() in _CONNECTORS for word in words)))


def normalise_title(headline: str) -> str:
    """The title as copies of one story share it: NFKC, a wire desk's slugs and an outlet's credit
    removed, lower case, punctuation as spaces."""
    text = " ".join(unicodedata.normalize("NFKC", headline).split())  # one space each: the regexes stay linear
    while slug := _SLUG.match(text):
        text = text[slug.end():]
    text = _WIRE_HEAD.sub("", _WIRE_TAIL.sub("", text))
    if (credit := _CREDIT.search(text)) and is_credit(credit.group(1)):
        text = text[:credit.start()]
    text = _NON_WORD.sub(" ", text.lower())
    return " ".join(text.split())


def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")


def simhash(headline: str) -> int:
    """64-bit SimHash over words and word pairs of the normalised title."""
    words = normalise_title(headline).split()
    features = words + [f"{a} {b}" for a, b in pairwise(words)]
    weights = [0] * 64
    for feature in features:
        h = _token_hash(feature)
        for bit in range(64):
            weights[bit] += 1 if (h >> bit) & 1 else -1
    return sum(1 << bit for bit in range(64) if weights[bit] > 0)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


MAX_ENTRIES = 5000  # per scope: about 190 KB of the scope's saved state


@dataclass
class NoveltyIndex:
    """SimHashes of recent headlines in one scope, pruned by event time and capped at `max_entries`.

    The cap keeps a scope's saved state (one table record, which must fit the producer's 1 MB
    request) bounded however busy the scope: at about 8 novel stories a second one hour of entries
    passed 1 MB, and the table write could not be sent. Past the cap the oldest entries go first, so
    in a scope with more than `max_entries` novel stories an hour, a copy is recognised only as far
    back as the last `max_entries` of them."""

    horizon_seconds: float
    max_distance: int
    entries: list[tuple[float, int]] = field(default_factory=list)
    newest: float | None = None
    max_entries: int = MAX_ENTRIES

    def is_novel(self, published_at: float, headline: str) -> bool:
        """Record the headline and say whether it is new (not a near-copy of one seen recently)."""
        fingerprint = simhash(headline)
        self.newest = published_at if self.newest is None else max(self.newest, published_at)
        self.entries = [(t, h) for t, h in self.entries if t >= self.newest - self.horizon_seconds]
        novel = not any(
            abs(t - published_at) <= self.horizon_seconds and hamming(h, fingerprint) <= self.max_distance
            for t, h in self.entries
        )
        if novel:
            self.entries.append((published_at, fingerprint))
            del self.entries[:-self.max_entries]
        return novel

    def to_dict(self) -> dict:
        return {"entries": [[t, f"{h:016x}"] for t, h in self.entries], "newest": self.newest}

    @classmethod
    def from_dict(cls, d: dict, horizon_seconds: float, max_distance: int) -> NoveltyIndex:
        return cls(horizon_seconds, max_distance, [(t, int(h, 16)) for t, h in d["entries"][-MAX_ENTRIES:]], d["newest"])
