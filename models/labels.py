"""The model's label vocabulary, defined once: every package that names a sentiment imports it here."""

from __future__ import annotations

from typing import Literal, get_args

Sentiment = Literal["negative", "neutral", "positive"]
SENTIMENTS: tuple[Sentiment, ...] = get_args(Sentiment)
