"""Monitor on a real broker: scored stories with a planted negative surge open exactly one anomaly,
a replay of the same records opens nothing new, and bad records reach the dead-letter topic.

Scored records are produced straight to `news.scored`, so the outcome does not depend on the
model. They are paced, as live news would be, and the producer never runs more than a few chunks
ahead of what the monitor has processed and committed, so event-time order survives the re-keying
by scope however slow the machine is (a story that falls behind the allowed lateness is ignored).
"""

from __future__ import annotations

import time

import pytest
from waiting import wait_for

from alerts.config import MonitorConfig
from alerts.engine import scopes_for
from alerts.windows import WindowSet
from streams.settings import Settings
from streams.sources.generate import Surge, generate
from streams.validation import parse_time

SCORES = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}
# Seed 11 with this surge opens exactly one anomaly on a topic scope (checked against ScopeMonitor
# directly); a shorter warm-up and wider lateness than the defaults keep the test short and paced.
# At 0.2/s (nine negatives in a minute where Earnings has two) it opened only while the young
# baseline read the scope's rate at 18% of the truth (alerts/baseline.py), as did a false surge on
# another topic; judged against the true rate it is no longer a surge, and 0.3/s is.
STREAM = {"count": 1100, "rate": 1.0, "seed": 11, "surges": [Surge("Earnings", start=660, duration=60, rate=0.3)]}
MONITOR_ENV = {"FINSENTRY_MONITOR_WARMUP_WINDOWS": "10", "FINSENTRY_MONITOR_ALLOWED_LATENESS": "120"}
CONFIG = MonitorConfig(warmup_windows=10, allowed_lateness=120.0)  # what MONITOR_ENV makes of the worker's
SURGE_SCOPE = "topic:Earnings"
PACE_PER_SECOND = 50
CHUNK = 25
# A chunk is sent only once all but the last AHEAD chunks are processed, so at most AHEAD + 1 chunks
# (~75 s of simulated news at 1 story/s or more) are in flight: inside the 120 s allowed lateness,
# so no story is late whatever the machine's speed.
AHEAD = 2
GROUP = Settings().app_id  # the worker's consumer group
BY_SCOPE = "news.by-scope"  # streams/agents/monitor.py: the fan-out's output, the monitor's input
CHANGELOG = f"{GROUP}-monitor-scopes-changelog"
WAIT = 300  # seconds; a condition normally holds within a few


def scored_stream() -> list[dict]:
    return [{**item.record, "topic": item.topic, "topic_confidence": 0.9, "sentiment": item.sentiment,
             "sentiment_score": SCORES[item.sentiment], "confidence": 0.9, "tickers": item.record.get("tickers", []),
             "model_version": "test", "scored_at": item.record["published_at"]} for item in generate(**STREAM)]


def fanned_out(records: list[dict]) -> int:
    """The `news.by-scope` records the fan-out makes of these stories: one per scope."""
    return sum(len(scopes_for(r["topic"], r["tickers"])) for r in records)


def processed(kafka, bootstrap: str, scored: int, by_scope: int) -> bool:
    """The worker has handled and committed `scored` records of `news.scored` and `by_scope` of
    `news.by-scope`: the monitor is done with them, their anomaly events acknowledged by the broker."""
    return (kafka.committed(bootstrap, GROUP, Settings().topic_scored) >= scored
            and kafka.committed(bootstrap, GROUP, BY_SCOPE) >= by_scope)


def windows_closed_to(kafka, bootstrap: str, scopes: set[str], watermark: float) -> bool:
    """The monitor timer's effect: every scope's saved state has closed each window due at the
    watermark (quiet scopes' last windows are closed by the timer alone)."""
    states = {s["scope"]: s for s in kafka.read(bootstrap, [CHANGELOG])[CHANGELOG]}
    return scopes <= set(states) and not any(
        WindowSet.from_dict(s["windows"], CONFIG.window_seconds, CONFIG.allowed_lateness).closes_any(watermark)
        for s in states.values())


