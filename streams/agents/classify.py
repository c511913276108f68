"""Classify: micro-batches from `news.clean`, the ONNX model in a worker thread, `news.scored` out.

The model runs in a thread so the event loop keeps heartbeating to the broker during inference.
A story id is marked seen only after its scored record is acknowledged by the broker: a crash in
between re-delivers and re-scores it (at-least-once; downstream is idempotent by id), never drops it.
When the model fails on a batch, each story runs alone and only a story that fails alone, while the
model still answers a probe text, is dead-lettered (streams/errors.py); a broken model, broker or
table stops the worker without committing (streams/failures.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import faust
from faust.types import TP

from alerts.records import finite_number, iso_utc, utf8_text, utf8_texts
from models.runtime import Classifier, Prediction
from streams import metrics
from streams.app import app, clean_topic, scored_topic, settings
from streams.errors import RecordFault, dead_letter_fault, send_dead_letter
from streams.failures import FaultInjection, guarded_timer
from streams.loaded_model import executor as _executor
from streams.loaded_model import load_classifier, model_call, model_call_seconds
from streams.ownership import key_partition, owns
from streams.tables import DurableTable
from streams.validation import model_style, model_text

log = logging.getLogger(__name__)
STAGE = "classify"
HOP = metrics.HOP_LATENCY.labels(STAGE)

# Ids already scored, with the time they were first seen; changelog-backed so restarts keep it.
# use_partitioner: writes happen inside batches spanning partitions and in the expiry timer, so
# the changelog partition must follow from the key. Keys are the same UTF-8 bytes as news.clean's
# record keys, so a story's changelog partition is its stream partition. key_type=bytes as well as
# the schema: Faust builds the changelog topic from the table's own key serializer (JSON unless the
# key type is bytes), and a JSON-decoding recovery fails on every raw key, so a restarted worker
# never finished recovering and classified nothing more.
# The one table whose writes no one waits for (streams/tables.py): a lost write only re-scores a
# redelivered story, a duplicate every stage collapses by id, and waiting for a write per story cost a
# quarter of end-to-end throughput (127 against 169 records/s flooded, bench/pipeline.py).
seen: DurableTable = app.Table("seen-ids", default=None, partitions=settings.partitions, use_partitioner=True, key_type=bytes,
                               schema=faust.Schema(key_serializer="raw", value_serializer="json"))
# Story ids in a batch that one of the agent's actors is scoring; a copy another actor takes
# meanwhile is a duplicate (it is marked seen only once its scored record is acknowledged).
_in_flight: set[str] = set()

_fault = FaultInjection.parse(settings.fault_injection)  # a test hook; None unless configured
# A text the model is known to classify: when one story fails alone, the model failing on this too
# means the runtime is broken (a machinery failure), not the story.
PROBE_TEXT = "Stocks were little changed in early trading"


def scored_record(story: dict, prediction: Prediction, model_version: str, now: float) -> dict:
    return {**story, "topic": prediction.topic, "topic_confidence": prediction.topic_confidence,
            "sentiment": prediction.sentiment, "sentiment_score": prediction.sentiment_score,
            "confidence": prediction.confidence, "model_version": model_version,
            "scored_at": iso_utc(now)}


def predict_each(model: Classifier, texts: list[str], styles: list[str | None]) -> list[Prediction | RecordFault]:
    """Run each text alone after a batch failed, so one bad story costs only itself.

    A text that fails alone is its own fault, unless the probe text fails too: then the runtime
    is broken, and the exception propagates as a machinery failure (nothing is dead-lettered).
    """
    results: list[Prediction | RecordFault] = []
    for text, style in zip(texts, styles, strict=True):
        try:
            results.extend(model.predict([text], styles=[style]))
        except Exception as exc:  # noqa: BLE001 - the probe below tells the story from the model
            model.predict([PROBE_TEXT], styles=[style])  # raises if the model (this style's) is broken
            results.append(RecordFault(f"model: {type(exc).__name__}: {exc}"))
    return results


def story_id(value: object) -> str | None:
    """The id of a news.clean value, or None when the value is not a record with a string id that
    UTF-8 can encode, as the seen-ids table's key (such a value is dead-lettered, never deduplicated)."""
    if isinstance(value, dict) and utf8_text(sid := value.get("id")):
        return sid  # a lone surrogate (JSON "\ud800") is not: no key could hold it
    return None


