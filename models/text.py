"""Text normalisation shared by training and inference, and the lighter cleaning of stored text.

The training data are tweets (URLs, cashtags, HTML entities); production input is news of any
style. Normalising both the same way removes tweet-only surface cues, so the model learns the
words that carry topic and sentiment rather than where a `t.co` link sits.

What is stored and shown (a story's headline, body, source, id) is only `tidy`: NFKC, which the
model's input keeps (`clean`, applied again by `for_model` at inference), would rewrite the value
itself (`3½% notes` as `31⁄2% notes`, `beats¹` as `beats1`).
"""

from __future__ import annotations

import html
import html.entities
import re
import unicodedata

# Recorded in each exported model's card (nothing checks it at load). 2 (2026-11-30) also drops lone
# surrogates, the soft hyphen, the Arabic letter mark and the bidi isolates; 3 reads only `&name;`,
# `&#NN;` and `&#xHH;` as entities, so `BTC&ETH` stays as written (HTML's legacy `&ETH` read it as
# `BTCÐ`). Each differs from 1, which the shipped model was trained and exported with, only on texts
# that contain those.
NORMALISATION_VERSION = "3"

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


# A character reference as HTML writes one, its `;` included: `&amp;`, `&#36;`, `&#x24;`. Without the
# `;` it is text (`BTC&ETH`, `Public&sector`, `Copy&copy`), which html.unescape would expand.
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]{0,31});")
_MAX_CODE_DIGITS = 8  # past U+10FFFF whatever the base; int() of thousands of digits raises


def _entity(match: re.Match[str]) -> str:
    reference = match.group()
    if reference[1] == "#":  # html.unescape maps the invalid and the Windows-1252 code points
        digits = reference[3:-1] if reference[2] in "xX" else reference[2:-1]
        return "\ufffd" if len(digits.lstrip("0")) > _MAX_CODE_DIGITS else html.unescape(reference)
    return html.entities.html5.get(reference[1:], reference)


def _unescape(text: str) -> str:
    """`text` with its character references replaced, twice (feeds escape `&amp;` again as
    `&amp;amp;`); `&` not followed by a reference ending in `;` stays as written."""
    return _ENTITY.sub(_entity, _ENTITY.sub(_entity, text))


def _normalised(text: str, form: str) -> str:
    text = _INVISIBLE.sub("", unicodedata.normalize(form, _unescape(text)))
    return _SPACE.sub(" ", text).strip()


def tidy(text: str) -> str:
    """What a story stores and shows: `clean` with NFC for NFKC, so every character keeps its value
    (`3½%`, `¹`, full-width forms) while a text typed composed or decomposed is stored alike."""
    return _normalised(text, "NFC")


def cashtags(text: str) -> list[str]:
    """Upper-cased tickers named as cashtags (`$aapl` -> `AAPL`; full-width `＄ＡＡＰＬ` too),
    first-seen order, no repeats."""
    seen: dict[str, None] = {}
    for match in _CASHTAG.finditer(clean(text)):
        seen.setdefault(match.group(1).upper(), None)
    return list(seen)


def clean(text: str) -> str:
    """Unescape entities, apply NFKC, drop control characters and collapse whitespace: the model's
    input (and a ticker's), where compatibility forms read as the plain ones they stand for."""
    return _normalised(text, "NFKC")


# Style markers (docs/MODEL.md, "Style"): a model trained with them reads each text after the word
# that names its style, so it can keep the tweet sets' labelling conventions (a headline like
# "X just missed EPS by 44%" is neutral there) apart from newswire's, where a reader calls it
# negative. The keys are the styles a source declares; a model records in its card whether it
# was trained with them.
STYLES = ("newswire", "social")
STYLE_MARKERS = {"newswire": "news:", "social": "tweet:"}
# A story that does not say its style is read as news: the product watches news feeds, and a
# social-media source declares itself (docs/INPUTS.md).
DEFAULT_STYLE = "newswire"


def style_name(value: str) -> str:
    """A style as a person or a feed writes it (`Social`, ` newswire `): stripped, in lower case, not
    yet checked against STYLES (the caller says what happens to an unknown one)."""
    return value.strip().lower()


def for_model(text: str, style: str | None = None) -> str:
    """The text the classifier sees: `clean` plus removal of URLs, mentions and `$` signs, after
    the style's marker when `style` is one of STYLES (None: no marker, for a model without them)."""
    text = _RETWEET.sub("", clean(text))
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _CASHTAG.sub(lambda m: m.group(1).upper(), text)
    text = _SPACE.sub(" ", text).strip(" -|:")
    return f"{STYLE_MARKERS[style]} {text}" if style is not None and text else text