@pytest.mark.integration
def test_planted_surge_opens_one_anomaly_and_a_replay_opens_none(embedded_broker, start_worker_process, kafka) -> None:
    settings = Settings()
    bootstrap = embedded_broker.bootstrap
    worker = start_worker_process(**MONITOR_ENV)
    records = scored_stream()
    for start in range(0, len(records), CHUNK):
        behind = max(0, start - AHEAD * CHUNK)
        wait_for(lambda n=behind: processed(kafka, bootstrap, n, fanned_out(records[:n])), WAIT,
                 f"the monitor to finish the first {behind} stories")
        chunk = records[start:start + CHUNK]
        kafka.produce(bootstrap, settings.topic_scored, chunk, [r["id"] for r in chunk])
        time.sleep(CHUNK / PACE_PER_SECOND)  # live pacing; the wait above is what keeps the order
    bad = [b"{not json", b'{"id": 7, "headline": "x"}',
           b'{"id": "b1", "headline": "x", "sentiment": "negative", "sentiment_score": -1, "published_at": "yesterday"}']
    kafka.produce(bootstrap, settings.topic_scored, bad, ["b0", "b1", "b2"])
    total = len(records) + len(bad)
    wait_for(lambda: processed(kafka, bootstrap, total, fanned_out(records)), WAIT, "the monitor to finish the stream")
    assert worker.metric("finsentry_records_in_total", 'stage="monitor"') >= total
    assert worker.metric("finsentry_monitor_late_stories_total", "") == 0  # the order survived

    def settled(seen: dict[str, list]) -> bool:
        return (any(e["event"] == "open" and e["scope"] == SURGE_SCOPE for e in seen[settings.topic_anomalies])
                and sum(d["stage"] == "monitor" for d in seen[settings.topic_deadletter]) >= len(bad))

    kafka.consume(bootstrap, [settings.topic_anomalies, settings.topic_deadletter], settled, WAIT)

    # Quiet scopes' last windows close on the monitor timer, at the newest publication time seen.
    scopes = {scope for r in records for scope in scopes_for(r["topic"], r["tickers"])}
    watermark = max(parse_time(r["published_at"]).timestamp() for r in records)
    wait_for(lambda: windows_closed_to(kafka, bootstrap, scopes, watermark), WAIT,
             "the monitor timer to close every window due at the stream's end", every=3)
    first = kafka.read(bootstrap, [settings.topic_anomalies, settings.topic_deadletter])
    opens = [e for e in first[settings.topic_anomalies] if e["event"] == "open" and e["scope"] == SURGE_SCOPE]
    assert [e["kind"] for e in opens] == ["negative_surge"], first[settings.topic_anomalies]
    assert opens[0]["headlines"] and len(opens[0]["headlines"]) == len(opens[0]["sample_ids"])
    rejected = [d for d in first[settings.topic_deadletter] if d["stage"] == "monitor"]
    assert sorted(d["reason"] for d in rejected) == ["bad_timestamp", "invalid_json", "wrong_type"]
    assert worker.metric("finsentry_anomalies_total", 'event="open",kind="negative_surge",severity="'
                  + opens[0]["severity"] + '"') >= 1

    # Redelivery: the same records again, as after a consumer crash before its commit. Once the
    # monitor has committed every one of them, any event they (wrongly) caused is on the topic.
    kafka.produce(bootstrap, settings.topic_scored, records, [r["id"] for r in records])
    wait_for(lambda: processed(kafka, bootstrap, total + len(records), 2 * fanned_out(records)), WAIT,
             "the monitor to finish the replay")
    again = kafka.read(bootstrap, [settings.topic_anomalies])
    events = again[settings.topic_anomalies]
    # Nothing is emitted twice, and nothing new: every due window was closed before the replay,
    # and the replay moves no watermark.
    keys = [(e["anomaly_id"], e["event"], e["window_start"]) for e in events]
    assert len(keys) == len(set(keys)), keys
    assert {(e["anomaly_id"], e["event"], e["window_start"]) for e in first[settings.topic_anomalies]} == set(keys)
    assert [e for e in events if e["event"] == "open" and e["scope"] == SURGE_SCOPE] == opens