def scorable(value: object) -> bool:
    """Whether a news.clean value has what classify reads, of ingest's types: an id, a headline, a body
    (or null), tickers (a list of strings, or null) and received_at (a finite number, or null).
    Only a foreign producer on this internal topic can send anything else, and it would crash the
    agent after the scored record was sent, on every restart."""
    if story_id(value) is None:
        return False
    tickers, received = value.get("tickers") or [], value.get("received_at")
    return (isinstance(value.get("headline"), str) and isinstance(value.get("body"), str | None)
            and utf8_texts(tickers)
            and (received is None or finite_number(received)))


def fresh_stories(events, now: float, in_flight: set[str]) -> tuple[list, int]:
    """Events whose id is new (or last seen longer than the TTL ago) and not being scored by another of
    the agent's actors (`in_flight`), first copy in a batch wins."""
    fresh, in_batch, duplicates = [], set(), 0
    for event in events:
        sid = story_id(event.value)
        first = seen.get(sid.encode("utf-8")) if sid is not None else None
        if sid is not None and (sid in in_batch or sid in in_flight
                                or (first is not None and now - first < settings.dedupe_ttl)):
            duplicates += 1
            continue
        if sid is not None:
            in_batch.add(sid)
        fresh.append(event)  # a value without an id is dead-lettered by the caller, each one
    return fresh, duplicates


@dataclass(frozen=True)
class Inference:
    results: list[Prediction | RecordFault]  # one per text, in order
    seconds: float  # wall time of the model's work on this batch alone
    rechecked: int  # texts of this batch re-run on the fp16 model


def infer(model: Classifier, texts: list[str], styles: list[str | None]) -> Inference:
    """The batch's predictions, run in the model's one thread: timed and counted there, so another
    actor's batch waiting for the thread is not counted as this one's inference."""
    started, rechecked = time.perf_counter(), model.rechecked
    if _fault is not None:
        _fault.hang("model-call", len(texts))
    try:
        results: list[Prediction | RecordFault] = list(model.predict(texts, styles=styles))
    except Exception:  # noqa: BLE001 - predict_each finds the story or the model at fault
        log.warning("classify: the model failed on a batch of %d; running each story alone", len(texts))
        results = predict_each(model, texts, styles)
    return Inference(results, time.perf_counter() - started, model.rechecked - rechecked)


@app.agent(clean_topic, name="classify", concurrency=settings.classify_concurrency)
async def classify(stream) -> None:
    model = await load_classifier(settings)
    loop = asyncio.get_running_loop()
    async for events in stream.take_events(settings.batch_max, within=settings.batch_linger):
        metrics.RECORDS_IN.labels(STAGE).inc(len(events))
        fresh, duplicates = fresh_stories(events, time.time(), _in_flight)
        metrics.DUPLICATES.labels(STAGE).inc(duplicates)
        ids = {sid for e in fresh if (sid := story_id(e.value)) is not None}
        _in_flight.update(ids)
        try:
            await score(model, loop, fresh)
        finally:
            _in_flight.difference_update(ids)
        if _fault is not None and events:
            _fault.starve("fetch", len(events), lambda tp=events[-1].message.tp: _stop_fetching(tp))


def _stop_fetching(tp: TP) -> str:
    """The `fetch:N` fault (streams/failures.py): Faust's consumer takes no more records of `tp`."""
    app.consumer.pause_partitions({tp})
    return f"{tp.topic}/{tp.partition}"


