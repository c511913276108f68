"""bench/profile_stages.py: py-spy's raw stacks become CPU shares by pipeline stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.profile_stages import JSON, summarise

LOOP = "thread (100): MainThread;run_forever (asyncio/base_events.py:608);_run_once (asyncio/base_events.py:1922)"
STACKS = [
    # the model's threads, by what they run
    (("thread (7): ort-run_0;run (models/runtime.py:182);logits (models/runtime.py:148);"
     "Session.run (onnxruntime/capi/onnxruntime_inference_collection.py:395)"), 50),
    ("thread (7): ort-run_1;run (models/runtime.py:182);encode (models/tokenize.py:25)", 5),
    # the event loop inside agents, JSON among them
    (LOOP + ";ingest (streams/agents/ingest.py:30);validate (streams/validation.py:300);"
     "loads (json/__init__.py:346);decode (json/decoder.py:337)", 10),
    (LOOP + ";fan_out (streams/agents/monitor.py:120);parse_scored (streams/agents/monitor.py:90)", 5),
    (LOOP + ";monitor (streams/agents/monitor.py:200);observe_scope (streams/agents/monitor.py:180)", 5),
    # the event loop outside agents
    (LOOP + ";_sender_routine (aiokafka/producer/sender.py:120);write (asyncio/selector_events.py:1050)", 15),
    (LOOP + ";select (selectors.py:468);EpollSelector.select (selectors.py:468)", 5),
    # Faust's consumer thread
    ("thread (9): Thread-1;_fetcher (aiokafka/consumer/fetcher.py:500)", 5),
]


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "worker.raw"
    path.write_text("".join(f"{stack} {count}\n" for stack, count in STACKS))
    return path


def test_each_sample_counts_once_for_its_stage(profile: Path) -> None:
    shares = summarise(profile)
    assert shares["model: ONNX Runtime"] == pytest.approx(0.5)
    assert shares["model: tokenizer"] == pytest.approx(0.05)
    assert shares["ingest"] == pytest.approx(0.10)
    assert shares["monitor-fanout"] == pytest.approx(0.05)
    assert shares["monitor"] == pytest.approx(0.05)
    assert shares["producer (aiokafka)"] == pytest.approx(0.15)
    assert shares["event loop: polling"] == pytest.approx(0.05)
    assert shares["consumer thread (aiokafka fetch)"] == pytest.approx(0.05)
    assert sum(v for k, v in shares.items() if k != JSON) == pytest.approx(1.0)


def test_json_is_counted_across_stages(profile: Path) -> None:
    assert summarise(profile)[JSON] == pytest.approx(0.10)


def test_an_empty_profile_has_no_shares(tmp_path: Path) -> None:
    (tmp_path / "empty.raw").write_text("")
    assert summarise(tmp_path / "empty.raw") == {}
