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
    for bad in ({"source": "x"}, {"headline": ""}, {"headline": 5}, {"headline": "x", "tickers": "AAPL"},
                {"headline": "x", "url": "ftp://a"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
