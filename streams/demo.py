"""`finsentry demo`: the whole pipeline on one machine, in about a minute, with no set-up.

It starts the embedded broker and a worker, replays a generated stream with a planted surge of
negative Earnings news (plus a few malformed records), and shows a live summary of what the worker
classified and rejected, the anomalies the monitor opens and the cases they become (who holds each,
or why the machine closed it). Then it stops the worker before the broker, so nothing hangs; with
`--keep-running` it first keeps both up for the console, reporting new anomalies and cases, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models.labels import SENTIMENTS
from scheduler import SEVERITIES
from scheduler.cases import case_id_for
from streams import broker
from streams.settings import Settings
from streams.sources.generate import generate, malformed, parse_surge
from streams.sources.kafka_sink import KafkaSink

# Long enough for the monitor, armed after 10 one-minute windows in the demo (streams/console/demo.py),
# to flag the surge at 11 minutes and close its windows (2 minutes' allowed lateness) with later news:
# about 17 minutes of simulated news, under a minute at the default speed.
DEFAULT_COUNT = 2200
DEFAULT_SURGE = "topic=Earnings,start=11m,duration=60s,rate=3/s,sentiment=negative"
SHOWN = 12  # anomalies listed in the summary, most severe first
# What the summary says of a case after each scheduler event (docs/SCHEDULER.md), and of a case the
# monitor resolved before anyone took it (an auto_resolved event with outcome unattended); others
# change nothing.
CASE_STATES = {
    "created": "created", "assigned": "held by {analyst}", "acknowledged": "acknowledged by {analyst}",
    "resolved": "resolved by {analyst}", "auto_resolved": "closed by the machine: {reason}",
    "unattended": "closed before any analyst took it: {reason}",
    "unfinished": "closed while it waited for its next analyst: {reason}",
    "waiting": "waiting: {reason}", "escalated": "escalated: {reason}", "reopened": "{reason}",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="embedded broker + worker + a generated stream with a planted surge, live")
    p.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"generated stories (default {DEFAULT_COUNT})")
    p.add_argument("--rate", type=float, default=2.0, help="background stories per simulated second")
    p.add_argument("--speed", type=float, default=20.0, help="simulated seconds per wall second (default 20)")
    p.add_argument("--surge", default=DEFAULT_SURGE, help=f"planted surge (default {DEFAULT_SURGE!r})")
    p.add_argument("--malformed", type=int, default=12, help="malformed records mixed in (default 12)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds")
    p.add_argument("--keep-running", action="store_true", help="then keep the console up until Ctrl-C")
    p.set_defaults(handler=run)


@dataclass
class Tally:
    """What came out of the pipeline, filled by the consumer thread and read by the display."""

    anomalies_topic: str
    cases_topic: str
    scored: Counter = field(default_factory=Counter)
    sentiments: Counter = field(default_factory=Counter)
    topics: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    latest: deque = field(default_factory=lambda: deque(maxlen=6))
    ids: set = field(default_factory=set)
    anomalies: dict = field(default_factory=dict)  # anomaly id -> its latest event, in the order they opened
    cases: dict = field(default_factory=dict)  # anomaly id -> what its case is now (CASE_STATES)
    news: list = field(default_factory=list)  # lines about anomalies and cases not yet reported
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, topic: str, value: dict) -> None:
        with self.lock:
            if topic == self.anomalies_topic:
                self.anomaly(value)
            elif topic == self.cases_topic:
                self.case(value)
            elif topic.endswith("deadletter"):
                self.rejected[value.get("reason", "?")] += 1
            elif value.get("id") not in self.ids:
                self.ids.add(value.get("id"))
                self.topics[value["topic"]] += 1
                self.sentiments[value["sentiment"]] += 1
                self.scored[(value["topic"], value["sentiment"])] += 1
                self.latest.appendleft(value)

    def anomaly(self, value: dict) -> None:
        aid = value["anomaly_id"]
        self.anomalies[aid] = value
        self.news.append(f"  anomaly {value['event']:<7} {anomaly_line(value)}")

    def case(self, value: dict) -> None:
        machine = value["event"] == "auto_resolved" and value.get("outcome") in ("unattended", "unfinished")
        state = CASE_STATES.get(value["outcome"] if machine else value["event"])
        if state is None:
            return
        text = state.format(**{"analyst": "?", "reason": "", **value})
        self.cases[value["anomaly_id"]] = text
        self.news.append(f"  case    {value['case_id']}: {text}")

    def reported(self) -> list[str]:
        """The anomaly and case lines since the last call, for a live log."""
        with self.lock:
            lines, self.news = self.news, []
        return lines


def anomaly_line(value: dict) -> str:
    return f"{value['severity']:<8} {value['kind'].replace('_', ' ')[:16]:<16} {value['scope'][:30]}"


def settled(tally: Tally) -> bool:
    """The monitor has flagged something, and the scheduler has decided about every anomaly's case
    (held, closed or waiting). The demo waits for this (up to --timeout) once its stories are scored."""
    with tally.lock:
        return bool(tally.anomalies) and all(tally.cases.get(aid, "created") != "created" for aid in tally.anomalies)


def accounted(tally: Tally, total: int) -> bool:
    with tally.lock:
        return len(tally.ids) + sum(tally.rejected.values()) >= total


def consume(bootstrap: str, topics: list[str], tally: Tally, stop: threading.Event) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=500)
    try:
        while not stop.is_set():
            for message in consumer:
                try:
                    tally.add(message.topic, json.loads(message.value))
                except (ValueError, KeyError):
                    pass
                if stop.is_set():
                    break
    finally:
        consumer.close()


TOPICS_SHOWN = 10  # rows of the topic table; the rest are summed in one row


def render(tally: Tally, sent: int, bad: int, elapsed: float) -> str:
    with tally.lock:
        lines = [(f"finsentry demo — {elapsed:5.1f}s — sent {sent} stories + {bad} malformed; "
                  f"scored {len(tally.ids)}, rejected {sum(tally.rejected.values())}"), ""]
        lines.append(f"  {'topic':<30} {'neg':>5} {'neu':>5} {'pos':>5} {'total':>6}")
        ranked_topics = tally.topics.most_common()
        for topic, total in ranked_topics[:TOPICS_SHOWN]:
            row = [tally.scored[(topic, s)] for s in SENTIMENTS]
            lines.append(f"  {topic[:30]:<30} {row[0]:>5} {row[1]:>5} {row[2]:>5} {total:>6}")
        if rest := ranked_topics[TOPICS_SHOWN:]:  # the table adds up to the stories scored
            row = [sum(tally.scored[(topic, s)] for topic, _ in rest) for s in SENTIMENTS]
            label = f"{len(rest)} other topic(s)"
            lines.append(f"  {label:<30} {row[0]:>5} {row[1]:>5} {row[2]:>5} {sum(n for _, n in rest):>6}")
        lines.append("")
        lines.append("  latest:")
        for v in tally.latest:
            lines.append(f"   [{v['sentiment'][:3]} {v['sentiment_score']:+.2f}] [{v['topic'][:22]:<22}] {v['headline'][:70]}")
        if tally.rejected:
            lines.append("")
            lines.append("  rejected: " + ", ".join(f"{k} {n}" for k, n in tally.rejected.most_common()))
        lines += ["", (f"  anomalies: {len(tally.anomalies)} (the monitor arms after 10 minutes of stream); "
                       f"the {SHOWN} most severe and their cases:")]
        ranked = sorted(tally.anomalies.items(), key=lambda item: -SEVERITIES.index(item[1]["severity"]))
        for aid, value in ranked[:SHOWN]:
            case = tally.cases.get(aid, "no case yet")
            lines.append(f"   {value['event']:<7} {anomaly_line(value)}  -> {case_id_for(aid)}: {case}")
    return "\n".join(lines)


def show(tally: Tally, interactive: bool, sent: int, bad: int, elapsed: float) -> None:
    """On a terminal, redraw the summary; otherwise (a pipe, a log) print each anomaly and case as it comes."""
    if interactive:
        tally.reported()  # the redrawn summary shows them
        print("\033[2J\033[H" + render(tally, sent, bad, elapsed), flush=True)
        return
    for line in tally.reported():
        print(line, flush=True)


def wait_ready(port: int, worker: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with status {worker.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"worker not ready after {timeout:.0f}s")


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def worker_env(broker_url: str, web_port: int, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENTRY_")}
    env.update(FINSENTRY_BROKER=broker_url, FINSENTRY_EMBEDDED="1", FINSENTRY_WEB_PORT=str(web_port),
               FINSENTRY_DATA_DIR=str(data_dir), **extra)
    if os.environ.get("FINSENTRY_MODEL_DIR"):
        env["FINSENTRY_MODEL_DIR"] = os.environ["FINSENTRY_MODEL_DIR"]
    return env


def start_worker(env: dict[str, str], log: Path, level: str = "warn") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "-l", level],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def run(args: argparse.Namespace) -> int:
    surge = parse_surge(args.surge)
    settings = Settings()
    interactive = sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="finsentry-demo-") as tmp, ExitStack() as stack:
        tmpdir = Path(tmp)
        print("starting the embedded broker ...", file=sys.stderr)
        emb = broker.start(log=tmpdir / "broker.log")
        stack.callback(emb.stop)  # registered first, so it runs last: workers stop before the broker
        watched = [settings.topic_scored, settings.topic_deadletter, settings.topic_anomalies, settings.topic_case_events]
        broker.create_topics(emb.bootstrap, {t: settings.partitions for t in (
            settings.topic_raw, settings.topic_clean, *watched)})
        web_port = broker.free_port()
        print(f"starting a worker (log: {tmpdir / 'worker.log'}) ...", file=sys.stderr)
        from streams.console import demo as console  # the analyst console's demo roster and sign-in
        console_env, token = console.roster(tmpdir)
        worker = start_worker(worker_env(emb.url, web_port, tmpdir / "data", **console_env), tmpdir / "worker.log")
        stack.callback(stop_process, worker)
        try:
            wait_ready(web_port, worker, 90)
        except RuntimeError as exc:
            print(f"finsentry demo: error: {exc}; worker log:\n" + (tmpdir / "worker.log").read_text()[-3000:], file=sys.stderr)
            return 1
        tally, stop = Tally(settings.topic_anomalies, settings.topic_case_events), threading.Event()
        reader = threading.Thread(target=consume, args=(emb.bootstrap, watched, tally, stop), daemon=True)
        reader.start()
        stack.callback(reader.join, 5)
        stack.callback(stop.set)

        started = time.monotonic()
        sent = bad = 0
        hostile = malformed(args.malformed, args.seed)
        every = max(1, args.count // max(1, args.malformed))
        last_draw = 0.0
        with KafkaSink(emb.url, settings.topic_raw) as sink:
            # Dated in the recent past: the stream spans about count/rate simulated seconds, replayed
            # `speed` times faster, so every story is dated before it is sent (none is clamped as
            # from the future), and the console's charts, which count the last day, show them.
            start = datetime.now(UTC) - timedelta(seconds=args.count / args.rate)
            for n, item in enumerate(generate(args.count, args.rate, args.seed, [surge], start=start)):
                delay = item.offset / args.speed - (time.monotonic() - started)
                if delay > 0:
                    time.sleep(delay)
                sink.send(item.record)
                sent += 1
                if n % every == every - 1 and bad < args.malformed:
                    sink.send(next(hostile))
                    bad += 1
                if time.monotonic() - last_draw > 0.5:
                    last_draw = time.monotonic()
                    show(tally, interactive, sent, bad, last_draw - started)
            sink.flush()
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if accounted(tally, sent + bad) and settled(tally):
                break
            show(tally, interactive, sent, bad, time.monotonic() - started)
            time.sleep(0.5)
        for line in [] if interactive else tally.reported():
            print(line, flush=True)
        print(render(tally, sent, bad, time.monotonic() - started), flush=True)
        complete = accounted(tally, sent + bad)
        if args.keep_running:
            console.keep_running(web_port, token, tally.reported, emb.url)
        print("\nstopping the worker, then the broker ...", file=sys.stderr)
    print("all stories accounted for" if complete else "finsentry demo: some stories did not come out in time", file=sys.stderr)
    return 0 if complete else 1
