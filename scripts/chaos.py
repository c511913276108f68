"""Crash recovery on a real broker: stream generated news while SIGKILLing the worker, then prove
nothing was lost and nothing was counted twice.

    python scripts/chaos.py --records 50000 --kills 20 [--seed S] [--json out.json]
    python scripts/chaos.py --scenario stops --records 3000 --kills 3  # graceful stops (SIGTERM) instead
    python scripts/chaos.py --scenario rebalance --records 20000      # a second worker joins mid-stream
    python scripts/chaos.py --scenario broker-late --records 2000     # worker started before the broker
    python scripts/chaos.py --scenario slow-receiver --receiver-delay 30 --records 20000   # alerts to a slow webhook

Checks, from the topics themselves rather than from the worker's word:
- every input id is in news.scored (re-scored copies are counted as duplicates, collapsed by id);
- the monitor state (the `monitor-scopes` changelog: the last version of every window of every
  scope) holds each id exactly once in each scope it belongs to (topic and tickers of its scored
  record), and no id in a scope it does not belong to;
- each anomaly id has one case, and no case is assigned to a second analyst while assigned.
Recovery time is measured per kill: restart -> /readyz 200 -> news.scored grows again.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import SETTINGS, Stack, Worker, end_offsets, exit_on_sigterm, model_dir, read_json, read_topic

from alerts.engine import scopes_for
from streams.sources.generate import generate, parse_surge
from streams.sources.kafka_sink import KafkaSink

CHANGELOG = f"{SETTINGS.app_id}-monitor-scopes-changelog"
BY_SCOPE = "news.by-scope"  # streams/agents/monitor.py: the fan-out's output, the monitor's input
ROSTER = """analysts:
  - id: ana
    name: Ana
    capacity: 2
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {topics: {Earnings: 5, Macro: 5, M&A: 5, Markets: 5}}
    notify: http://127.0.0.1:9/ana
    token_env: CHAOS_UNUSED_TOKEN_ANA
  - id: ben
    name: Ben
    capacity: 2
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {topics: {Earnings: 3, Macro: 3, M&A: 3, Markets: 3}}
    notify: http://127.0.0.1:9/ben
    token_env: CHAOS_UNUSED_TOKEN_BEN
"""


@dataclass
class Recovery:
    killed_at_scored: int
    ready_s: float
    progress_s: float


@dataclass
class Report:
    scenario: str
    records: int
    kills: int
    seed: int
    scored_unique: int = 0
    scored_records: int = 0
    lost: int = 0
    monitor_missing: int = 0
    monitor_double_counted: int = 0
    monitor_wrong_scope: int = 0
    # Stories the monitor dropped as late (older than the allowed lateness), summed over every worker
    # life: read from /metrics just before each kill and at the end. They explain a "missing" id.
    monitor_late_dropped: int = 0
    # Records dropped by the seek guard and read again (streams/consumer.py),
    # summed the same way: how often the race that used to lose records came up.
    stale_records_skipped: int = 0
    anomaly_open_events: int = 0
    anomaly_ids_opened: int = 0
    anomalies_with_two_cases: int = 0
    case_double_assignments: int = 0
    case_duplicate_events: int = 0
    recoveries: list[Recovery] = field(default_factory=list)
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.monitor_missing or self.monitor_double_counted or self.monitor_wrong_scope
                    or self.anomalies_with_two_cases or self.case_double_assignments)


LATE_METRIC = "finsentry_monitor_late_stories_total"
STALE_METRIC = "finsentry_consumer_stale_records_total"


def stream(count: int, seed: int, rate: float, topics: tuple[str, ...] = ("Earnings",)) -> list[dict]:
    """Generated records with a planted negative surge per topic, from two thirds of the way through."""
    span = count / rate
    surges = [parse_surge(f"topic={topic},start={int(span * (0.66 + 0.05 * n))}s,duration=300s,"
                          f"rate={max(1.0, rate / 10):g}/s,sentiment=negative") for n, topic in enumerate(topics)]
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return [item.record for item in generate(count, rate, seed, surges, start=start)]


def produce(url: str, records: list[dict], done: threading.Event, rate: float) -> None:
    """Send at `rate` records per second, like a live feed whose event time keeps pace with the
    clock. Sent all at once, the stream was a replay hours ahead of the worker: a restarted worker's
    partitions then caught up unevenly by more than the allowed lateness, and the monitor rightly
    dropped those stories as late, which measured the replay, not crash recovery."""
    started = time.monotonic()
    with KafkaSink(url, SETTINGS.topic_raw) as sink:
        for n, record in enumerate(records):
            if (ahead := started + n / rate - time.monotonic()) > 0:
                time.sleep(ahead)
            sink.send(record)
        sink.flush()
    done.set()


def wait_progress(bootstrap: str, since: int, timeout: float) -> float:
    """Seconds until news.scored grows past `since`."""
    started = time.monotonic()
    while end_offsets(bootstrap, SETTINGS.topic_scored) <= since:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"news.scored did not grow within {timeout:.0f}s of the restart")
        time.sleep(0.2)
    return time.monotonic() - started


def scored_ids(bootstrap: str) -> set[str]:
    return {record["id"] for record in read_json(bootstrap, SETTINGS.topic_scored)}


def wait_all_scored(bootstrap: str, wanted: set[str], timeout: float) -> None:
    """Read the whole topic only once its end offsets say it could be complete: a full read every
    few seconds competes with the worker for the CPU it is being measured on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if end_offsets(bootstrap, SETTINGS.topic_scored) >= len(wanted) and wanted <= scored_ids(bootstrap):
            return
        time.sleep(3)


