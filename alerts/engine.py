"""Per-scope monitor: windows -> baseline -> detectors -> lifecycle, with JSON-serialisable state.

One `ScopeMonitor` per scope (e.g. 'ticker:AAPL') and window size; a Faust table keyed by scope
holds `to_dict()`. Everything is driven by event time (`published_at` and the watermark given to
`advance`), so replaying the same stories reproduces the same events and anomaly ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from alerts.baseline import Baseline
from alerts.config import MonitorConfig
from alerts.detectors import DETECTORS, KINDS, Context, Detection
from alerts.lifecycle import Lifecycle, severity_for
from alerts.novelty import NoveltyIndex
from alerts.records import AnomalyEvent, Story, iso_utc
from alerts.windows import Window, WindowSet, WindowStats

__all__ = ["AnomalyEvent", "MonitorConfig", "ScopeMonitor", "Story", "dormant", "scopes_for"]

# The sentiment of the sample headlines each kind's events carry (None: every story).
SAMPLES = {detector.kind: detector.samples for detector in DETECTORS}
# The sentiments whose samples closed windows keep for the spans a detector tests (`recent_samples`).
SPAN_SAMPLES = frozenset(s for s in SAMPLES.values() if s is not None)


def scopes_for(topic: str | None, tickers: list[str]) -> list[str]:
    """The scopes a scored story counts in: its topic and each distinct ticker."""
    scopes = [f"topic:{topic}"] if topic else []
    return scopes + [f"ticker:{t}" for t in dict.fromkeys(t.strip().upper() for t in tickers) if t]


@dataclass
class ScopeMonitor:
    scope: str
    config: MonitorConfig
    windows: WindowSet
    novelty: NoveltyIndex
    baseline: Baseline = field(default_factory=Baseline)
    cusum: float = 0.0
    lifecycles: dict[str, Lifecycle] = field(default_factory=lambda: {k: Lifecycle() for k in KINDS})
    recent: list[WindowStats] = field(default_factory=list)  # newest closed windows, newest last
    # The sample stories of `recent`'s windows (those of SPAN_SAMPLES sentiments), one list per window:
    # a surge found over a span of windows shows its headlines from the whole span, not only the newest.
    recent_samples: list[list[list]] = field(default_factory=list)

    @property
    def last_window(self) -> WindowStats | None:
        return self.recent[-1] if self.recent else None

    @classmethod
    def new(cls, scope: str, config: MonitorConfig) -> ScopeMonitor:
        return cls(
            scope, config,
            WindowSet(config.window_seconds, config.allowed_lateness),
            NoveltyIndex(config.novelty_horizon_seconds, config.novelty_max_distance),
        )

    def is_late(self, published_at: float) -> bool:
        """True if a story with this time would be ignored because its window already closed."""
        return self.windows.is_late(published_at)

    def observe(self, story: Story, watermark: float | None = None) -> list[AnomalyEvent]:
        """Count the story (once per id, near-duplicates once per story) and close due windows.

        The story counts in the window holding its `published_at`. It then acts as this scope's
        watermark, so a busy scope closes its windows without waiting for `advance`; quiet scopes
        need `advance`. `watermark` (default: `published_at`) is how far the story may move event
        time: the monitor passes `min(published_at, the Kafka timestamp of its record)`, so a source
        whose clock runs ahead counts its story in the right window without closing the windows of
        stories that are on time.

        Not atomic: the story is counted and the due windows popped before any is closed, so an
        exception leaves the state part-way. A caller that goes on must restore the state from
        before the call (the monitor rebuilds it from its last save, which is deterministic).
        """
        if self.windows.is_late(story.published_at) or self.windows.seen(story.id):
            return []
        novel = self.novelty.is_novel(story.published_at, story.headline)
        self.windows.add(story, novel, self.config.max_samples)
        return self.advance(story.published_at if watermark is None else watermark)

    def observing_closes(self, story: Story, watermark: float | None = None) -> bool:
        """Whether `observe(story, watermark)` would close a window that holds stories, so a caller that
        saves state in batches can save the windows' last contents first (empty windows close too, but
        hold nothing to save)."""
        return not (self.windows.is_late(story.published_at) or self.windows.seen(story.id)) \
            and self.windows.closes_any(story.published_at if watermark is None else watermark)

    def advance(self, watermark: float) -> list[AnomalyEvent]:
        """Close every window whose end + allowed lateness is at or before the watermark."""
        events: list[AnomalyEvent] = []
        for window in self.windows.close_due(watermark, self.config.max_quiet_windows):
            events.extend(self._close(window))
        return events

    def _close(self, window: Window) -> list[AnomalyEvent]:
        stats = window.stats()
        self.recent = [*self.recent, stats][-self.config.surge_span_windows:]
        kept = [s for s in window.samples if s[2] in SPAN_SAMPLES]
        self.recent_samples = _newest([*self.recent_samples, kept][-len(self.recent):], self.config.max_samples)
        armed = self.baseline.windows >= self.config.warmup_windows
        context = Context(self.recent, self.baseline, self.config, self.cusum)
        found = {detector.kind: detector.detect(context) for detector in DETECTORS}
        detections = []
        for detector in DETECTORS:
            detection = found[detector.kind]
            # E.g. a surge of negative news is also a surge of news and a fall in mean sentiment:
            # one event, one anomaly, so the volume spike or shift it explains is not opened as a
            # second alert for the same scope.
            # Only an anomaly not yet open is explained: an open one keeps its own score, or a surge
            # during a shift would resolve the shift, and reopen it as a second anomaly after.
            explained = self.lifecycles[detector.kind].active_id is None and any(
                self._fires_or_open(found[kind]) for kind in detector.explained_by)
            if detector.carries:
                # An explained window is not evidence for the running statistic either: it may fall,
                # not grow, or the surge's windows would open a "shift" once the surge resolved.
                self.cusum = (min(detection.score, self.cusum) if explained else detection.score) if armed else 0.0
            if explained:
                detection = replace(detection, score=0.0)
            detections.append(detection)
        events = []
        for detection in detections:
            lifecycle = self.lifecycles[detection.kind]
            step = lifecycle.step(self.scope, detection, stats.start, armed, self.config)
            if step is not None:
                events.append(self._event(step, detection, lifecycle, window))
            if step == "resolve":
                lifecycle.close(stats.end, self.config)
        fired = any(d.score >= d.threshold for d in detections)
        weight = self.config.anomalous_weight if armed and fired else 1.0
        self.baseline.update(stats, self.config.baseline_alpha, weight,
                             self.config.anomalous_weight if fired else 1.0)
        return events

    def _fires_or_open(self, detection: Detection) -> bool:
        return detection.score >= detection.threshold or self.lifecycles[detection.kind].active_id is not None

    def _event(self, step: str, detection: Detection, lifecycle: Lifecycle, window: Window) -> AnomalyEvent:
        wanted = SAMPLES[detection.kind]
        if step == "resolve":  # the windows that end an anomaly hold none of its stories
            samples = []
        elif wanted is None:  # a one-window test: the window's own stories
            samples = window.samples[: self.config.max_samples]
        else:  # the span's, newest window first (the newest alone may hold two of a surge's eight)
            spanned = [s for kept in reversed(self.recent_samples) for s in kept if s[2] == wanted]
            samples = list({s[0]: s for s in spanned}.values())[: self.config.max_samples]
        assert lifecycle.active_id is not None and lifecycle.opened_at is not None
        return AnomalyEvent(
            anomaly_id=lifecycle.active_id,
            event=step,  # type: ignore[arg-type]
            kind=detection.kind,
            scope=self.scope,
            window_start=iso_utc(lifecycle.opened_at),
            window_end=iso_utc(window.end),
            observed=float(detection.observed),
            expected=round(detection.expected, 6),
            score=round(detection.score, 4),
            severity=severity_for(lifecycle.peak, detection.threshold, self.config),
            sample_ids=[s[0] for s in samples],
            headlines=[s[1] for s in samples],
            samples=[{"id": s[0], "headline": s[1], "sentiment": s[2], "confidence": s[3] if len(s) > 3 else None,
                      "topic": s[4] if len(s) > 4 else None, "style": s[5] if len(s) > 5 else None}
                     for s in samples],
        )

    def to_dict(self) -> dict:
        return {
            "scope": self.scope,
            "windows": self.windows.to_dict(),
            "novelty": self.novelty.to_dict(),
            "baseline": self.baseline.to_dict(),
            "cusum": self.cusum,
            "lifecycles": {k: v.to_dict() for k, v in self.lifecycles.items()},
            "recent": [w.to_dict() for w in self.recent],
            "recent_samples": [[list(s) for s in kept] for kept in self.recent_samples],
        }

    @classmethod
    def from_dict(cls, d: dict, config: MonitorConfig) -> ScopeMonitor:
        return cls(
            d["scope"], config,
            WindowSet.from_dict(d["windows"], config.window_seconds, config.allowed_lateness),
            NoveltyIndex.from_dict(d["novelty"], config.novelty_horizon_seconds, config.novelty_max_distance),
            Baseline.from_dict(d["baseline"]),
            d["cusum"],
            {**{k: Lifecycle() for k in KINDS}, **{k: Lifecycle.from_dict(v) for k, v in d["lifecycles"].items()}},
            recent := [WindowStats.from_dict(w) for w in _recent(d)][-config.surge_span_windows:],
            _aligned([[list(s) for s in kept] for kept in d.get("recent_samples", [])], len(recent)),
        )


def dormant(state: dict) -> bool:
    """Whether a saved scope state (`ScopeMonitor.to_dict()`) is dormant: no open window, no open
    anomaly, only empty windows in the spans and a running statistic at 0.

    Closing an empty window then opens nothing (every span is empty, the statistic stays at 0: the
    detector contract) and changes only the baseline's decay, so a dormant scope's quiet windows can
    wait for its next story: `advance` then closes them in the same order with the same result, save
    that of more than `max_quiet_windows` (6 hours) only the newest are closed, as for any gap, which
    the fast rate cannot tell apart (0.98**360 < 0.001; the day's profile skips the slots not
    closed). Read from the dict, without building the monitor, because the monitor's timer asks it of
    every scope it owns every few seconds.
    """
    return (not state["windows"]["open"] and not state["cusum"]
            and all(lc["active_id"] is None for lc in state["lifecycles"].values())
            and all(not any(w["counts"].values()) for w in _recent(state)))


def _newest(by_window: list[list[list]], limit: int) -> list[list[list]]:
    """Per window (newest last), only the samples an event can read: the first `limit` of each
    sentiment taken newest window first (within a window, in the order it kept them). A scope's state
    (one Kafka record) need hold no more."""
    seen: dict[str, int] = {}
    kept: list[list[list]] = []
    for samples in reversed(by_window):
        window = []
        for sample in samples:
            if seen.get(sample[2], 0) < limit:
                seen[sample[2]] = seen.get(sample[2], 0) + 1
                window.append(sample)
        kept.append(window)
    return kept[::-1]


def _aligned(samples: list[list[list]], windows: int) -> list[list[list]]:
    """One sample list per window of `recent`, the newest last: a state saved before the span's samples
    were kept has none for its windows (empty lists), and a shorter span keeps the newest."""
    return ([[] for _ in range(windows)] + samples)[-windows:] if windows else []


def _recent(d: dict) -> list[dict]:
    """State saved before spans were tested held only `last_window`; a rolling upgrade keeps it."""
    if "recent" in d:
        return d["recent"]
    return [d["last_window"]] if d.get("last_window") else []
