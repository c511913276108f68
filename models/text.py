"""Text normalisation shared by training and inference.

The training data are tweets (URLs, cashtags, HTML entities); production input is news of any
style. Normalising both the same way removes tweet-only surface cues, so the model learns the
words that carry topic and sentiment rather than where a `t.co` link sits.
"""

from __future__ import annotations

import html
import re
import unicodedata

# Recorded in each exported model's card. 2 (2026-11-30) also drops lone surrogates, the soft hyphen,
# the Arabic letter mark and the bidi isolates; it differs from 1, which the shipped model was
# trained and exported with, only on texts that contain them.
NORMALISATION_VERSION = "2"

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:[.\-][A-Za-z]{1,2})?)\b")
_MENTION = re.compile(r"(?<!\w)@\w{1,30}")
_RETWEET = re.compile(r"^\s*RT\s+@\w+:?\s*")
_SPACE = re.compile(r"\s+")
# C0/C1 controls, the soft hyphen, zero-width and bidi format characters (marks, embeddings,
# isolates): invisible, and a headline made only of them must count as empty. Lone surrogates too: no
# encoder takes them (the tokenizer raised TypeError, and `finsentry classify` lost every row).
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u061c\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u2069\ufeff\ud800-\udfff]")


def cashtags(text: str) -> list[str]:
    """Upper-cased tickers named as cashtags (`$aapl` -> `AAPL`), first-seen order, no repeats."""
    seen: dict[str, None] = {}
    for match in _CASHTAG.finditer(html.unescape(text)):
        seen.setdefault(match.group(1).upper(), None)
    return list(seen)


def clean(text: str) -> str:
    """Unescape entities, drop control characters and collapse whitespace; keeps the meaning."""
    text = html.unescape(html.unescape(text))
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return _SPACE.sub(" ", text).strip()


def for_model(text: str) -> str:
    """The text the classifier sees: `clean` plus removal of URLs, mentions and `$` signs."""
    text = _RETWEET.sub("", clean(text))
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _CASHTAG.sub(lambda m: m.group(1).upper(), text)
    return _SPACE.sub(" ", text).strip(" -|:")
