"""The published JSON Schemas accept what the pipeline accepts and emits, so producers can trust them."""

import json
from pathlib import Path

import jsonschema
import pytest

from streams.sources.generate import generate
from streams.validation import Story, validate

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_schema_is_valid_json_schema(path):
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_generated_records_match_news_raw_schema_and_pass_ingest():
    schema = json.loads((SCHEMAS / "news.raw.schema.json").read_text())
    for item in generate(300, rate=5, seed=3):
        jsonschema.validate(item.record, schema)
        assert isinstance(validate(json.dumps(item.record).encode(), 1.8e9), Story)


def test_raw_schema_rejects_what_ingest_rejects():
    schema = json.loads((SCHEMAS / "news.raw.schema.json").read_text())
    for bad in ({"source": "x"}, {"headline": ""}, {"headline": 5}, {"headline": "x", "url": "ftp://a"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_raw_schema_accepts_real_world_values_that_ingest_accepts():
    schema = json.loads((SCHEMAS / "news.raw.schema.json").read_text())
    scored = json.loads((SCHEMAS / "news.scored.schema.json").read_text())
    for good in ({"headline": "Toyota", "tickers": ["7203.T", "0700.HK", "005930.KS", "BRK/B", "^GSPC", "$sap.de"]},
                 {"headline": "x", "published_at": "Tue, 10 Jun 2025 14:00:00 GMT"},
                 {"headline": "x", "published_at": 1_749_564_000_000_000},
                 {"headline": "x", "body": "word " * 5000, "truncated": True}):
        jsonschema.validate(good, schema)
        story = validate(json.dumps(good).encode(), 1.8e9)
        assert isinstance(story, Story)
        jsonschema.validate({**story.to_json(), "topic": "Earnings", "topic_confidence": 0.5, "sentiment": "neutral",
                             "sentiment_score": 0.0, "confidence": 0.5, "model_version": "m", "scored_at": "2025-06-10T14:00:00Z"},
                            scored)
