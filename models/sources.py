"""Who made the data a model learnt from, and on what terms: the attribution its card carries.

Matched by the folder a training file sits in (`../shared/data/<folder>/train.csv`) or, for the
project's own files, by their path. FinEntity's ODC-BY licence requires that a model card listing
the training data names it and its authors; the card carries every known source the same way.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

Attribution = tuple[str, str, str]  # name, licence, attribution

# A dataset under ../shared/data/<folder>/{train,dev}.csv, matched by its folder's exact name.
DATASETS: dict[str, Attribution] = {
    "twitter-financial-news-topic": ("Twitter Financial News (topic), version 1.0.0", "MIT",
                                     "the authors of zeroshot/twitter-financial-news-topic"),
    "twitter-financial-news-sentiment": ("Twitter Financial News (sentiment), version 1.0.0", "MIT",
                                         "the authors of zeroshot/twitter-financial-news-sentiment"),
    "finentity-sentences": ("FinEntity", "ODC-BY 1.0",
                            "Tang et al., \"FinEntity: Entity-level Sentiment Classification for Financial Texts\", EMNLP 2023"),
}
# The project's own files, matched by their normalised path's end.
FORMAL = re.compile(r"(^|/)models/data/formal/(train|dev|test)\.csv$")
AUGMENT = re.compile(r"(^|/)formal_augment\d*\.csv$")  # scripts/formal_augment.py --out runs/formal_augmentN.csv
OWN: tuple[tuple[re.Pattern[str], Attribution], ...] = (
    (FORMAL, ("finsentry formal finance headlines", "Apache-2.0", "the finsentry authors (models/data/formal/README.md)")),
    (AUGMENT, ("finsentry template headlines (scripts/formal_augment.py)", "Apache-2.0", "the finsentry authors")),
)
SPLITS = {"train.csv", "dev.csv"}


def _known(path: str) -> tuple[str, Attribution] | None:
    posix = posixpath.normpath(path.replace("\\", "/"))  # one spelling on every OS, ".." resolved
    pure = PurePosixPath(posix)
    if pure.name in SPLITS and pure.parent.name in DATASETS:
        return pure.parent.name, DATASETS[pure.parent.name]
    for pattern, attribution in OWN:
        if pattern.search(posix):
            return pattern.pattern, attribution
    return None


def attributions(paths: Iterable[str]) -> list[dict[str, str]]:
    """One entry per distinct known source among `paths`, in first-seen order; any other file is
    listed by its path with licence "unknown", so a card never claims terms nobody checked."""
    seen: dict[str, dict[str, str]] = {}
    for path in paths:
        known = _known(path)
        if known is None:
            seen.setdefault(path, {"name": path, "licence": "unknown", "attribution": "unknown"})
        elif known[0] not in seen:
            name, licence, attribution = known[1]
            seen[known[0]] = {"name": name, "licence": licence, "attribution": attribution}
    return list(seen.values())
