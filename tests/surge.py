"""A real negative-news surge through the whole pipeline, for tests that need one detected rather
than planted: generated stories go to `news.raw`, and ingest, the shipped classifier and the monitor
turn the planted surge into an anomaly on `alerts.anomalies` (then a case, where a roster is set).

The stream is paced like live news, and the producer never runs more than a few chunks ahead of
what the worker has committed, so event time stays in order through the re-keyed topics however
slow the machine is. Used by tests/e2e/test_e2e_surge.py and tests/integration/test_console_browser.py.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from waiting import wait_for

from alerts.config import MonitorConfig
from alerts.windows import WindowSet
from models.runtime import default_model_dir
from models.variants import INT8
from streams.settings import Settings
from streams.sources.generate import Surge, generate

# Legal | Regulation: the generator's templates for it are ones the shipped model labels as the
# generator does (13/13 negatives in a dry run); its Earnings templates read to the model as
# Stock Movement, which is a disagreement about labels, not a pipeline fault.
SURGE_TOPIC = "Legal | Regulation"
SURGE_SCOPE = f"topic:{SURGE_TOPIC}"
# One hour of simulated news at 1 story/s would be the default 30-window warm-up; 10 windows and a
# wider lateness keep the run near a minute on two busy cores (what MonitorConfig overrides are for).
STREAM = {"count": 1100, "rate": 1.0, "seed": 11, "surges": [Surge(SURGE_TOPIC, start=660, duration=60, rate=0.3)]}
MONITOR_ENV = {"FINSENTRY_MONITOR_WARMUP_WINDOWS": "10", "FINSENTRY_MONITOR_ALLOWED_LATENESS": "180"}
CONFIG = MonitorConfig(warmup_windows=10, allowed_lateness=180.0)  # what MONITOR_ENV makes of the worker's
PACE_PER_SECOND = 40
CHUNK = 20
AHEAD = 2  # at most AHEAD + 1 chunks (~60 s of simulated news) in flight: inside the 180 s lateness
S = Settings()
GROUP = S.app_id  # the worker's consumer group
BY_SCOPE = "news.by-scope"  # streams/agents/monitor.py: the fan-out's output, the monitor's input
MONITOR_CHANGELOG = f"{GROUP}-monitor-scopes-changelog"
WAIT = 300  # seconds; a condition normally holds within a few

needs_shipped_model = pytest.mark.skipif(
    not (default_model_dir() / INT8.file).is_file(),
    reason="needs the shipped model (models/default/model.onnx): the tiny fallback model's near-random labels "
           "cannot find a planted surge")


def stories(start: datetime | None = None) -> list[dict]:
    """The generated stream with its planted surge, as raw records for `news.raw`; from `start`, or the
    generator's fixed epoch (a page that shows the last hours wants a recent start)."""
    return [item.record for item in generate(**STREAM, start=start)]


def caught_up(kafka, bootstrap: str, count: int) -> bool:
    """The worker has classified and fanned out the first `count` stories, and the monitor has
    handled every by-scope record made so far (all committed)."""
    if not (kafka.committed(bootstrap, GROUP, S.topic_raw) >= count
            and kafka.committed(bootstrap, GROUP, S.topic_scored) >= count):
        return False
    made = kafka.end_offsets(bootstrap, BY_SCOPE)
    return kafka.committed(bootstrap, GROUP, BY_SCOPE) >= made


def send_paced(kafka, bootstrap: str, records: list[dict]) -> None:
    """Send `records` to `news.raw` at live pace, never more than AHEAD chunks ahead of the worker,
    and return once every one is scored and fanned out."""
    for start in range(0, len(records), CHUNK):
        behind = max(0, start - AHEAD * CHUNK)
        wait_for(lambda n=behind: caught_up(kafka, bootstrap, n), WAIT, f"the worker to finish the first {behind} stories")
        chunk = records[start:start + CHUNK]
        kafka.produce(bootstrap, S.topic_raw, chunk, [r["id"] for r in chunk])
        time.sleep(CHUNK / PACE_PER_SECOND)  # live pacing; the wait above is what keeps the order
    wait_for(lambda: kafka.committed(bootstrap, GROUP, S.topic_raw) >= len(records)
             and kafka.committed(bootstrap, GROUP, S.topic_scored) >= len(records), WAIT,
             "every story to be scored and fanned out")


def windows_closed_to(kafka, bootstrap: str, watermark: float) -> bool:
    """The monitor timer's effect: every scope's saved state has closed each window due at the
    watermark, so every anomaly event the stream makes is on the topic (sent before the state)."""
    states = kafka.read(bootstrap, [MONITOR_CHANGELOG])[MONITOR_CHANGELOG]
    return bool(states) and not any(
        WindowSet.from_dict(s["windows"], CONFIG.window_seconds, CONFIG.allowed_lateness).closes_any(watermark)
        for s in {s["scope"]: s for s in states}.values())


def surge_opened(kafka, bootstrap: str) -> dict:
    """The monitor's first `open` event for the surge's scope, waited for on `alerts.anomalies`."""
    def opened(seen: dict[str, list]) -> bool:
        return any(e["event"] == "open" and e["scope"] == SURGE_SCOPE for e in seen[S.topic_anomalies])

    seen = kafka.consume(bootstrap, [S.topic_anomalies], opened, WAIT)
    opens = [e for e in seen[S.topic_anomalies] if e["event"] == "open" and e["scope"] == SURGE_SCOPE]
    assert opens, f"the monitor opened no anomaly for {SURGE_SCOPE} within {WAIT}s"
    return opens[0]
