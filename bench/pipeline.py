"""End-to-end latency, throughput and CPU on the embedded broker, against the model's own speed in the same run.

    python bench/pipeline.py --rates 0.5x,0.75x --seconds 15 --drain 60 [--profile DIR] [--json out.json]
    python bench/pipeline.py --config "fetch 1500 ms:FINSENTRY_CONSUMER_FETCH_MAX_WAIT_MS=1500" --config default:
    python bench/pipeline.py --rates 20,50 --checkpoint runs/default   # plus the naive HF-pipeline agent

First the classifier runs alone in this process on the same generated headlines (best headlines/s
over a few micro-batch sizes, and CPU ms per headline at that size): the runtime's own ceiling.
Then, for each worker configuration, one worker (every agent) on a fresh embedded Tansu broker is
offered generated headlines on `news.raw`. A rate ending in `x` is a fraction of that worker's
capacity, measured first by a flood; a plain number is records/s, and a flood runs last.

Per rate: sustained scored records/s; latency per hop from Kafka record timestamps (raw -> clean,
clean -> scored, scored -> by-scope) and end to end (raw -> scored), p50/p99, read from the topics
after the step so that the reader does not share the worker's CPU (the step waits on the worker's
own counts meanwhile; the naive baseline has none, so its topics are read as it runs); the monitor's hop from
the worker's `finsentry_hop_latency_seconds{agent="monitor"}` histogram (bucket bounds); the worker
process's CPU ms per scored record; dead letters. `--profile DIR` samples the worker with py-spy
during the flood and adds CPU per stage. The summary gives the issue-20 ratios. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.inference import measure
from bench.profile_stages import summarise
from models.variants import VARIANTS
from streams import broker
from streams.app import BY_SCOPE_TOPIC
from streams.demo import stop_process, wait_ready, worker_env
from streams.settings import Settings
from streams.sources.generate import generate

S = Settings()
# Hop -> the two topics (Seen fields) whose Kafka timestamps bound it.
HOPS = {"raw->clean": ("raw", "clean"), "clean->scored": ("clean", "scored"),
        "scored->by-scope": ("scored", "by_scope"), "raw->scored": ("raw", "scored")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def headlines(count: int, seed: int) -> list[dict]:
    return [item.record for item in generate(count, rate=1000.0, seed=seed, start=datetime.now(UTC))]


def runtime_baseline(variant: str | None, batches: Iterable[int], seconds: float) -> dict[str, float]:
    """The classifier alone, in this process: best headlines/s over `batches` and CPU ms per headline there."""
    from models.runtime import Classifier

    clf = Classifier.load(None, device="cpu", variant=variant)
    texts = [r["headline"] for r in headlines(3000, seed=99)]
    best: dict[str, float] = {}
    for batch in batches:
        cpu0 = time.process_time()
        r = measure(clf.predict, texts, batch, seconds)
        cpu_ms = (time.process_time() - cpu0) / (r["texts"] + batch) * 1e3  # measure() warms up on one batch
        print(f"  runtime ({clf.variant}) batch {batch}: {r['per_s']:.0f}/s, {cpu_ms:.2f} CPU ms/headline",
              file=sys.stderr, flush=True)
        if r["per_s"] > best.get("per_s", 0.0):
            best = {"batch": batch, "per_s": r["per_s"], "cpu_ms_per_headline": cpu_ms, "variant": clf.variant}
    return best


@dataclass
class Seen:
    """Kafka timestamps (s) of one story on each topic, first copy wins."""

    raw: float | None = None
    clean: float | None = None
    scored: float | None = None
    by_scope: float | None = None


class Collector:
    """Reads the pipeline's topics and keeps each story's Kafka timestamps; keys carry the id except on by-scope.

    It reads after a step's records are through, not while the worker runs: the timestamps it needs
    are in the records, and a reader polling beside the worker took 0.4 of a core of the two during a
    flood, CPU the runtime-alone baseline never had to share.
    """

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(S.topic_raw, S.topic_clean, S.topic_scored, BY_SCOPE_TOPIC, S.topic_deadletter,
                                      bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
                                      fetch_max_wait_ms=100)
        self.seen: dict[str, Seen] = {}
        self.deadletters = 0
        self.by_scope_records = 0  # every copy, not only each story's first
        self.slot = {S.topic_raw: "raw", S.topic_clean: "clean", S.topic_scored: "scored", BY_SCOPE_TOPIC: "by_scope"}

    def read(self, ids: list[str], by_scope: bool, timeout: float) -> list[Seen]:
        """Read on until every id is scored (and has a by-scope copy, if asked) and a poll then brings
        nothing more (a dead letter, a last by-scope copy), or `timeout` seconds pass; returns the scored ones."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            polled = self.consumer.poll(timeout_ms=300, max_records=10000)
            for records in polled.values():
                for m in records:
                    self._add(m)
            got = self.scored(ids)
            if not polled and len(got) == len(ids) and (not by_scope or all(s.by_scope is not None for s in got)):
                break
        return self.scored(ids)

    def _add(self, m) -> None:
        if m.topic == S.topic_deadletter:
            self.deadletters += 1
            return
        self.by_scope_records += m.topic == BY_SCOPE_TOPIC
        sid = json.loads(m.value)["id"] if m.topic == BY_SCOPE_TOPIC else m.key.decode()
        seen = self.seen.setdefault(sid, Seen())
        if getattr(seen, self.slot[m.topic]) is None:
            setattr(seen, self.slot[m.topic], m.timestamp / 1000.0)

    def scored(self, ids: list[str]) -> list[Seen]:
        return [self.seen[i] for i in ids if i in self.seen and self.seen[i].scored is not None]


