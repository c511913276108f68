"""Server-side SVG charts: numbers in, an escaped SVG string out (no script, no external reference).

`Series` keeps per-scope, per-minute story counts and sentiment sums in memory, fed from
`news.scored` on this worker (streams/console/feed.py). A worker sees the partitions it owns, so with
several workers each console shows its own share; one worker (the demo, the tests) sees everything.

Bounded under a spray of junk: at most MAX_SCOPES scopes, counting only those with a story in the
last KEEP_SECONDS (`prune` drops a scope once its last minute is gone, so room comes back), and a
story dated outside [now - KEEP_SECONDS, now + FUTURE_SECONDS] is not counted at all (a future-dated
one would never be pruned). A scope without room is said to be untracked on its chart (`untracked`),
rather than drawn as if nothing happened in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from markupsafe import Markup, escape

SENTIMENT_VALUE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
MINUTE = 60
KEEP_SECONDS = 26 * 3600
MAX_SCOPES = 2_000  # bounded memory under a spray of tickers
FUTURE_SECONDS = 3600  # clock skew a story's time may have; later ones are not counted


@dataclass
class Bucket:
    count: int = 0
    sentiment: float = 0.0  # sum of -1/0/+1


class Series:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.scopes: dict[str, dict[int, Bucket]] = {}

    def add(self, scope: str, at: float, sentiment: str | None) -> bool:
        """Count one story; False when it is not counted: dated outside the kept range around now, or of
        a new scope while MAX_SCOPES others have stories."""
        now = self.clock()
        if not (now - KEEP_SECONDS <= at <= now + FUTURE_SECONDS):
            return False
        if scope not in self.scopes and len(self.scopes) >= MAX_SCOPES:
            return False
        minute = int(at // MINUTE)
        bucket = self.scopes.setdefault(scope, {}).setdefault(minute, Bucket())
        bucket.count += 1
        bucket.sentiment += SENTIMENT_VALUE.get(sentiment or "", 0.0)
        return True

    def prune(self, now: float) -> None:
        """Forget the minutes outside [now - KEEP_SECONDS, now + FUTURE_SECONDS], and every scope left
        without one, so its room goes to the next scope seen."""
        oldest, latest = int((now - KEEP_SECONDS) // MINUTE), int((now + FUTURE_SECONDS) // MINUTE)
        for scope, buckets in list(self.scopes.items()):
            for minute in [m for m in buckets if m < oldest or m > latest]:
                del buckets[minute]
            if not buckets:
                del self.scopes[scope]

    def untracked(self, scope: str) -> str | None:
        """Why a scope's chart may be empty when that is not the news: the table is full of other scopes,
        so this one's stories are not counted. None when it is counted (or would be, were one to come)."""
        if scope in self.scopes:
            return None
        if len(self.scopes) >= MAX_SCOPES:
            return (f"not tracked: this worker charts at most {MAX_SCOPES} scopes with recent stories and is "
                    "full; an empty chart here does not mean no news")
        return None

    def binned(self, scope: str, start: float, end: float, step: float) -> list[tuple[float, int, float | None]]:
        """(bin start, story count, mean sentiment or None) for bins of `step` seconds in [start, end)."""
        n = max(1, int((end - start) // step))
        counts, sums = [0] * n, [0.0] * n
        for minute, bucket in self.scopes.get(scope, {}).items():
            at = minute * MINUTE
            if start <= at < end:
                i = min(n - 1, int((at - start) // step))
                counts[i] += bucket.count
                sums[i] += bucket.sentiment
        return [(start + i * step, counts[i], sums[i] / counts[i] if counts[i] else None) for i in range(n)]

    def of_kind(self, kind: str) -> list[str]:
        """The scopes seen of one kind ('topic' or 'ticker'), sorted."""
        return sorted(s for s in self.scopes if s.startswith(f"{kind}:"))


SERIES = Series()  # this worker's, fed by streams/console/feed.py


def _x(i: int, n: int, left: float, width: float) -> float:
    return left + (width * (i + 0.5) / n if n else 0)


def hhmm(at: float) -> str:
    """Epoch seconds as a UTC clock time, `HH:MM`: the case chart's axis and its table."""
    return time.strftime("%H:%M", time.gmtime(at))


def hour_marks(start: float, end: float) -> list[float]:
    """The whole UTC hours in [start, end], epoch seconds: where the case chart's time axis is labelled."""
    first = -(-int(start) // 3600) * 3600
    return [float(t) for t in range(first, int(end) + 1, 3600)]


def scope_chart(bins: list[tuple[float, int, float | None]], mark: tuple[float, float] | None, title: str,
                width: int = 640, height: int = 236, note: str | None = None) -> Markup:
    """Volume as bars, mean sentiment (-1..+1) as a line, the bins the anomaly window touches shaded
    and labelled (none when it lies outside the chart), the whole UTC hours marked on the time axis;
    `note`, when given, written across the plot (the scope is not tracked: no bars is no evidence). `bins` as `Series.binned` gives them; `mark` (start, end) in
    epoch seconds. The numbers themselves are for `chart_table` (an image is no data for a screen reader)."""
    left, right, top, bottom = 44, 44, 24, 44
    pw, ph = width - left - right, height - top - bottom
    n = len(bins)
    start = bins[0][0] if bins else 0.0
    step = (bins[1][0] - bins[0][0]) if n > 1 else 60.0
    span = step * n
    peak = max([c for _, c, _ in bins] + [1])
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>'),
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    if mark is not None and n and mark[0] < start + span and mark[1] > start:  # drawn only where it is
        # the bins the window touches, whole: a 1-minute window in 6 hours was an invisible sliver
        first = max(0, int((mark[0] - start) // step))
        last = min(n - 1, max(first, -int(-(mark[1] - start) // step) - 1))
        x0, wide = left + pw * first / n, pw * (last - first + 1) / n
        out.append(f'<rect x="{x0:.1f}" y="{top}" width="{wide:.1f}" height="{ph}" fill="#ffd54f" '
                   f'fill-opacity="0.55" stroke="#f9a825" class="anomaly-window"><title>anomaly window</title></rect>'
                   f'<text x="{x0 + wide / 2:.1f}" y="{top - 6}" font-size="11" text-anchor="middle" '
                   f'fill="#8d6e00">anomaly</text>')
    bar = pw / n * 0.8 if n else 0
    for i, (_, count, _) in enumerate(bins):
        if count:
            h = ph * count / peak
            out.append(f'<rect x="{_x(i, n, left, pw) - bar / 2:.1f}" y="{top + ph - h:.1f}" width="{bar:.1f}" '
                       f'height="{h:.1f}" fill="#90a4ae"/>')
    zero = top + ph / 2
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{zero}" y2="{zero}" stroke="#bbb" stroke-dasharray="3 3"/>')
    points = [f"{_x(i, n, left, pw):.1f},{top + ph / 2 - (ph / 2) * s:.1f}"
              for i, (_, _, s) in enumerate(bins) if s is not None]
    if len(points) == 1:  # one bin with stories: a dot, not an invisible one-point line
        x, y = points[0].split(",")
        out.append(f'<circle cx="{x}" cy="{y}" r="3" fill="#c62828"/>')
    elif points:
        out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#c62828" stroke-width="2"/>')
    for t in hour_marks(start, start + span) if n else []:
        x = left + pw * (t - start) / span
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#777"/>'
                   f'<text x="{x:.1f}" y="{top + ph + 15}" font-size="10" text-anchor="middle" fill="#555">'
                   f'{hhmm(t)}</text>')
    out.append(f'<text x="4" y="{top + 10}" font-size="11" fill="#c62828">+1</text>'
               f'<text x="4" y="{top + ph}" font-size="11" fill="#c62828">-1</text>'
               f'<text x="{left + pw + 4}" y="{top + 10}" font-size="11" fill="#546e7a">{peak}</text>'
               f'<text x="{left + pw + 4}" y="{top + ph}" font-size="11" fill="#546e7a">0</text>'
               f'<text x="{left}" y="{height - 6}" font-size="11">sentiment (line, left) and stories per bin '
               f'(bars, right); time UTC</text>')
    if note:
        out.append(f'<text x="{left + pw / 2}" y="{top + ph / 2 - 8}" font-size="13" text-anchor="middle" '
                   f'fill="#b71c1c" class="untracked">{escape(note)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def chart_table(bins: list[tuple[float, int, float | None]], step: float) -> list[dict[str, str]]:
    """The chart's numbers as rows for a table beside it: each bin with stories, its UTC time span,
    story count and mean sentiment (two decimals)."""
    return [{"bin": f"{hhmm(at)}–{hhmm(at + step)}", "stories": str(count),
             "sentiment": f"{mean:+.2f}" if mean is not None else ""}
            for at, count, mean in bins if count]


def sparkline(values: Iterable[float | None], title: str, width: int = 240, height: int = 48) -> Markup:
    """Mean sentiment per bin, -1..+1, as a small line; gaps where a bin had no story."""
    vals = list(values)
    n = len(vals)
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}" class="spark"><title>{escape(title)}</title>'),
           f'<line x1="0" x2="{width}" y1="{height / 2}" y2="{height / 2}" stroke="#ccc" stroke-dasharray="2 2"/>']
    run: list[str] = []
    for i, v in enumerate(vals + [None]):
        if v is None:
            if len(run) == 1:
                x, y = run[0].split(",")
                out.append(f'<circle cx="{x}" cy="{y}" r="2" fill="#1565c0"/>')
            elif run:
                out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
            run = []
        else:
            run.append(f"{width * (i + 0.5) / n:.1f},{height / 2 - (height / 2 - 3) * v:.1f}")
    out.append("</svg>")
    return Markup("".join(out))
