"""Exponentially weighted baseline of one scope, learned from closed windows.

Rates are per window; the negative share is the ratio of the weighted negative and total rates
(not a mean of per-window shares, which empty and one-story windows would dominate). Windows in
which a detector fired are absorbed at a reduced weight so a surge does not mask itself, while a
lasting change of level is still learned eventually; so does the day's profile (below).

A young baseline is the plain mean of its windows (the step is at least 1/windows), so its rate
is unbiased from the first window rather than climbing from 0.

News has a day: a busy ticker's stories come in a trading session and trickle overnight, and the
fast rate above forgets the session by the next morning (a 16-hour night at 2% a minute leaves
nothing of it). Each half-hour slot of the UTC day therefore also keeps a slow profile of its rate,
learned once a day from the slot's mean, and a detector expects the higher of the two (`expected`):
the profile only ever raises what is expected, so the morning's ordinary open is not a spike, while a
surge at night is still judged against the night's own rate. The profile needs a day of history;
until a slot has been seen for half of it, that slot expects the fast rate alone. Its limits: a
scope whose news falls for good to a lower level is judged against the old level for a few days
(0.7 of it the next day, 0.34 after three); a large surge on a quiet scope, though learned at the
reduced weight, raises its slot's expectation for a day or two; and the slots are UTC, so a market's
session moves by a slot at a change of daylight-saving time and its open reads as before for about
two days.

A silence the baseline makes improbable is not learned: once a run of empty windows would have
had a probability under 1/1000 at the scope's rate (Poisson: rate x run > ln 1000), the source went
quiet (a weekend, a closed market, a feed down), and the news did not. Learned, a weekend took a
busy ticker's rate to nothing, and Monday's first ordinary minute opened a volume spike. A sparse
scope, whose silences are plausible, still decays as before.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from alerts.windows import WindowStats

# ln(1000): a run of empty windows this improbable under the rate is the source's silence, not news'.
SILENCE_EVIDENCE = math.log(1000.0)
SLOT = 1800.0  # the profile's slot of the day: half-hours, as markets open on them (09:30 New York)
SLOTS = round(86400 / SLOT)
# How far one day's slot moves its profile: two quiet weekend days leave half of a weekday's rate,
# which is enough to keep Monday's open from reading as a spike, and a month-old burst is gone.
PROFILE_ALPHA = 0.3
# A slot is learned only if the baseline saw at least half of it (a scope's first partial slot, a
# slot mostly silent or mostly anomalous does not speak for that time of day).
MIN_PROFILE_SECONDS = SLOT / 2


@dataclass
class Baseline:
    windows: int = 0
    rate: float = 0.0
    negative_rate: float = 0.0
    score_mean: float = 0.0
    score_var: float = 0.0
    quiet_run: int = 0  # empty windows in a row up to now
    # Stories per second in each half-hour slot of the UTC day (index 0-47), None until learned; and
    # the slot (counted from the epoch) being accumulated, with its weighted sums.
    profile: list[float | None] = field(default_factory=lambda: [None] * SLOTS)
    slot: int = -1
    slot_seconds: float = 0.0
    slot_volume: float = 0.0

    def update(self, window: WindowStats, alpha: float, weight: float = 1.0, slot_weight: float | None = None) -> None:
        """Learn one closed window at smoothing `alpha`, times `weight` (< 1 for a window in which a
        detector fired once armed); the day's profile learns it at `slot_weight` (default `weight`),
        which the monitor lowers for a window a detector fired in even during warm-up, so a scope born
        in a burst does not take its first minute as that slot's usual news.

        A young baseline averages all its windows equally (the step is at least 1/windows), so it is
        unbiased from the first window: started at 0 with the step `alpha` alone, a busy new scope's
        rate stood at 45% of its true rate when warm-up ended (1 - 0.98^30), and its next ordinary
        minutes opened volume spikes and surges. The silence guard waits until the baseline is no
        longer a plain mean (windows x alpha >= 1): a scope born in a burst took the burst as its
        rate, and the guard then refused every empty window after it, so the rate stayed near the
        burst for a day and hid the scope's spikes."""
        self.quiet_run = 0 if window.volume else self.quiet_run + 1
        if self.windows * alpha >= 1.0 and self.rate * self.quiet_run > SILENCE_EVIDENCE:
            return  # an improbable silence: the rate it would teach is the source's, not the news'
        self.windows += 1
        self._accumulate_slot(window, weight if slot_weight is None else slot_weight)
        alpha = max(alpha, 1.0 / self.windows) * weight
        self.rate += alpha * (window.volume - self.rate)
        self.negative_rate += alpha * (window.negative - self.negative_rate)
        if window.volume:
            # Per-story weight: a window of n stories moves the score baseline like n updates.
            weight = 1.0 - (1.0 - alpha) ** window.volume
            mean = window.mean_score
            var = max(window.score_sqsum / window.volume - mean**2, 0.0)
            delta = mean - self.score_mean
            self.score_mean += weight * delta
            self.score_var = (1 - weight) * (self.score_var + weight * delta**2) + weight * var

    def expected(self, window: WindowStats) -> tuple[float, float]:
        """Stories and negative stories expected in `window`: the fast rates, or where it is higher the
        profile of the window's slot of the day (its negatives at the fast negative share, which
        does not follow the clock as volume does)."""
        profiled = _assured(self.profile[int(window.start // SLOT) % SLOTS]) * (window.end - window.start)
        if profiled <= self.rate:
            return self.rate, self.negative_rate
        return profiled, max(self.negative_rate, profiled * self.negative_rate / self.rate if self.rate else 0.0)

    def _accumulate_slot(self, window: WindowStats, weight: float) -> None:
        """Add a window to its slot's sums at `weight`, in seconds and stories alike (so a slot spent
        mostly in a surge falls under MIN_PROFILE_SECONDS and is not learned that day); a new slot
        first folds the last one into the profile (a new list: the profile may be the saved state's
        own, which a rebuild reads again). A window a detector fired in is not kept out altogether:
        a new time of day's busy session fires at first, and kept out it was never learned (a capped
        version of this climbed 1.6-fold a day, and not at all from a slot learned at 0)."""
        slot = int(window.start // SLOT)
        if slot != self.slot:
            if self.slot >= 0 and self.slot_seconds >= MIN_PROFILE_SECONDS:
                index = self.slot % SLOTS
                learned = self.slot_volume / self.slot_seconds
                old = self.profile[index]
                self.profile = [*self.profile[:index], learned if old is None else old + PROFILE_ALPHA * (learned - old),
                                *self.profile[index + 1:]]
            self.slot, self.slot_seconds, self.slot_volume = slot, 0.0, 0.0
        self.slot_seconds += weight * (window.end - window.start)
        self.slot_volume += weight * window.volume

    def negative_share(self, prior: float, prior_weight: float) -> float:
        return (self.negative_rate + prior * prior_weight) / (self.rate + prior_weight)

    def score_sigma(self, floor: float) -> float:
        return max(math.sqrt(self.score_var), floor)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Baseline:
        """A saved baseline. A field it lacks (saved before the field existed, such as the day profile)
        starts at its default; a field it does not know (saved by a later version) is ignored, so a
        later baseline field does not stop a rollback to this version."""
        baseline = cls(**{name: value for name, value in d.items() if name in _FIELDS})
        if len(baseline.profile) != SLOTS:  # saved with another slot size: learned afresh
            baseline.profile, baseline.slot, baseline.slot_seconds, baseline.slot_volume = [None] * SLOTS, -1, 0.0, 0.0
        return baseline


_FIELDS = frozenset(f.name for f in fields(Baseline))


def _assured(profile: float | None) -> float:
    """A slot's rate (per second) as far as its counts vouch for it: two Poisson standard errors of
    one slot's count below it (0 where that is below 0). A sparse scope's slot holds a handful of
    stories, and its profile is mostly chance: taken at face value, the higher of it and the fast rate
    leaned high and hid small surges; a busy scope's slot (hundreds of stories) counts nearly whole."""
    if not profile:
        return 0.0
    count = profile * SLOT
    return max(0.0, count - 2.0 * math.sqrt(count)) / SLOT
