"""Issue #15's news.raw rows through the real agents on the embedded broker, with a worker started
as a user would start it (`finsentry worker -l warning`): each story is scored with the value a user
expects, none is dead-lettered for its tickers, its date or its length."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams import broker
from streams.demo import start_worker, stop_process, worker_env
from streams.settings import Settings
from tests.conftest import Worker

pytestmark = pytest.mark.integration
S = Settings()

ROWS = {
    "toyota": ({"headline": "Toyota raises profit forecast", "tickers": ["7203.T"]},
               {"tickers": ["7203.T"]}),
    "asia": ({"headline": "Tencent, Samsung and Berkshire shares move", "tickers": ["0700.HK", "005930.KS", "BRK/B"]},
             {"tickers": ["0700.HK", "005930.KS", "BRK.B"]}),
    "dollar": ({"headline": "$USD weakens"}, {"tickers": []}),
    "rfc2822": ({"headline": "Acme beats estimates", "published_at": "Tue, 10 Jun 2025 14:00:00 GMT"},
                {"published_at": "2025-06-10T14:00:00.000Z", "published_at_source": "source"}),
    "micros": ({"headline": "Globex beats estimates", "published_at": 1_749_564_000_000_000},
               {"published_at": "2025-06-10T14:00:00.000Z"}),
    "numeric": ({"headline": "Initech beats estimates", "published_at": "1749564000"},
                {"published_at": "2025-06-10T14:00:00.000Z"}),
    "unreadable": ({"headline": "Umbrella beats estimates", "published_at": "27th of Brumaire"},
                   {"published_at_source": "received"}),
    "long": ({"headline": "Acme annual report", "body": ("revenue rose in the quarter " * 1000)[:25_799]},
             {"truncated": True}),
}


def test_real_world_news_raw_values_are_scored_as_users_expect(embedded_broker: broker.EmbeddedBroker, kafka,
                                                               model_dir: Path, tmp_path: Path) -> None:
    port = broker.free_port()
    env = worker_env(embedded_broker.url, port, tmp_path / "data", FINSENTRY_MODEL_DIR=str(model_dir),
                     FINSENTRY_MONITOR_ALLOWED_LATENESS="100000000")
    log = tmp_path / "worker.log"
    worker = Worker(start_worker(env, log, level="warning"), port, log)  # `warning`, as people write it
    try:
        worker.wait_ready()
        records = [{"id": f"rw-{name}", "source": "issue-15", **value} for name, (value, _) in ROWS.items()]
        kafka.produce(embedded_broker.bootstrap, S.topic_raw, records)

        def done(seen: dict[str, list]) -> bool:
            ids = {v.get("id") for v in seen[S.topic_scored]}
            return all(r["id"] in ids for r in records)

        seen = kafka.consume(embedded_broker.bootstrap, [S.topic_scored, S.topic_deadletter], done, timeout=120)
    finally:
        stop_process(worker.process)
    scored = {v["id"]: v for v in seen[S.topic_scored]}
    for name, (_, expected) in ROWS.items():
        story = scored.get(f"rw-{name}")
        assert story is not None, (name, [d for d in seen[S.topic_deadletter] if "issue-15" in d["original"]])
        assert {k: story.get(k) for k in expected} == expected, name
    assert len(scored["rw-long"]["body"]) <= 20_000
    assert not [d for d in seen[S.topic_deadletter] if "issue-15" in d.get("original", "")]
    unreadable = scored["rw-unreadable"]
    assert abs(time.time() - unreadable["received_at"]) < 600  # the receive time stands in for the date
    assert unreadable["published_at"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(unreadable["received_at"])))
