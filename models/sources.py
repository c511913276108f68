"""Who made the data a model learnt from, and on what terms: the attribution its card carries.

Matched by the folder a training file sits in (`../shared/data/<folder>/train.csv`) or, for the
project's own files, by their path. FinEntity's ODC-BY licence requires that a model card listing
the training data names it and its authors; the card carries every known source the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath

# folder or repository path -> (name, licence, attribution)
KNOWN: dict[str, tuple[str, str, str]] = {
    "twitter-financial-news-topic": ("Twitter Financial News (topic), version 1.0.0", "MIT",
                                     "zeroshot/twitter-financial-news-topic, by its authors"),
    "twitter-financial-news-sentiment": ("Twitter Financial News (sentiment), version 1.0.0", "MIT",
                                         "zeroshot/twitter-financial-news-sentiment, by its authors"),
    "finentity-sentences": ("FinEntity", "ODC-BY 1.0",
                            "Tang et al., \"FinEntity: Entity-level Sentiment Classification for Financial Texts\", EMNLP 2023"),
    "models/data/formal": ("finsentry formal finance headlines", "Apache-2.0", "the finsentry authors (models/data/formal/README.md)"),
    "formal_augment": ("finsentry template headlines (scripts/formal_augment.py)", "Apache-2.0", "the finsentry authors"),
}


def attributions(paths: Iterable[str]) -> list[dict[str, str]]:
    """One entry per distinct known source among `paths`, in first-seen order; unknown files are
    listed by path with licence "unknown", so a card never claims terms nobody checked."""
    seen: dict[str, dict[str, str]] = {}
    for path in paths:
        posix = PurePath(path).as_posix()
        key = next((k for k in KNOWN if f"/{k}/" in f"/{posix}" or PurePath(posix).parent.name == k
                    or PurePath(posix).stem.startswith(k)), None)
        if key is None:
            seen.setdefault(posix, {"name": posix, "licence": "unknown", "attribution": "unknown"})
        elif key not in seen:
            name, licence, attribution = KNOWN[key]
            seen[key] = {"name": name, "licence": licence, "attribution": attribution}
    return list(seen.values())
