"""Ingest and the monitor's fan-out count what they emit once the broker has acknowledged it, as
classify, the monitor's publish and the scheduler do, without waiting for it in the agent (a wait per
record would put a broker round trip between every two records).

They counted a record in finsentry_records_out_total{stage="ingest"} and its hop latency as soon as it
was handed to the producer: a send the broker then refused was counted as emitted, and the hop
latency left out the wait for the broker that the other stages' include.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from streams.agents import ingest, monitor
from streams.validation import parse_time
from tests.waiting import until

WAIT = 30.0  # seconds for any condition; each normally holds at once


class HeldTopic:
    """A topic whose sends the broker acknowledges (or refuses) only when the test says so."""

    def __init__(self) -> None:
        self.pending: list[asyncio.Future] = []
        self.values: list[object] = []

    async def send(self, key: object = None, value: object = None) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        self.values.append(value)
        return future


def stream_of(*events: SimpleNamespace) -> SimpleNamespace:
    async def events_() -> AsyncIterator[SimpleNamespace]:
        for event in events:
            yield event
    return SimpleNamespace(events=events_)


def event(value: object, timestamp: float) -> SimpleNamespace:
    message = SimpleNamespace(value=value, key=None, timestamp=timestamp, topic="t", partition=0, offset=7)
    return SimpleNamespace(value=value, message=message)


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def callbacks_ran(future: asyncio.Future) -> None:
    """Wait until the callbacks `future` had when it completed have run: callbacks run in the order
    they were added, so one added now runs after them (the condition a negative check needs)."""
    ran = asyncio.Event()
    future.add_done_callback(lambda _: ran.set())
    await until(ran.is_set, "the future's done callbacks")


def raw_story(ident: str) -> bytes:
    """A `news.raw` value, as the agent reads it."""
    return json.dumps({"id": ident, "source": "wire", "headline": f"Brindlewood halts output ({ident})",
                       "published_at": "2031-02-03T04:05:06Z", "tickers": ["BRWD"]}).encode()


def ingest_counts() -> tuple[float, float]:
    return (sample("finsentry_records_out_total", {"stage": ingest.STAGE}),
            sample("finsentry_hop_latency_seconds_count", {"agent": ingest.STAGE}))


def fanout_count() -> float:
    return sample("finsentry_hop_latency_seconds_count", {"agent": "monitor-fanout"})


def test_ingest_counts_a_record_once_the_broker_acknowledges_it(monkeypatch: pytest.MonkeyPatch) -> None:
    topic = HeldTopic()
    monkeypatch.setattr(ingest, "clean_topic", topic)
    before = ingest_counts()

    async def run() -> None:
        agent = asyncio.ensure_future(ingest.ingest.fun(stream_of(event(raw_story("bw-1"), time.time()))))
        await asyncio.wait_for(agent, WAIT)  # the agent goes on without waiting for the broker
        assert len(topic.pending) == 1
        assert ingest_counts() == before  # handed to the producer, not yet the broker's
        topic.pending[0].set_result(None)
        await until(lambda: ingest_counts() == (before[0] + 1, before[1] + 1), "the acknowledged record counted")

    asyncio.run(run())


def test_ingest_does_not_count_a_send_the_broker_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    topic = HeldTopic()
    monkeypatch.setattr(ingest, "clean_topic", topic)
    before = ingest_counts()

    async def run() -> None:
        agent = asyncio.ensure_future(ingest.ingest.fun(stream_of(event(raw_story("bw-2"), time.time()))))
        await asyncio.wait_for(agent, WAIT)
        topic.pending[0].set_exception(ConnectionError("broker gone"))  # SendFailures stops the worker on it
        await callbacks_ran(topic.pending[0])
        topic.pending[0].exception()

    asyncio.run(run())
    assert ingest_counts() == before


def test_fan_out_times_a_story_once_every_copy_is_acknowledged(monkeypatch: pytest.MonkeyPatch) -> None:
    topic = HeldTopic()
    monkeypatch.setattr(monitor, "by_scope_topic", topic)
    now = time.time()
    scored = {"id": "bw-3", "headline": "Brindlewood halts output", "sentiment": "negative",
              "sentiment_score": -0.7, "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5)),
              "confidence": 0.9, "topic": None, "tickers": ["BRWD", "QXLT"]}
    scopes = monitor.scopes_for(None, scored["tickers"])
    assert len(scopes) >= 2
    before = fanout_count()

    async def run() -> None:
        agent = asyncio.ensure_future(monitor.fan_out.fun(stream_of(event(json.dumps(scored).encode(), now))))
        await asyncio.wait_for(agent, WAIT)
        assert len(topic.pending) == len(scopes)
        topic.pending[0].set_result(None)
        await callbacks_ran(topic.pending[0])
        assert fanout_count() == before  # one copy of two is not the story fanned out
        for future in topic.pending[1:]:
            future.set_result(None)
        await until(lambda: fanout_count() == before + 1, "the story timed once every copy was acknowledged")

    asyncio.run(run())


def test_ingest_counts_a_story_kept_without_a_field_it_could_not_keep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second inputs review: a url 'N/A' from a live producer used to be dead-lettered (counted);
    the story is kept now, and its dropped field must still show on /metrics."""
    topic = HeldTopic()
    monkeypatch.setattr(ingest, "clean_topic", topic)
    dropped = {"adjustment": "dropped_field"}
    before = sample("finsentry_stories_adjusted_total", dropped)
    value = json.dumps({"id": "bw-4", "source": "wire", "headline": "Brindlewood halts output", "url": "N/A",
                        "published_at": "2031-02-03T04:05:06Z"}).encode()

    async def run() -> None:
        await asyncio.wait_for(ingest.ingest.fun(stream_of(event(value, time.time()))), WAIT)
        assert len(topic.pending) == 1  # the story went on, without its url
        topic.pending[0].set_result(None)
        await until(lambda: sample("finsentry_stories_adjusted_total", dropped) == before + 1, "the drop counted")

    asyncio.run(run())


def test_a_source_whose_clock_runs_fast_does_not_date_its_stories_in_the_future(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream review's finding: ingest took the record's CreateTime (the producing host's clock) as
    the receive time, so a dateless story from a host 15 minutes fast was dated past what the monitor
    accepts, and dead-lettered there as bad_timestamp."""
    topic = HeldTopic()
    monkeypatch.setattr(ingest, "clean_topic", topic)
    value = json.dumps({"id": "bw-5", "source": "wire", "headline": "Brindlewood halts output"}).encode()
    now = time.time()

    async def run() -> None:
        await asyncio.wait_for(ingest.ingest.fun(stream_of(event(value, now + 900))), WAIT)

    asyncio.run(run())
    [clean] = topic.values
    assert clean["published_at_source"] == "received"
    assert parse_time(clean["published_at"]).timestamp() <= time.time()  # was: 15 minutes ahead
    assert ingest.received_at(now - 60, now) == now - 60  # a replayed backlog keeps its own time
