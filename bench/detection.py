"""Detection benchmark: recall, false alarms per simulated day and detection delay.

Generates several simulated days of scored stories (labels synthesised directly, no model) over
several topic and ticker scopes, with a diurnal rate, syndicated copies, small benign negative
clusters, and planted negative surges of several sizes. Runs the `alerts` monitor and a static
threshold detector on the same stream and prints a table (optionally JSON).

    .venv/bin/python bench/detection.py --seed 7 --days 5 --json runs/detection.json

Definitions: a surge is detected when its target scope opens a negative_surge or sentiment_shift
anomaly between the surge's first window and two windows after its last; delay is the index of
that window minus the index of the surge's first window (0 = flagged when the first surge window
closed). A false alarm is an opening (any kind) in a scope and time no planted surge touched.

With `--model DIR` (repeatable) the labels are no longer synthesised: every story's headline is a
row of the project's formal test part (models/data/formal/test.csv, never trained on), drawn by the
row's gold sentiment (a planted surge draws gold-negative rows; background stories draw negative,
positive and neutral rows at the usual shares), and the story's sentiment and score are what the
model says about that headline (syndicated copies carry the outlet's name, as in a real feed). The
same stream runs once per model, so the models are compared on identical news:

    .venv/bin/python bench/detection.py --seed 7 --days 5 --model models/default --model runs/new-model
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, __file__.rsplit("/bench/", 1)[0])

from alerts.engine import MonitorConfig, ScopeMonitor, Story, scopes_for

TOPICS = ["Earnings", "M&A", "Macro", "Regulation", "Markets", "Tech"]
TOPIC_WEIGHTS = [0.25, 0.1, 0.2, 0.1, 0.25, 0.1]
TICKERS = [f"T{i:02d}" for i in range(20)]
TICKER_WEIGHTS = [1 / (i + 1) for i in range(20)]
OUTLETS = ["Reuters", "Bloomberg", "AP", "MarketWatch", "FT", "WSJ", "CNBC", "Yahoo", "Barron's", "Benzinga"]
WORDS = ["shares", "profit", "outlook", "guidance", "deal", "board", "probe", "rate", "bank", "market", "growth", "revenue", "cut", "bid", "merger", "lawsuit", "supply", "demand", "chip", "oil", "bond", "yield", "inflation", "jobs", "forecast", "dividend"]
# (name, negative stories, minutes): planted surge sizes
SURGES = [("small", 8, 3), ("medium", 14, 3), ("large", 30, 2), ("sustained", 24, 15)]
STATIC_SHARE, STATIC_COUNT = 0.5, 5
WARMUP_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Planted:
    size: str
    scope: str
    start: float
    end: float
    touched: frozenset[str]  # every scope its stories count in


@dataclass
class Generated:
    stories: list[tuple[float, Story, list[str]]] = field(default_factory=list)  # (arrival, story, scopes)
    surges: list[Planted] = field(default_factory=list)


def _sentiment(rng: random.Random, negative_share: float) -> tuple[str, float]:
    u = rng.random()
    if u < negative_share:
        return "negative", -rng.uniform(0.3, 0.95)
    if u < negative_share + 0.27:
        return "positive", rng.uniform(0.3, 0.95)
    return "neutral", max(-0.29, min(0.29, rng.gauss(0.0, 0.12)))


def _headline(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 11))).capitalize()


class FormalHeadlines:
    """Headlines drawn from the formal test part by gold sentiment (model-in-the-loop mode)."""

    def __init__(self, path: str) -> None:
        import csv

        self.by_sentiment: dict[str, list[str]] = {"negative": [], "neutral": [], "positive": []}
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                self.by_sentiment[row["sentiment"]].append(row["text"])

    def draw(self, rng: random.Random, sentiment: str) -> str:
        return rng.choice(self.by_sentiment[sentiment])


def generate(seed: int, days: float, headlines: FormalHeadlines | None = None) -> Generated:
    rng = random.Random(seed)

    def headline_for(sentiment: str) -> str:
        return headlines.draw(rng, sentiment) if headlines else _headline(rng)

    out = Generated()
    counter = 0

    def emit(t: float, topic: str, tickers: list[str], sentiment: str, score: float, headline: str) -> list[str]:
        nonlocal counter
        counter += 1
        copies = rng.randint(2, 10) if rng.random() < 0.1 else 0
        for c in range(copies + 1):
            published = t + (rng.uniform(0, 600) if c else 0.0)
            text = headline if c == 0 else f"{headline} - {rng.choice(OUTLETS)}"
            story = Story(f"s{counter}-{c}", text, sentiment, score, published)  # type: ignore[arg-type]
            arrival = published + rng.expovariate(1 / 2.0)
            out.stories.append((arrival, story, scopes_for(topic, tickers)))
        return scopes_for(topic, tickers)

    def background_story(t: float, negative_share: float = 0.28) -> None:
        topic = rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
        tickers = rng.choices(TICKERS, TICKER_WEIGHTS, k=rng.choice([0, 0, 1, 1, 2]))
        sentiment, score = _sentiment(rng, negative_share)
        emit(t, topic, tickers, sentiment, score, headline_for(sentiment))

    horizon = days * 86400.0
    t = 0.0
    while True:  # thinned Poisson process: 0.6..3.6 stories/min over the day
        t += rng.expovariate(3.6 / 60)
        if t >= horizon:
            break
        diurnal = 0.6 + 3.0 * max(0.0, math.sin(2 * math.pi * (t % 86400) / 86400 - math.pi / 3)) ** 2
        if rng.random() < diurnal / 3.6:
            background_story(t)
        if rng.random() < 0.004:  # benign cluster: two or three negative stories on one name
            ticker = rng.choices(TICKERS, TICKER_WEIGHTS)[0]
            for _ in range(rng.randint(2, 3)):
                emit(t + rng.uniform(0, 300), rng.choice(TOPICS), [ticker], "negative", -0.6, headline_for("negative"))

    surge_times = sorted(rng.uniform(WARMUP_SECONDS, horizon - 3600) for _ in range(int(days * 8)))
    for start in surge_times:
        size, count, minutes = rng.choice(SURGES)
        if rng.random() < 0.5:
            topic, tickers, scope = rng.choice(TOPICS), [], ""
            scope = f"topic:{topic}"
        else:
            ticker = rng.choice(TICKERS)
            topic, tickers, scope = "", [ticker], f"ticker:{ticker}"
        touched: set[str] = set()
        for _ in range(count):
            at = start + rng.uniform(0, minutes * 60)
            story_topic = topic or rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
            touched.update(emit(at, story_topic, tickers, "negative", -rng.uniform(0.5, 0.95), headline_for("negative")))
        out.surges.append(Planted(size, scope, start, start + minutes * 60, frozenset(touched)))
    out.stories.sort(key=lambda item: item[0])
    return out


@dataclass
class Opening:
    scope: str
    kind: str
    window_start: float


class StaticThreshold:
    """The comparison: raw counts per window, fire when negative share > X and negatives >= Y."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.counts: dict[tuple[str, int], list[int]] = {}
        self.firing: set[str] = set()

    def observe(self, scope: str, story: Story) -> None:
        key = (scope, math.floor(story.published_at / self.window))
        neg_total = self.counts.setdefault(key, [0, 0])
        neg_total[0] += story.sentiment == "negative"
        neg_total[1] += 1

    def close(self, index: int, scopes: list[str]) -> list[Opening]:
        openings = []
        for scope in scopes:
            neg, total = self.counts.pop((scope, index), [0, 0])
            fire = neg >= STATIC_COUNT and neg / max(total, 1) > STATIC_SHARE
            if fire and scope not in self.firing:
                openings.append(Opening(scope, "static", index * self.window))
            (self.firing.add if fire else self.firing.discard)(scope)
        return openings