def offer(bootstrap: str, rate: float | None, seconds: float, flood: int, seed: int, tag: str) -> list[str]:
    """Send paced records (rate None: `flood` records as fast as possible); returns their ids."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
    count = int(rate * seconds) if rate else flood
    ids, start = [], time.monotonic()
    for n, record in enumerate(headlines(count, seed)):
        if rate:
            delay = n / rate - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
        record = dict(record, id=f"{tag}-{n}", sent_at=time.time())
        producer.send(S.topic_raw, json.dumps(record).encode(), key=record["id"].encode())
        ids.append(record["id"])
    producer.flush()
    producer.close()
    return ids


def percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.percentile(values, 50) * 1e3), float(np.percentile(values, 99) * 1e3)


def hop_latencies(got: list[Seen]) -> dict[str, tuple[float | None, float | None]]:
    out = {}
    for hop, (a, b) in HOPS.items():
        vals = [max(0.0, getattr(s, b) - getattr(s, a)) for s in got if getattr(s, a) is not None and getattr(s, b) is not None]
        out[hop] = percentiles(vals)
    return out


def scrape(port: int) -> list | None:
    """The worker's metric samples, or None where it serves none (the naive baseline)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def monitor_buckets(samples: list | None) -> dict[float, float]:
    """Cumulative bucket counts of finsentry_hop_latency_seconds{agent="monitor"}."""
    return {float(s.labels["le"]): s.value for s in samples or ()
            if s.name == "finsentry_hop_latency_seconds_bucket" and s.labels.get("agent") == "monitor"}


def count(samples: list | None, agent: str) -> float:
    """Observations of finsentry_hop_latency_seconds for one agent: records it has handled, by the worker's own count."""
    return sum(s.value for s in samples or ()
               if s.name == "finsentry_hop_latency_seconds_count" and s.labels.get("agent") == agent)


