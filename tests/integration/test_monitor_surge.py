"""Monitor on a real broker: scored stories with a planted negative surge open exactly one anomaly,
a replay of the same records opens nothing new, and bad records reach the dead-letter topic.

Scored records are produced straight to `news.scored`, so the outcome does not depend on the
model. They are paced, as live news would be, so event-time order survives the re-keying by scope.
"""

from __future__ import annotations

import time

import pytest
from waiting import wait_for

from streams.settings import Settings
from streams.sources.generate import Surge, generate

SCORES = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}
# Seed 11 with this surge opens exactly one anomaly on a topic scope (checked against ScopeMonitor
# directly); a shorter warm-up and wider lateness than the defaults keep the test short and paced.
STREAM = {"count": 1100, "rate": 1.0, "seed": 11, "surges": [Surge("Earnings", start=660, duration=60, rate=0.2)]}
MONITOR_ENV = {"FINSENTRY_MONITOR_WARMUP_WINDOWS": "10", "FINSENTRY_MONITOR_ALLOWED_LATENESS": "120"}
SURGE_SCOPE = "topic:Earnings"
PACE_PER_SECOND = 50
CHUNK = 25


def scored_stream() -> list[dict]:
    return [{**item.record, "topic": item.topic, "topic_confidence": 0.9, "sentiment": item.sentiment,
             "sentiment_score": SCORES[item.sentiment], "confidence": 0.9, "tickers": item.record.get("tickers", []),
             "model_version": "test", "scored_at": item.record["published_at"]} for item in generate(**STREAM)]




@pytest.mark.integration
def test_planted_surge_opens_one_anomaly_and_a_replay_opens_none(embedded_broker, start_worker_process, kafka) -> None:
    settings = Settings()
    worker = start_worker_process(**MONITOR_ENV)
    records = scored_stream()
    for start in range(0, len(records), CHUNK):
        chunk = records[start:start + CHUNK]
        kafka.produce(embedded_broker.bootstrap, settings.topic_scored, chunk, [r["id"] for r in chunk])
        time.sleep(CHUNK / PACE_PER_SECOND)
    bad = [b"{not json", b'{"id": 7, "headline": "x"}',
           b'{"id": "b1", "headline": "x", "sentiment": "negative", "sentiment_score": -1, "published_at": "yesterday"}']
    kafka.produce(embedded_broker.bootstrap, settings.topic_scored, bad, ["b0", "b1", "b2"])
    total = len(records) + len(bad)
    wait_for(lambda: worker.metric("finsentry_records_in_total", 'stage="monitor"') >= total, 60, "the monitor")

    def settled(seen: dict[str, list]) -> bool:
        return (any(e["event"] == "open" and e["scope"] == SURGE_SCOPE for e in seen[settings.topic_anomalies])
                and sum(d["stage"] == "monitor" for d in seen[settings.topic_deadletter]) >= len(bad))

    kafka.consume(embedded_broker.bootstrap, [settings.topic_anomalies, settings.topic_deadletter], settled, 30)
    time.sleep(6)  # one monitor timer tick, for the quiet scopes' last windows
    first = kafka.consume(embedded_broker.bootstrap, [settings.topic_anomalies, settings.topic_deadletter],
                          lambda _: False, timeout=5)
    opens = [e for e in first[settings.topic_anomalies] if e["event"] == "open" and e["scope"] == SURGE_SCOPE]
    assert [e["kind"] for e in opens] == ["negative_surge"], first[settings.topic_anomalies]
    assert opens[0]["headlines"] and len(opens[0]["headlines"]) == len(opens[0]["sample_ids"])
    rejected = [d for d in first[settings.topic_deadletter] if d["stage"] == "monitor"]
    assert sorted(d["reason"] for d in rejected) == ["bad_timestamp", "invalid_json", "wrong_type"]
    assert worker.metric("finsentry_anomalies_total", 'event="open",kind="negative_surge",severity="'
                  + opens[0]["severity"] + '"') >= 1

    # Redelivery: the same records again, as after a consumer crash before its commit.
    kafka.produce(embedded_broker.bootstrap, settings.topic_scored, records, [r["id"] for r in records])
    wait_for(lambda: worker.metric("finsentry_records_in_total", 'stage="monitor"') >= total + len(records), 60,
             "the replay")
    time.sleep(2)  # let any (wrongly) emitted event reach the topic
    again = kafka.consume(embedded_broker.bootstrap, [settings.topic_anomalies], lambda _: False, timeout=5)
    events = again[settings.topic_anomalies]
    # Nothing is emitted twice. (The monitor timer may still close the stream's last quiet windows
    # meanwhile, adding new events, so `again` may be longer than `first`.)
    keys = [(e["anomaly_id"], e["event"], e["window_start"]) for e in events]
    assert len(keys) == len(set(keys)), keys
    assert {(e["anomaly_id"], e["event"], e["window_start"]) for e in first[settings.topic_anomalies]} <= set(keys)
    assert [e for e in events if e["event"] == "open" and e["scope"] == SURGE_SCOPE] == opens
