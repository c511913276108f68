"""The spine on the embedded broker: every good record scored once, every bad one dead-lettered."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_for

from streams.settings import Settings
from streams.sources.generate import generate, malformed_with_kinds

pytestmark = pytest.mark.integration
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())
S = Settings()


def test_10000_good_and_500_malformed_records_all_accounted_for(embedded_broker, start_worker_process, kafka):
    worker = start_worker_process()
    good = [item.record for item in generate(10_000, rate=20, seed=11, start=datetime(2026, 1, 5, tzinfo=UTC))]
    bad = list(malformed_with_kinds(500, seed=11))
    # interleave: one malformed record after every 20 good ones
    stream: list[bytes | dict] = []
    bad_iter = iter(bad)
    for n, record in enumerate(good):
        stream.append(record)
        if n % 20 == 19:
            stream.append(next(bad_iter)[1])
    assert kafka.produce(embedded_broker.bootstrap, S.topic_raw, stream) == 10_500

    def done(seen):
        return len({v["id"] for v in seen[S.topic_scored]}) >= 10_000 and len(seen[S.topic_deadletter]) >= 500

    seen = kafka.consume(embedded_broker.bootstrap, [S.topic_scored, S.topic_deadletter], done, timeout=1000)  # a condition; generous for a loaded 2-core machine
    scored_ids = {v["id"] for v in seen[S.topic_scored]}
    assert scored_ids == {r["id"] for r in good}
    assert len(seen[S.topic_deadletter]) == 500
    scored_schema, deadletter_schema = schema("news.scored"), schema("news.deadletter")
    for value in seen[S.topic_scored][:500]:
        jsonschema.validate(value, scored_schema)
    by_reason: dict[str, int] = {}
    originals = {raw for _, raw in bad}
    for dl in seen[S.topic_deadletter]:
        jsonschema.validate(dl, deadletter_schema)
        assert dl["error"] and dl["stage"] == "ingest" and dl["source_topic"] == S.topic_raw
        assert dl["partition"] is not None and dl["offset"] is not None
        raw = dl["original"].encode() if dl["original_encoding"] == "utf-8" else base64.b64decode(dl["original"])
        assert raw in originals  # the original bytes survive, so a fixed record can be replayed
        by_reason[dl["reason"]] = by_reason.get(dl["reason"], 0) + 1
    assert set(by_reason) >= {"invalid_json", "invalid_utf8", "not_object", "missing_text", "wrong_type",
                              "oversized", "bad_id"}

    sample = next(v for v in seen[S.topic_scored] if v["id"] == good[0]["id"])
    for field in ("topic", "topic_confidence", "sentiment", "sentiment_score", "confidence", "tickers",
                  "model_version", "scored_at", "headline", "published_at"):
        assert field in sample
    assert -1 <= sample["sentiment_score"] <= 1

    status, text = worker.get("/metrics")
    assert status == 200
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def total(name: str, **labels: str) -> float:
        return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())

    assert total("finsentry_records_in_total", stage="ingest") == 10_500
    assert total("finsentry_records_out_total", stage="classify") >= 10_000
    assert total("finsentry_records_rejected_total", stage="ingest") == 500
    assert total("finsentry_scored_total") >= 10_000


def test_redelivered_ids_are_scored_once_within_ttl(embedded_broker, start_worker_process, kafka):
    worker = start_worker_process()
    records = [{"id": f"dup-{n}", "source": "t", "headline": f"Acme shares rise {n}"} for n in range(50)]
    kafka.produce(embedded_broker.bootstrap, S.topic_raw, records + records + records[:10])
    # Classify has decided on all 110 copies once each was scored or dropped as a repeat; scored
    # records are acknowledged by the broker before they are counted, so the topic is complete then.
    wait_for(lambda: worker.metric("finsentry_records_out_total", 'stage="classify"')
             + worker.metric("finsentry_duplicates_total", 'stage="classify"') >= 110, 300,
             "classify to score or drop every copy")
    seen = kafka.read(embedded_broker.bootstrap, [S.topic_scored])  # all of it, not what 10 s of reading found
    ids = [v["id"] for v in seen[S.topic_scored] if v["id"].startswith("dup-")]
    assert sorted(ids) == sorted(r["id"] for r in records)


def test_worker_endpoints(embedded_broker, start_worker_process):
    worker = start_worker_process()
    assert worker.get("/healthz") == (200, '{"status":"ok"}')
    status, body = worker.get("/readyz")
    assert status == 200 and '"model_loaded":true' in body
    status, text = worker.get("/metrics")
    assert 'finsentry_model_info{provider="CPUExecutionProvider"' in text