def settled(samples: list | None) -> float:
    """Stories the worker is done with before the monitor: fanned out by scope, or dead-lettered on the way."""
    return count(samples, "monitor-fanout") + sum(s.value for s in samples or ()
                                                  if s.name == "finsentry_records_rejected_total")


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding quantile q of the observations between two scrapes."""
    delta = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = delta[-1][1] if delta else 0.0
    if total <= 0:
        return None
    return next(le for le, count in delta if count >= q * total) * 1e3


@contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy samples process `pid` while the block runs and writes raw collapsed stacks to `out` (None: no profile)."""
    if out is None:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    proc = subprocess.Popen([str(spy if spy.exists() else "py-spy"), "record", "--pid", str(pid), "--rate", "100",
                             "--format", "raw", "--threads", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        if not out.is_file():
            print(f"  py-spy wrote no profile: {err.decode(errors='replace').strip()[-300:]}", file=sys.stderr)


def run_step(name: str, emb, proc, port: int, collector: Collector, rate: float | None, label: str, seconds: float,
             flood: int, drain_s: float, seed: int, profile: Path | None) -> dict[str, object]:
    before = scrape(port)
    cpu0, dl0, buckets0, done0 = cpu_seconds(proc.pid), collector.deadletters, monitor_buckets(before), settled(before)
    with profiled(proc.pid, profile):
        ids = offer(emb.bootstrap, rate, seconds, flood, seed=seed, tag=f"{name[:8]}-{seed}")
        deadline = time.monotonic() + drain_s
        if before is not None:
            # the worker's own counts, twice a second, until it has fanned every story out by scope
            # (or dead-lettered it); then the topics, and the monitor's count until it has taken
            # every by-scope copy
            while time.monotonic() < deadline and settled(scrape(port)) - done0 < len(ids):
                time.sleep(0.5)
            collector.read(ids, True, max(10.0, deadline - time.monotonic()))  # counts by_scope_records
            while time.monotonic() < deadline and count(scrape(port), "monitor") < collector.by_scope_records:
                time.sleep(0.5)
        else:  # the naive baseline serves no metrics: its topics are read while it runs
            got = collector.read(ids, False, 1.0)
            while time.monotonic() < deadline and len(got) < len(ids):
                time.sleep(1.0)
                got = collector.read(ids, False, 1.0)
    cpu = cpu_seconds(proc.pid) - cpu0
    after = scrape(port)
    got = collector.read(ids, after is not None, 5.0)  # and the monitor's dead letters, in this step's row
    span = (max(s.scored for s in got) - min(s.raw or s.scored for s in got)) if got else float("nan")
    buckets1 = monitor_buckets(after)
    row: dict[str, object] = {
        "engine": name, "offered": label, "offered_per_s": rate, "sent": len(ids), "scored": len(got),
        "sustained_per_s": len(got) / span if got else 0.0,
        "cpu_ms_per_record": cpu / max(1, len(got)) * 1e3, "deadletters": collector.deadletters - dl0,
        "monitor_p50_ms": bucket_quantile(buckets0, buckets1, 0.5),
        "monitor_p99_ms": bucket_quantile(buckets0, buckets1, 0.99)}
    for hop, (p50, p99) in hop_latencies(got).items():
        row[f"{hop} p50_ms"], row[f"{hop} p99_ms"] = p50, p99
    if profile and profile.is_file():
        row["profile"] = summarise(profile)
    if len(got) < len(ids):
        print(f"  {name} offered {label}: {len(ids) - len(got)} records still unscored after the {drain_s:.0f} s drain; "
              "the next step's latencies include that backlog (raise --drain)", file=sys.stderr, flush=True)
    p99 = row["raw->scored p99_ms"]
    print(f"  {name} offered {label}: scored {len(got)}/{len(ids)} at {row['sustained_per_s']:.0f}/s, "
          f"p99 {p99 if p99 is None else round(p99)} ms, {row['cpu_ms_per_record']:.2f} CPU ms/record",
          file=sys.stderr, flush=True)
    return row


def parse_rates(spec: str) -> tuple[list[float], list[float]]:
    """('0.5x,0.75x,100') -> fractions of capacity [0.5, 0.75], absolute rates [100.0]."""
    fractions, absolute = [], []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if part.endswith("x"):
            fractions.append(float(part[:-1]))
        elif part != "flood":
            absolute.append(float(part))
    return fractions, absolute


def run_engine(name: str, command: list[str], env: dict[str, str], rates: str, seconds: float, flood: int,
               drain_s: float, profile_dir: Path | None) -> list[dict[str, object]]:
    """One worker on a fresh broker: the flood first when fractions of capacity are asked for, else last."""
    fractions, absolute = parse_rates(rates)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        emb = broker.start()
        try:
            # As the README's sequence does, with the partition count this worker is configured for.
            partitions = Settings.load(env).partitions
            broker.create_topics(emb.bootstrap, {t: partitions for t in (S.topic_raw, S.topic_clean, S.topic_scored, S.topic_deadletter)})
            port = broker.free_port()
            log = Path(tmp) / "worker.log"
            proc = subprocess.Popen(command, env={**worker_env(emb.url, port, Path(tmp) / "data"), **env},
                                    stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
            try:
                try:
                    wait_ready(port, proc, 180)
                except RuntimeError:
                    sys.stderr.write(log.read_text(errors="replace")[-3000:])
                    raise
                collector = Collector(emb.bootstrap)
                profile = (profile_dir / f"{name.replace(' ', '_')}.raw") if profile_dir else None

                def step(rate: float | None, label: str, seed: int, spy: Path | None = None) -> dict[str, object]:
                    rows.append(run_step(name, emb, proc, port, collector, rate, label, seconds, flood, drain_s, seed, spy))
                    return rows[-1]

                if fractions:
                    capacity = float(step(None, "flood", 0, profile)["sustained_per_s"])  # type: ignore[arg-type]
                    for i, f in enumerate(fractions, start=1):
                        step(round(f * capacity, 1), f"{f}x ({f * capacity:.0f}/s)", i)
                for i, rate in enumerate(absolute, start=len(fractions) + 1):
                    step(rate, f"{rate:g}/s", i)
                if not fractions:
                    step(None, "flood", 0, profile)
            finally:
                stop_process(proc)
        finally:
            emb.stop()
    return rows


def fmt(value: object, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"  # type: ignore[str-format]


def report(rows: list[dict[str, object]], runtime: dict[str, float]) -> None:
    print("\n| engine | offered | sent | scored | sustained/s | " + " | ".join(f"{h} p50/p99 ms" for h in HOPS)
          + " | monitor p50/p99 ms (buckets) | CPU ms/record | dead letters |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(HOPS) + "---:|---:|---:|")
    for r in rows:
        hops = " | ".join(f"{fmt(r.get(f'{h} p50_ms'))} / {fmt(r.get(f'{h} p99_ms'))}" for h in HOPS)
        print(f"| {r['engine']} | {r['offered']} | {r['sent']} | {r['scored']} | {r['sustained_per_s']:.0f} | {hops} | "
              f"{fmt(r['monitor_p50_ms'])} / {fmt(r['monitor_p99_ms'])} | {r['cpu_ms_per_record']:.2f} | {r['deadletters']} |")
    for r in rows:
        if "profile" in r:
            print(f"\nCPU by stage, {r['engine']} flood (py-spy samples; ms/record = share x {r['cpu_ms_per_record']:.2f}):")
            print("| stage | share | CPU ms/record |\n|---|---:|---:|")
            for stage, share in r["profile"].items():  # type: ignore[union-attr]
                print(f"| {stage} | {share:.1%} | {share * float(r['cpu_ms_per_record']):.2f} |")  # type: ignore[arg-type]
    best = {e: max(float(r["sustained_per_s"]) for r in rows if r["engine"] == e) for e in {str(r["engine"]) for r in rows}}  # type: ignore[arg-type]
    naive = best.pop("naive HF pipeline agent", None)
    if naive:
        for engine, rate in best.items():
            print(f"\nbest sustained: {engine} {rate:.0f}/s vs naive {naive:.0f}/s = {rate / naive:.1f}x")
    if not runtime:
        return
    print(f"\nruntime alone ({runtime['variant']}): best {runtime['per_s']:.0f} headlines/s at batch "
          f"{runtime['batch']:.0f}, {runtime['cpu_ms_per_headline']:.2f} CPU ms/headline")
    for engine in dict.fromkeys(str(r["engine"]) for r in rows if not str(r["engine"]).startswith("naive")):
        own = [r for r in rows if r["engine"] == engine]
        flood = next((r for r in own if r["offered"] == "flood"), None)
        if flood is None:
            continue
        print(f"{engine}: flood {flood['sustained_per_s']:.0f}/s = {flood['sustained_per_s'] / runtime['per_s']:.2f} x the "  # type: ignore[operator]
              f"runtime (target >= 0.8); CPU {flood['cpu_ms_per_record']:.2f} ms/record = "
              f"{flood['cpu_ms_per_record'] / runtime['cpu_ms_per_headline']:.2f} x the model's (target <= 1.3)")  # type: ignore[operator]
        for r in own:
            if str(r["offered"]).startswith(("0.5x", "0.75x")):
                target = 250 if str(r["offered"]).startswith("0.5x") else 500
                print(f"  at {r['offered']}: p99 raw->scored {fmt(r['raw->scored p99_ms'])} ms (target <= {target})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="0.5x,0.75x", help="offered records/s or fractions of capacity ('0.5x'), comma-separated")
    p.add_argument("--seconds", type=float, default=15.0, help="seconds of offered load per rate")
    p.add_argument("--flood", type=int, default=3000, help="records sent at once in the flood that measures capacity")
    p.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the backlog after each rate")
    p.add_argument("--config", action="append", default=None, metavar="LABEL:ENV=VALUE,...",
                   help="a worker configuration to run, e.g. 'fetch 1500 ms:FINSENTRY_CONSUMER_FETCH_MAX_WAIT_MS=1500'; "
                        "repeat to compare; default: one worker with today's settings")
    p.add_argument("--variant", default=None, choices=list(VARIANTS),
                   help="the model variant for the runtime baseline and every worker (default: the runtime's own choice)")
    p.add_argument("--runtime-batches", default="1,8,32,64", help="micro-batch sizes for the runtime-alone baseline")
    p.add_argument("--runtime-seconds", type=float, default=4.0)
    p.add_argument("--profile", type=Path, default=None, metavar="DIR", help="sample each worker's flood with py-spy")
    p.add_argument("--checkpoint", default=None, help="torch checkpoint for the naive HF-pipeline baseline")
    p.add_argument("--baseline-rates", default="20,50", help="offered rates for the naive baseline")
    p.add_argument("--json", dest="json_out", default=None)
    args = p.parse_args(argv)
    runtime = runtime_baseline(args.variant, [int(b) for b in args.runtime_batches.split(",")], args.runtime_seconds)
    variant_env = {"FINSENTRY_MODEL_VARIANT": args.variant} if args.variant else {}
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    for spec in args.config or ["finsentry:"]:
        label, _, assignments = spec.partition(":")
        env = dict(a.split("=", 1) for a in filter(None, assignments.split(",")))
        rows += run_engine(label, [sys.executable, "-m", "streams.cli", "worker", "-l", "warn"],
                           {**variant_env, **env}, args.rates, args.seconds, args.flood, args.drain, args.profile)
    if args.checkpoint:
        env = {"FINSENTRY_BENCH_CHECKPOINT": str(Path(args.checkpoint).resolve()), "PYTHONPATH": str(ROOT)}
        rows += run_engine("naive HF pipeline agent", [sys.executable, "-m", "faust", "-A", "bench.naive_app", "worker", "-l", "warn"],
                           env, args.baseline_rates, args.seconds, args.flood, args.drain, None)
    report(rows, runtime)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"runtime": runtime, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
