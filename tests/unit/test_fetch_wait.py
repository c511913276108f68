"""The consumer's fetch.max.wait.ms: Faust's 1500 ms on Kafka, 100 ms on Tansu (which holds fetches for it
even when records arrive, streams/app.py), and FINSENTRY_CONSUMER_FETCH_MAX_WAIT_MS over both."""

from __future__ import annotations

import asyncio

import pytest

from streams.app import FAUST_FETCH_MAX_WAIT_MS, TANSU_FETCH_MAX_WAIT_MS, app, fetch_max_wait
from streams.settings import Settings, SettingsError


def test_the_wait_follows_the_broker_unless_set() -> None:
    assert fetch_max_wait(Settings(), tansu=False) == FAUST_FETCH_MAX_WAIT_MS == 1500
    assert fetch_max_wait(Settings(), tansu=True) == TANSU_FETCH_MAX_WAIT_MS == 100
    for tansu in (False, True):
        assert fetch_max_wait(Settings(consumer_fetch_max_wait_ms=250), tansu=tansu) == 250


def test_a_negative_wait_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENTRY_CONSUMER_FETCH_MAX_WAIT_MS", "-5")
    with pytest.raises(SettingsError, match="CONSUMER_FETCH_MAX_WAIT_MS"):
        Settings.load()


def test_the_worker_consumer_asks_aiokafka_for_the_apps_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's driver hard-codes 1500 ms; the consumer the worker builds must carry the app's value."""
    monkeypatch.setattr(app, "fetch_max_wait_ms", 37)

    async def build() -> int:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(build()) == 37
