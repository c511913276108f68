"""Negative surge: more novel negative stories than the scope's usual negative rate explains."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.baseline import Baseline
from alerts.config import MonitorConfig
from alerts.detectors.contract import Detection, Detector, poisson_score
from alerts.windows import WindowStats


def negative_surge(recent: Sequence[WindowStats], baseline: Baseline, config: MonitorConfig) -> Detection:
    """Too many novel negative stories for this scope's usual negative rate, over the last 1..k windows.

    A Poisson test on the negative count is far more powerful on sparse scopes than a binomial test
    on the share; the share-lift gate keeps a general news burst (all sentiments up) from counting.
    A surge rarely lines up with the tumbling windows: eight stories over three minutes land as
    2-3 per window, which no single window shows. So each span of the newest 1..k closed windows
    (`recent`, newest last) is tested against k times the baseline rate and the most surprising
    span is the score. The minimum count applies to the span, so a routine cluster of two or three
    negative stories on a quiet name cannot fire however the windows cut it. The share a span needs
    is the baseline share plus `min_share_lift`, but at most halfway from the baseline share to all
    negative: above a baseline share of 0.85 the plain lift asked for more than every story, so a
    name already in the news for bad reasons could never surge however much its bad news grew.
    """
    expected = max(baseline.expected(recent[-1])[1], config.min_expected_per_window)
    share = baseline.negative_share(config.prior_negative_share, config.min_expected_per_window)
    needed = min(share + config.min_share_lift, (share + 1.0) / 2)
    best = Detection("negative_surge", 0.0, config.surge_threshold, recent[-1].negative, expected)
    negative = volume = 0
    for span, window in enumerate(reversed(recent[-config.surge_span_windows:]), start=1):
        negative, volume = negative + window.negative, volume + window.volume
        if negative < config.min_negative or negative < volume * needed:
            continue
        score = poisson_score(negative, span * expected)
        if score > best.score:
            best = Detection("negative_surge", score, config.surge_threshold, negative, span * expected)
    return best


DETECTOR = Detector("negative_surge", lambda ctx: negative_surge(ctx.recent, ctx.baseline, ctx.config))
