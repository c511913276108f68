"""An agent that fails in the middle of a batch (the FINSENTRY_FAULT_INJECTION test hook) loses no
story and counts none twice: the worker commits nothing past the failure, says not-ready naming the
agent, exits 1, and the worker its supervisor starts in its place reads the batch again."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from waiting import wait_for

from streams.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from chaos import Report, check_monitor

pytestmark = pytest.mark.integration
S = Settings()


def not_ready(worker, says: Callable[[dict], bool], what: str) -> dict:
    """Wait for the worker's /readyz to answer 503 with a body that `says` holds for, and return that
    body. Fails, with the worker's log, when the worker exits without ever saying so."""
    seen: dict[str, object] = {}

    def answered() -> bool:
        try:
            status, body = worker.get("/readyz")
        except OSError:
            return False
        if status == 503 and says(json.loads(body)):
            seen.update(json.loads(body))
            return True
        return False

    wait_for(lambda: answered() or worker.process.poll() is not None, 300, what)
    assert seen, f"the worker exited before {what}:\n" + worker.log.read_text()[-3000:]
    return seen


def crash_reported(worker, agent: str) -> tuple[dict, float]:
    """The /readyz body once it names `agent` among its crashed agents, and
    `finsentry_agent_crashes_total` for the agent read then (the worker exits
    FINSENTRY_CRASH_EXIT_DELAY_SECONDS later)."""
    body = not_ready(worker, lambda b: agent in b.get("crashed_agents", {}), f"the worker to report {agent} crashed")
    return body, worker.metric("finsentry_agent_crashes_total", f'agent="{agent}"')


def exits_failed(worker) -> None:
    """Wait for the worker to exit, and fail unless its status is 1 (a crash, for its supervisor)."""
    wait_for(lambda: worker.process.poll() is not None, 300, "the failed worker to exit")
    assert worker.process.returncode == 1, worker.log.read_text()[-3000:]


def restart_scores_all(start_worker_process, kafka, bootstrap: str, records: list[dict], after: str) -> None:
    """The supervisor's part: start the worker again, without the hook; every story is then scored and
    none dead-lettered (a machinery failure must not dead-letter the stories it was handling)."""
    start_worker_process()
    wanted = {r["id"] for r in records}
    got = kafka.consume(bootstrap, [S.topic_scored, S.topic_deadletter],
                        lambda s: wanted <= {v["id"] for v in s[S.topic_scored]}, timeout=300)
    assert wanted <= {v["id"] for v in got[S.topic_scored]}, f"stories lost {after}"
    assert not got[S.topic_deadletter], got[S.topic_deadletter][:3]


def test_classify_failing_mid_batch_loses_nothing_and_double_counts_nothing(embedded_broker, start_worker_process, kafka):
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    records = [{"id": f"fault-{n}", "source": "test", "headline": f"Contoso Ltd shares fall after outage {n}",
                "tickers": ["CTSO"], "published_at": now} for n in range(400)]
    first = start_worker_process(FINSENTRY_FAULT_INJECTION="classify:150", FINSENTRY_CRASH_EXIT_DELAY_SECONDS="30")
    kafka.produce(embedded_broker.bootstrap, S.topic_raw, records)

    # While it is down: /readyz 503 naming the agent, the crash counted, then exit status 1.
    body, crashes = crash_reported(first, "classify")
    assert body["ready"] is False and body["agents_running"] is False
    assert "InjectedFault" in body["crashed_agents"]["classify"]
    assert crashes == 1
    exits_failed(first)

    restart_scores_all(start_worker_process, kafka, embedded_broker.bootstrap, records, "after the failure")

    report = Report(scenario="fault-injection", records=len(records), kills=1, seed=0)
    check_monitor(embedded_broker.bootstrap, report, timeout=300)
    assert report.monitor_missing == 0, report.notes
    assert report.monitor_double_counted == 0


def test_a_model_call_that_never_returns_stops_the_worker_and_loses_nothing(embedded_broker, start_worker_process, kafka):
    # A call hung in native code held its batch and every later one while the worker stayed in its
    # group and /readyz said ready; the interpreter then waited on the hung thread at exit.
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    records = [{"id": f"stall-{n}", "source": "test", "headline": f"Fabrikam shares slide after recall {n}",
                "tickers": ["FBKM"], "published_at": now} for n in range(40)]
    first = start_worker_process(FINSENTRY_FAULT_INJECTION="model-call:1", FINSENTRY_MODEL_STALL_SECONDS="3",
                                 FINSENTRY_CRASH_EXIT_DELAY_SECONDS="30")
    kafka.produce(embedded_broker.bootstrap, S.topic_raw, records)

    body, crashes = crash_reported(first, "model-watchdog")
    assert "ModelStalled" in body["crashed_agents"]["model-watchdog"]
    assert "FINSENTRY_MODEL_STALL_SECONDS=3" in body["crashed_agents"]["model-watchdog"]
    assert crashes == 1
    exits_failed(first)

    restart_scores_all(start_worker_process, kafka, embedded_broker.bootstrap, records, "after the hung call")


def test_a_partition_no_longer_fetched_makes_the_worker_not_ready_and_loses_nothing(
        embedded_broker, start_worker_process, kafka):
    # CI saw a restarted worker leave two news.clean partitions unread (lag ~150, nothing in hand) for
    # 13 minutes while /readyz said ready and the stall gauge read 0. `fetch:20` pauses the partition
    # of classify's 20th record in Faust's consumer, as a rebalance that never resumed it would.
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    records = [{"id": f"starved-{n}", "source": "test", "headline": f"Northwind Traders shares dip on probe {n}",
                "tickers": ["NWTR"], "published_at": now} for n in range(240)]
    first = start_worker_process(FINSENTRY_FAULT_INJECTION="fetch:20", FINSENTRY_CONSUMER_STALL_SECONDS="10")
    kafka.produce(embedded_broker.bootstrap, S.topic_raw, records[:40])
    fired = re.compile(rf"fault injected in fetch after \d+ records: ({re.escape(S.topic_clean)}/\d+) is no longer fetched")
    wait_for(lambda: fired.search(first.log.read_text()), 300, "the fault to fire")
    paused = fired.search(first.log.read_text()).group(1)
    kafka.produce(embedded_broker.bootstrap, S.topic_raw, records[40:])  # a share of these lands on it

    body = not_ready(first, lambda b: any(p.startswith(f"{S.topic_clean}/") for p in b.get("stalled_partitions", {})),
                     "/readyz to name the news.clean partition no longer fetched")
    assert body["partitions_progressing"] is False
    assert list(body["stalled_partitions"]) == [paused]  # that one, and no other
    labels = f'partition="{paused.rpartition("/")[2]}",topic="{S.topic_clean}"'
    assert first.metric("finsentry_consumer_lag_records", labels) > 0
    # The gauges show the last 5-s refresh, and /readyz reads the clock now: the gauge passes 10 s
    # at the refresh after /readyz first says stalled, not before.
    wait_for(lambda: first.metric("finsentry_consumer_stalled_seconds", labels) > 10, 300, "the stall gauge past 10 s")
    assert first.metric("finsentry_ready", "") == 0

    # The operator's part (docs/OPERATIONS.md, FinsentryConsumerStalled): restart the worker.
    first.stop()
    restart_scores_all(start_worker_process, kafka, embedded_broker.bootstrap, records, "on the partition no longer fetched")
