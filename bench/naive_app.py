"""The naive baseline for bench/pipeline.py: a Faust agent that calls the Hugging Face pipeline on
the same fine-tuned checkpoint one record at a time, on the event loop, with no validation stage.

    FINSENTRY_BENCH_CHECKPOINT=runs/default faust -A bench.naive_app worker
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import faust

from streams.app import faust_config
from streams.settings import Settings

settings = Settings.load()
app = faust.App("finsentry-naive", **faust_config(settings))
raw = app.topic(settings.topic_raw, value_serializer="raw", partitions=settings.partitions)
scored = app.topic(settings.topic_scored, partitions=settings.partitions)
_pipe = None


def pipe():
    global _pipe
    if _pipe is None:
        from bench.inference import hf_pipeline

        _pipe = hf_pipeline(Path(os.environ["FINSENTRY_BENCH_CHECKPOINT"]))
    return _pipe


@app.agent(raw)
async def naive(stream) -> None:
    classify = pipe()
    async for value in stream:
        record = json.loads(value)
        result = classify(record["headline"])[0]
        record.update(sentiment=result["label"], confidence=result["score"],
                      scored_at=datetime.fromtimestamp(time.time(), UTC).isoformat())
        await scored.send(key=record["id"].encode(), value=record)


@app.page("/readyz")
async def readyz(web, request):
    return web.json({"ready": True})
