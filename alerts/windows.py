"""Event-time tumbling windows for one scope.

A window closes once the watermark passes its end plus the allowed lateness; a story for a window
that already closed is late and ignored. Story ids are kept only for open windows: that is all
idempotency needs, because a redelivered story for a closed window is late anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from alerts.records import SENTIMENTS, Story


@dataclass(frozen=True)
class WindowStats:
    """What a closed window tells the baseline, the detectors and the metrics."""

    start: float
    end: float
    counts: dict[str, int]
    duplicates: int
    score_sum: float
    score_sqsum: float

    @property
    def volume(self) -> int:
        return sum(self.counts.values())

    @property
    def negative(self) -> int:
        return self.counts["negative"]

    @property
    def negative_share(self) -> float | None:
        """None for an empty window: it has no share, which is not a share of 0 ("no negatives")."""
        return self.negative / self.volume if self.volume else None

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.volume if self.volume else 0.0

    def to_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "counts": dict(self.counts),
            "duplicates": self.duplicates,
            "score_sum": self.score_sum,
            "score_sqsum": self.score_sqsum,
        }

    @classmethod
    def from_dict(cls, d: dict) -> WindowStats:
        return cls(d["start"], d["end"], dict(d["counts"]), d["duplicates"], d["score_sum"], d["score_sqsum"])


@dataclass
class Window:
    """An open window: running counts plus the ids and sample stories needed until it closes."""

    start: float
    end: float
    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SENTIMENTS})
    duplicates: int = 0
    score_sum: float = 0.0
    score_sqsum: float = 0.0
    ids: list[str] = field(default_factory=list)
    # [id, headline, sentiment, confidence or None, topic or None, "social" or None]; saved before
    # topic: four items, before style: five
    samples: list[list] = field(default_factory=list)

    def add(self, story: Story, novel: bool, max_samples: int) -> None:
        self.ids.append(story.id)
        if not novel:
            self.duplicates += 1
            return
        self.counts[story.sentiment] += 1
        self.score_sum += story.sentiment_score
        self.score_sqsum += story.sentiment_score**2
        if sum(1 for s in self.samples if s[2] == story.sentiment) < max_samples:
            self.samples.append([story.id, story.headline, story.sentiment, story.confidence, story.topic, story.style])

    def stats(self) -> WindowStats:
        return WindowStats(self.start, self.end, dict(self.counts), self.duplicates, self.score_sum, self.score_sqsum)

    def to_dict(self) -> dict:
        return {**self.stats().to_dict(), "ids": list(self.ids), "samples": [list(s) for s in self.samples]}

    @classmethod
    def from_dict(cls, d: dict) -> Window:
        return cls(
            d["start"], d["end"], dict(d["counts"]), d["duplicates"], d["score_sum"], d["score_sqsum"],
            list(d["ids"]), [list(s) for s in d["samples"]],
        )


@dataclass
class WindowSet:
    """The open windows of one scope, keyed by window index (start // size)."""

    size: float
    lateness: float
    open: dict[int, Window] = field(default_factory=dict)
    next_index: int | None = None  # first window index not yet closed; None until the first close
    _ids: set[str] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._ids = {i for w in self.open.values() for i in w.ids}

    def index_of(self, t: float) -> int:
        return math.floor(t / self.size)

    def is_late(self, t: float) -> bool:
        return self.next_index is not None and self.index_of(t) < self.next_index

    def closed_at(self) -> float | None:
        """The least watermark (Unix seconds) that closes every window closed so far, the end of the
        last one plus the lateness; None before any close. A late story is more than the lateness
        behind it, even where the caller's event clock is not: a restarted worker's clock starts
        again from the stories it reads, while the scope's windows come back closed from the changelog."""
        return None if self.next_index is None else self.next_index * self.size + self.lateness

    def seen(self, story_id: str) -> bool:
        return story_id in self._ids

    def add(self, story: Story, novel: bool, max_samples: int) -> None:
        index = self.index_of(story.published_at)
        window = self.open.get(index)
        if window is None:
            window = self.open[index] = Window(index * self.size, (index + 1) * self.size)
        window.add(story, novel, max_samples)
        self._ids.add(story.id)

    def _last_due(self, watermark: float) -> int:
        """Index of the newest window whose end + lateness is at or before the watermark."""
        return math.floor((watermark - self.lateness) / self.size) - 1

    def _first_unclosed(self) -> int | None:
        """Where the next close starts: after the last one or, before any, at the oldest open window.

        Only a close fixes that point. Fixing it at the first story's window made a scope's second
        story late when it was older than the first by a minute, well within the allowed lateness
        (found by the crash test, whose replays reorder stories).
        """
        if self.next_index is not None:
            return self.next_index
        return min(self.open) if self.open else None

    def closes_any(self, watermark: float) -> bool:
        """Whether `close_due(watermark)` would close a window that holds stories: what a caller saving
        state in batches must save first, or waits for. Empty windows close too, but hold nothing."""
        if not self.open:
            return False
        last = self._last_due(watermark)
        return any(index <= last for index in self.open)

    def behind(self, watermark: float) -> bool:
        """Whether `close_due(watermark)` would close any window, empty ones included: a dormant
        scope's quiet windows wait for its next story (alerts.engine.dormant)."""
        first = self._first_unclosed()
        return first is not None and first <= self._last_due(watermark)

    def close_due(self, watermark: float, max_empty: int) -> list[Window]:
        """Pop every window whose end + lateness <= watermark, oldest first: the open ones, and of the
        empty ones only the newest `max_empty` before the watermark.

        Empty windows are returned because a quiet minute is evidence for the baseline. The cap is
        there because a valid but old `published_at` (an archive item, a hostile producer) in a new
        scope would otherwise make the next watermark close one empty window per minute for years:
        millions of closes on the event loop, for evidence the baseline has long forgotten.
        """
        first = self._first_unclosed()
        last = self._last_due(watermark)
        if first is None or first > last:
            return []
        first_empty = max(first, last + 1 - max_empty)
        due = sorted({i for i in self.open if first <= i <= last} | set(range(first_empty, last + 1)))
        closed = []
        for index in due:
            window = self.open.pop(index, None) or Window(index * self.size, (index + 1) * self.size)
            self._ids.difference_update(window.ids)
            closed.append(window)
        self.next_index = last + 1
        return closed

    def to_dict(self) -> dict:
        return {"open": {str(k): w.to_dict() for k, w in self.open.items()}, "next_index": self.next_index}

    @classmethod
    def from_dict(cls, d: dict, size: float, lateness: float) -> WindowSet:
        return cls(size, lateness, {int(k): Window.from_dict(w) for k, w in d["open"].items()}, d["next_index"])