async def score(model: Classifier, loop: asyncio.AbstractEventLoop, fresh: list) -> None:
    """Classify one batch's fresh events, send the scored records and wait for the broker's
    acknowledgements, then mark their ids seen; a story the model fails on alone is dead-lettered."""
    good = []
    for event in fresh:
        story = event.value
        if scorable(story):
            good.append(event)
        else:  # only a foreign producer on our internal topic can cause this
            await send_dead_letter(STAGE, "wrong_type", "not a news.clean record", event.message.value, event.message)
    if not good:
        return
    texts = [model_text(e.value) for e in good]
    styles = [model_style(e.value) for e in good]
    inference = await loop.run_in_executor(_executor, model_call, infer, model, texts, styles)
    metrics.INFERENCE_SECONDS.observe(inference.seconds)
    metrics.BATCH_SIZE.observe(len(texts))
    metrics.MODEL_RECHECKED.inc(inference.rechecked)
    for event, result in zip(good, inference.results):
        if isinstance(result, RecordFault):
            await dead_letter_fault(STAGE, result, event.message.value, event.message)
    scored = [(e, r) for e, r in zip(good, inference.results) if not isinstance(r, RecordFault)]
    now = time.time()
    futures = []
    for event, prediction in scored:
        record = scored_record(event.value, prediction, model.version, now)
        futures.append(await scored_topic.send(key=record["id"].encode("utf-8"), value=record))
        if _fault is not None:
            _fault.tick(STAGE)
    await asyncio.gather(*futures)
    now = time.time()
    for event, prediction in scored:
        HOP.observe(max(0.0, now - event.message.timestamp))
        story = event.value
        seen[story["id"].encode("utf-8")] = now
        metrics.SCORED.labels(prediction.topic, prediction.sentiment).inc()
        for ticker in story.get("tickers") or ():
            metrics.TICKER_SCORED.labels(metrics.ticker_label(ticker, settings.watchlist), prediction.sentiment).inc()
        received = story.get("received_at")
        if received is not None and received > 0:  # finite (scorable)
            metrics.SCORING_LATENCY.observe(max(0.0, now - received))
    metrics.RECORDS_OUT.labels(STAGE).inc(len(scored))


class ModelStalled(RuntimeError):
    """The model's current call has run past FINSENTRY_MODEL_STALL_SECONDS."""


@app.timer(interval=5.0)
@guarded_timer("model-watchdog", settings.crash_exit_delay_seconds)
async def watch_model() -> None:
    """Fail the worker when one model call has run past FINSENTRY_MODEL_STALL_SECONDS.

    A call hung in native code holds its batch, and every later one, while the worker stays in its
    consumer group, heartbeating and ready. A thread cannot be cancelled, so the watchdog takes the
    crash path: commits stop below the batch, /readyz and finsentry_agent_crashes_total name
    `model-watchdog`, and the worker exits 1 for its supervisor to start one whose model answers.
    """
    seconds = model_call_seconds()
    if seconds > settings.model_stall_seconds:
        raise ModelStalled(f"one model call has run {seconds:.0f}s, over FINSENTRY_MODEL_STALL_SECONDS="
                           f"{settings.model_stall_seconds:g}")


@app.timer(interval=60.0)
@guarded_timer("classify-expire-seen", settings.crash_exit_delay_seconds)
async def expire_seen() -> None:
    """Forget ids older than the TTL so the table does not grow without bound. Only ids of the
    partitions this worker owns: its standby copies of other partitions may be behind their owner's
    (an id seen again after its TTL), and a deletion here would be written into the owner's changelog."""
    cutoff = time.time() - settings.dedupe_ttl
    stale = [key for key, first in list(seen.items()) if first is not None and first < cutoff]
    for key in stale:
        if owned_id(key):
            del seen[key]


def owned_id(key: bytes) -> bool:
    """This worker actively owns the `news.clean` partition of story id `key` (so its seen-ids entry)."""
    raw = seen.changelog_topic.prepare_key(key, None)[0]  # as the table's writes are partitioned
    return owns(clean_topic.get_topic_name(), key_partition(raw))