def label_with_model(data: Generated, model_dir: str) -> dict:
    """Replace each story's synthesised label with the model's; returns how the labels compare."""
    from models.runtime import Classifier

    clf = Classifier.load(model_dir, device="cpu")
    texts = sorted({story.headline for _, story, _ in data.stories})
    predicted = dict(zip(texts, clf.predict(texts)))
    agree = 0
    relabelled = []
    for arrival, story, scopes in data.stories:
        p = predicted[story.headline]
        agree += p.sentiment == story.sentiment
        relabelled.append((arrival, Story(story.id, story.headline, p.sentiment, p.sentiment_score, story.published_at),
                           scopes))
    data.stories = relabelled
    return {"model": model_dir, "version": clf.version, "variant": clf.variant, "distinct_headlines": len(texts),
            "label_agreement_with_gold": round(agree / max(1, len(relabelled)), 4)}


def run(seed: int, days: float, config: MonitorConfig, progress: bool = True, model: str | None = None,
        formal: str | None = None) -> dict:
    began = time.monotonic()
    data = generate(seed, days, FormalHeadlines(formal) if model and formal else None)
    labelled = label_with_model(data, model) if model else None
    scopes = [f"topic:{t}" for t in TOPICS] + [f"ticker:{t}" for t in TICKERS]
    monitors = {s: ScopeMonitor.new(s, config) for s in scopes}
    static = StaticThreshold(config.window_seconds)
    ours: list[Opening] = []
    baseline_openings: list[Opening] = []
    watermark = 0.0
    next_tick = config.window_seconds
    static_next = 0
    total = len(data.stories)
    for n, (arrival, story, story_scopes) in enumerate(data.stories):
        while arrival >= next_tick:  # the agent's periodic advance for quiet scopes
            for scope, monitor in monitors.items():
                ours += [Opening(scope, e.kind, _epoch(e.window_start)) for e in monitor.advance(watermark)
                         if e.event == "open"]
            last = math.floor((watermark - config.allowed_lateness) / config.window_seconds) - 1
            for index in range(static_next, last + 1):
                baseline_openings += static.close(index, scopes)
            static_next = max(static_next, last + 1)
            next_tick += config.window_seconds
        watermark = max(watermark, story.published_at)
        for scope in story_scopes:
            if scope in monitors:
                for e in monitors[scope].observe(story):
                    if e.event == "open":
                        ours.append(Opening(scope, e.kind, _epoch(e.window_start)))
                if not monitors[scope].is_late(story.published_at):
                    static.observe(scope, story)
        if progress and n % 20000 == 0:
            print(f"  seed {seed}: {n}/{total} stories, {time.monotonic() - began:.1f}s", file=sys.stderr)
    return {
        "seed": seed,
        "days": days,
        "stories": total,
        "surges": len(data.surges),
        "ours": score(data.surges, ours, config, {"negative_surge", "sentiment_shift"}, days),
        "static": score(data.surges, baseline_openings, config, {"static"}, days),
        "seconds": round(time.monotonic() - began, 1),
    } | ({"labelled_by": labelled} if labelled else {})


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def score(surges: list[Planted], openings: list[Opening], config: MonitorConfig, kinds: set[str], days: float) -> dict:
    w = config.window_seconds
    grace = (config.quiet_windows + 3) * w
    detected: dict[str, list[int]] = {}
    delays: list[int] = []
    for surge in surges:
        first = math.floor(surge.start / w)
        hits = [
            math.floor(o.window_start / w) - first
            for o in openings
            if o.scope == surge.scope and o.kind in kinds
            and first <= math.floor(o.window_start / w) <= math.floor(surge.end / w) + 2
        ]
        detected.setdefault(surge.size, []).append(bool(hits))
        if hits:
            delays.append(min(hits))
    false_alarms = 0
    for o in openings:
        t = o.window_start
        touched = any(
            o.scope in s.touched and s.start - w <= t <= s.end + grace for s in surges
        )
        false_alarms += not touched
    hits_all = [h for v in detected.values() for h in v]
    return {
        "recall": round(sum(hits_all) / max(len(hits_all), 1), 3),
        "recall_by_size": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(detected.items())},
        "false_alarms_per_day": round(false_alarms / days, 2),
        "median_delay_windows": statistics.median(delays) if delays else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=float, default=5.0)
    parser.add_argument("--json", help="write the result as JSON to this path")
    parser.add_argument("--model", action="append", default=[], metavar="DIR",
                        help="model in the loop: label formal test headlines with this model (repeat to compare)")
    parser.add_argument("--formal", default=str(Path(__file__).resolve().parents[1] / "models" / "data" / "formal" / "test.csv"),
                        help="labelled headlines to draw from in --model mode (default: the formal test part)")
    args = parser.parse_args(argv)
    results = [run(args.seed, args.days, MonitorConfig(), model=m, formal=args.formal) for m in (args.model or [None])]
    for result in results:
        print(f"seed {result['seed']}, {result['days']:g} simulated days, {result['stories']} stories "
              f"(incl. syndicated copies), {result['surges']} planted surges, {result['seconds']}s")
        if "labelled_by" in result:
            lb = result["labelled_by"]
            print(f"labels from model {lb['model']} ({lb['version']}, {lb['variant']}) on {lb['distinct_headlines']} "
                  f"distinct formal headlines; agreement with gold sentiment {lb['label_agreement_with_gold']:.1%}")
        print(f"{'detector':<22}{'recall':>8}{'false alarms/day':>18}{'median delay (windows)':>24}  recall by size")
        for name, key in (("finsentry (alerts/)", "ours"), (f"static share>{STATIC_SHARE} n>={STATIC_COUNT}", "static")):
            r = result[key]
            print(f"{name:<22}{r['recall']:>8}{r['false_alarms_per_day']:>18}{r['median_delay_windows']!s:>24}  "
                  + " ".join(f"{k}={v}" for k, v in r["recall_by_size"].items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results[0] if len(results) == 1 else results, fh, indent=2)


if __name__ == "__main__":
    main()