def monitor_ids(bootstrap: str) -> tuple[dict[str, Counter], dict[str, set[str]]]:
    """Per scope, how often each id is held across the last version of each of its windows; and
    every id any version of the scope's state ever held (a missing id held once was overwritten)."""
    last: dict[tuple[str, str], list[str]] = {}
    ever: dict[str, set[str]] = defaultdict(set)
    for key, value in read_topic(bootstrap, CHANGELOG):
        if key is None or value is None:
            continue
        scope, state = json.loads(key), json.loads(value)
        for start, window in state["windows"]["open"].items():
            last[(scope, start)] = window["ids"]
            ever[scope].update(window["ids"])
    held: dict[str, Counter] = defaultdict(Counter)
    for (scope, _), ids in last.items():
        held[scope].update(ids)
    return held, ever


def expected_scopes(bootstrap: str) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = defaultdict(set)
    first: dict[str, dict] = {}
    for record in read_json(bootstrap, SETTINGS.topic_scored):
        first.setdefault(record["id"], record)
    for record in first.values():
        for scope in scopes_for(record.get("topic"), record.get("tickers") or []):
            wanted[scope].add(record["id"])
    return wanted


def check_monitor(bootstrap: str, report: Report, timeout: float) -> None:
    wanted = expected_scopes(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        held, ever = monitor_ids(bootstrap)
        missing = sum(len(ids - set(held.get(scope, ()))) for scope, ids in wanted.items())
        if missing == 0 or time.monotonic() > deadline:
            break
        time.sleep(3)
    report.monitor_missing = missing
    if missing:  # enough to tell a late drop from a lost state write by eye
        published = {r["id"]: r.get("published_at") for r in read_json(bootstrap, SETTINGS.topic_scored)}
        examples = sorted((scope, sid) for scope, ids in wanted.items() for sid in ids - set(held.get(scope, ())))[:5]
        fanned = set()
        for key, value in read_topic(bootstrap, BY_SCOPE):
            if key is not None and value is not None and (pair := (json.loads(key), json.loads(value).get("id"))) in examples:
                fanned.add(pair)
        for scope, sid in examples:
            fate = ("held by an earlier state, then overwritten" if sid in ever.get(scope, ())
                    else "in news.by-scope, never in a state" if (scope, sid) in fanned else "never fanned out")
            report.notes.append(f"missing from the monitor: scope {scope}, id {sid}, published_at {published.get(sid)}: {fate}")
    report.monitor_double_counted = sum(n - 1 for counts in held.values() for n in counts.values() if n > 1)
    report.monitor_wrong_scope = sum(len(set(counts) - wanted.get(scope, set())) for scope, counts in held.items())


def check_cases(bootstrap: str, report: Report) -> None:
    opens = Counter(a["anomaly_id"] for a in read_json(bootstrap, SETTINGS.topic_anomalies) if a.get("event") == "open")
    report.anomaly_open_events, report.anomaly_ids_opened = sum(opens.values()), len(opens)
    events = read_json(bootstrap, SETTINGS.topic_case_events)
    cases_of: dict[str, set[str]] = defaultdict(set)
    seen: set[str] = set()
    holder: dict[str, str | None] = {}
    for event in events:
        fingerprint = json.dumps(event, sort_keys=True)
        if fingerprint in seen:  # an outbox resent after a crash: consumers collapse it by content
            report.case_duplicate_events += 1
            continue
        seen.add(fingerprint)
        cases_of[event["anomaly_id"]].add(event["case_id"])
        case, name = event["case_id"], event["event"]
        if name == "assigned":
            if holder.get(case) not in (None, event.get("analyst")):
                report.case_double_assignments += 1
            holder[case] = event.get("analyst")
        elif name in ("escalated", "waiting", "resolved", "auto_resolved"):
            holder[case] = None
    report.anomalies_with_two_cases = sum(1 for ids in cases_of.values() if len(ids) > 1)


def run_kills(stack: Stack, args: argparse.Namespace, report: Report, records: list[dict]) -> None:
    restarts(stack, args, report, records, Worker.kill)


def run_stops(stack: Stack, args: argparse.Namespace, report: Report, records: list[dict]) -> None:
    """Graceful stops: a stopping agent's stream acknowledges the events it held unfinished, and
    nothing may commit past them (streams/consumer.py `close_commits`)."""
    restarts(stack, args, report, records, Worker.stop)


def restarts(stack: Stack, args: argparse.Namespace, report: Report, records: list[dict],
             end: Callable[[Worker], None]) -> None:
    """Stream `records` while ending the worker `args.kills` times with `end`, starting a new one each time."""
    bootstrap = stack.start_broker().bootstrap
    worker = stack.start_worker()
    worker.wait_ready()
    done = threading.Event()
    threading.Thread(target=produce, args=(stack.broker.url, records, done, args.rate), daemon=True).start()
    rng = random.Random(args.seed)
    wanted = {r["id"] for r in records}
    for n in range(args.kills):
        time.sleep(rng.uniform(args.min_gap, args.max_gap))
        report.monitor_late_dropped += int(worker.counter(LATE_METRIC))
        report.stale_records_skipped += int(worker.counter(STALE_METRIC))
        end(worker)
        at = end_offsets(bootstrap, SETTINGS.topic_scored)
        worker = stack.start_worker()
        ready = worker.wait_ready()
        progress = ready + wait_progress(bootstrap, at, 120) if not wanted <= scored_ids(bootstrap) else ready
        report.recoveries.append(Recovery(at, round(ready, 2), round(progress, 2)))
        print(f"kill {n + 1}/{args.kills}: news.scored at {at}; ready in {ready:.1f}s, progress in {progress:.1f}s",
              file=sys.stderr, flush=True)
    done.wait()


def run_rebalance(stack: Stack, args: argparse.Namespace, report: Report, records: list[dict]) -> None:
    bootstrap = stack.start_broker().bootstrap
    stack.start_worker("w0").wait_ready()
    done = threading.Event()
    threading.Thread(target=produce, args=(stack.broker.url, records, done, args.rate), daemon=True).start()
    while end_offsets(bootstrap, SETTINGS.topic_scored) < len(records) // 3:
        time.sleep(0.5)
    at = end_offsets(bootstrap, SETTINGS.topic_scored)
    second = stack.start_worker("w1")
    ready = second.wait_ready()
    report.recoveries.append(Recovery(at, round(ready, 2), round(ready + wait_progress(bootstrap, at, 120), 2)))
    report.notes.append(f"second worker joined at news.scored={at}, ready after {ready:.1f}s")
    done.wait()


def run_broker_late(stack: Stack, args: argparse.Namespace, report: Report, records: list[dict]) -> None:
    from streams import broker

    port = broker.free_port()
    worker: Worker = stack.start_worker(broker_url=f"kafka://127.0.0.1:{port}")
    time.sleep(args.broker_delay)
    if worker.process.poll() is not None:
        raise RuntimeError(f"the worker exited ({worker.process.returncode}) while the broker was down; "
                           f"log {worker.log}")
    retries = worker.log.read_text(errors="replace").count("not reachable yet")
    report.notes.append(f"worker still running after {args.broker_delay:.0f}s without a broker; "
                        f"it logged {retries} retries")
    stack.start_broker(port)
    ready = worker.wait_ready(180)
    report.recoveries.append(Recovery(0, round(ready, 2), round(ready, 2)))
    produce(stack.broker.url, records, threading.Event(), args.rate)


class SlowReceiver:
    """A real HTTP webhook receiver on loopback that holds every request `delay` seconds, then 200."""

    def __init__(self, delay: float) -> None:
        self.delay, self.requests, self.in_flight, self.most_in_flight = delay, 0, 0, 0
        lock, receiver = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    receiver.requests += 1
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                time.sleep(receiver.delay)
                with lock:
                    receiver.in_flight -= 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def run_slow_receiver(stack: Stack, args: argparse.Namespace, report: Report, records: list[dict]) -> None:
    """Alerts flow to a receiver that takes `--receiver-delay` seconds per request, while the stream
    is scored: run it with delay 0 and with a long delay, and compare the scored rates."""
    receiver = SlowReceiver(args.receiver_delay)
    config = stack.workdir / "receivers.yml"
    config.write_text(f"receivers:\n  - name: slow\n    url: {receiver.url}\n    secret_env: CHAOS_WEBHOOK_SECRET\n"
                      f"    group_wait: 1\n    group_interval: 5\n"
                      f"    timeout: {args.receiver_delay + 10:g}\n")
    # 5 s windows and a 10 s lateness (the default is 120 s), so detection arms and alerts flow within a short run.
    stack.env.update(FINSENTRY_RECEIVERS=str(config), CHAOS_WEBHOOK_SECRET="chaos-only-secret",
                     FINSENTRY_MONITOR_WINDOW_SECONDS="5", FINSENTRY_MONITOR_ALLOWED_LATENESS="10")
    bootstrap = stack.start_broker().bootstrap
    stack.start_worker().wait_ready()
    started = time.monotonic()
    produce(stack.broker.url, records, threading.Event(), args.rate)
    wanted = {r["id"] for r in records}
    wait_all_scored(bootstrap, wanted, args.timeout)
    seconds = time.monotonic() - started
    report.notes.append(f"receiver held each request {args.receiver_delay:g}s; {len(wanted)} records scored in "
                        f"{seconds:.0f}s ({len(wanted) / seconds:.0f}/s); {receiver.requests} webhook requests "
                        f"arrived, at most {receiver.most_in_flight} at once")
    receiver.close()


SCENARIOS = {"kills": run_kills, "stops": run_stops, "rebalance": run_rebalance, "broker-late": run_broker_late,
             "slow-receiver": run_slow_receiver}
SURGE_TOPICS = {"slow-receiver": ("Earnings", "Macro", "M&A | Investments", "Markets")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="kills")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--kills", type=int, default=20, help="times the worker is ended (kills, stops)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="stories per second, in event time and as sent (paced like a live feed)")
    parser.add_argument("--min-gap", type=float, default=4.0, help="least wall seconds between kills")
    parser.add_argument("--max-gap", type=float, default=20.0)
    parser.add_argument("--broker-delay", type=float, default=20.0, help="broker-late: seconds without a broker")
    parser.add_argument("--receiver-delay", type=float, default=30.0, help="slow-receiver: seconds per request")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for every id to be scored")
    parser.add_argument("--model-dir")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) and print it")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    report = Report(args.scenario, args.records, args.kills if args.scenario == "kills" else 0, args.seed)
    records = stream(args.records, args.seed, args.rate, SURGE_TOPICS.get(args.scenario, ("Earnings",)))
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="finsentry-chaos-"))
    roster = workdir / "roster.yaml"
    roster.write_text(ROSTER)
    # A restarted worker's partitions catch up unevenly: a lateness wider than the default 120 s keeps
    # stories from the slower ones from being dropped as late after each kill (docs/ALERTS.md).
    stack = Stack(workdir, model_dir(args.model_dir), {
        "FINSENTRY_ROSTER": str(roster), "FINSENTRY_MONITOR_ALLOWED_LATENESS": "600",
        "FINSENTRY_MONITOR_WARMUP_WINDOWS": "10"})
    try:
        SCENARIOS[args.scenario](stack, args, report, records)
        bootstrap = stack.broker.bootstrap
        wanted = {r["id"] for r in records}
        wait_all_scored(bootstrap, wanted, args.timeout)
        scored = read_json(bootstrap, SETTINGS.topic_scored)
        report.scored_records, report.scored_unique = len(scored), len({r["id"] for r in scored})
        report.lost = len(wanted - {r["id"] for r in scored})
        check_monitor(bootstrap, report, 120)
        alive = [w for w in stack.workers if w.process.poll() is None]
        report.monitor_late_dropped += sum(int(w.counter(LATE_METRIC)) for w in alive)
        report.stale_records_skipped += sum(int(w.counter(STALE_METRIC)) for w in alive)
        time.sleep(12)  # a scheduler tick or two, so the last anomalies have their cases
        check_cases(bootstrap, report)
    finally:
        stack.close()
        if args.keep:
            print(f"work directory: {workdir}", file=sys.stderr)
    report.wall_s = round(time.monotonic() - started, 1)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    return 0 if report.ok else 1


def print_table(report: Report) -> None:
    rows = [(name, value) for name, value in asdict(report).items() if name not in ("recoveries", "notes")]
    for name, value in rows:
        print(f"{name:<28} {value}")
    if report.recoveries:
        ready = sorted(r.ready_s for r in report.recoveries)
        progress = sorted(r.progress_s for r in report.recoveries)
        print(f"{'recovery ready s':<28} median {ready[len(ready) // 2]}  max {ready[-1]}")
        print(f"{'recovery progress s':<28} median {progress[len(progress) // 2]}  max {progress[-1]}")
    for note in report.notes:
        print(f"note: {note}")
    print("OK: nothing lost, nothing double-counted" if report.ok else "FAILED: see the counts above")


if __name__ == "__main__":
    sys.exit(main())
