"""End-to-end throughput and latency on the embedded broker, against a naive baseline in the same run.

    python bench/pipeline.py --rates 100,200,400,800 --seconds 20 [--checkpoint runs/default] [--json out.json]

For each offered rate it paces generated headlines into `news.raw` for a fixed time, then reports
the sustained scored records/s, p50/p99 published->scored latency (raw record's Kafka timestamp to
the scored record's), the worker's CPU seconds per record and the dead-letter count. A final row
floods the topic as fast as the producer can go. With --checkpoint, the same rates are run through
bench/naive_app.py (the HF pipeline, one record at a time) for the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.variants import VARIANTS
from streams import broker
from streams.demo import stop_process, wait_ready, worker_env
from streams.settings import Settings
from streams.sources.generate import generate

S = Settings()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Collector(threading.Thread):
    """Reads news.scored and news.deadletter; keeps (id -> scored Kafka timestamp) and counts."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(S.topic_scored, S.topic_deadletter, bootstrap_servers=bootstrap,
                                      auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=200)
        self.scored: dict[str, tuple[float, float]] = {}
        self.deadletters = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            for m in self.consumer:
                with self.lock:
                    if m.topic == S.topic_deadletter:
                        self.deadletters += 1
                    else:
                        v = json.loads(m.value)
                        sent = v.get("received_at") or v.get("sent_at")
                        self.scored.setdefault(v["id"], (float(sent or 0), m.timestamp / 1000.0))
                if self.stop.is_set():
                    break


def offer(bootstrap: str, rate: float | None, seconds: float, count: int, seed: int, tag: str) -> tuple[list[str], float]:
    """Send paced records (rate None = as fast as possible); returns ids and the wall time spent."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
    items = generate(count, rate=rate or 1000.0, seed=seed, start=datetime.now(UTC))
    ids, start = [], time.monotonic()
    for n, item in enumerate(items):
        record = dict(item.record, id=f"{tag}-{n}")
        if rate:
            delay = n / rate - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() - start > seconds:
                break
        record["sent_at"] = time.time()
        producer.send(S.topic_raw, json.dumps(record).encode(), key=record["id"].encode())
        ids.append(record["id"])
    producer.flush()
    return ids, time.monotonic() - start


def run_engine(name: str, command: list[str], env: dict[str, str], rates: list[float | None], seconds: float,
               drain_s: float) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        emb = broker.start()
        try:
            broker.create_topics(emb.bootstrap, {t: S.partitions for t in (S.topic_raw, S.topic_clean, S.topic_scored, S.topic_deadletter)})
            port = broker.free_port()
            log = Path(tmp) / "worker.log"
            proc = subprocess.Popen(command, env={**worker_env(emb.url, port, Path(tmp) / "data"), **env},
                                    stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
            try:
                wait_ready(port, proc, 180)
                collector = Collector(emb.bootstrap)
                collector.start()
                for i, rate in enumerate(rates):
                    count = int((rate or 5000) * seconds) if rate else 5000
                    cpu0 = cpu_seconds(proc.pid)
                    dl0 = collector.deadletters
                    t0 = time.monotonic()
                    ids, _ = offer(emb.bootstrap, rate, seconds, count, seed=i, tag=f"r{i}")
                    deadline = time.monotonic() + drain_s
                    while time.monotonic() < deadline:
                        with collector.lock:
                            done = sum(1 for x in ids if x in collector.scored)
                        if done >= len(ids):
                            break
                        time.sleep(0.2)
                    with collector.lock:
                        got = [collector.scored[x] for x in ids if x in collector.scored]
                        dead = collector.deadletters - dl0
                    cpu = cpu_seconds(proc.pid) - cpu0
                    latencies = [max(0.0, scored - sent) for sent, scored in got]
                    span = (max(s for _, s in got) - min(sent for sent, _ in got)) if got else float("nan")
                    rows.append({"engine": name, "offered_per_s": rate or "flood", "sent": len(ids),
                                 "scored": len(got), "sustained_per_s": len(got) / span if got else 0.0,
                                 "p50_ms": float(np.percentile(latencies, 50) * 1e3) if got else None,
                                 "p99_ms": float(np.percentile(latencies, 99) * 1e3) if got else None,
                                 "cpu_ms_per_record": cpu / max(1, len(got)) * 1e3, "deadletters": dead,
                                 "wall_s": time.monotonic() - t0})
                    r = rows[-1]
                    print(f"  {name} offered {r['offered_per_s']}: scored {r['scored']}/{r['sent']} "
                          f"at {r['sustained_per_s']:.0f}/s, p99 {r['p99_ms'] or float('nan'):.0f} ms", file=sys.stderr, flush=True)
                collector.stop.set()
            finally:
                stop_process(proc)
        finally:
            emb.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="100,200,400,800", help="offered records/s, comma-separated; 'flood' runs last")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds of offered load per rate")
    p.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the backlog after each rate")
    p.add_argument("--checkpoint", default=None, help="torch checkpoint for the naive HF-pipeline baseline")
    p.add_argument("--baseline-rates", default="20,50,100", help="offered rates for the naive baseline")
    p.add_argument("--skip-finsentry", action="store_true", help="run only the naive baseline")
    p.add_argument("--variant", default=None, choices=list(VARIANTS),
                   help="the worker's FINSENTRY_MODEL_VARIANT (default: the runtime's own choice)")
    p.add_argument("--json", dest="json_out", default=None)
    args = p.parse_args(argv)
    rates: list[float | None] = [float(r) for r in args.rates.split(",")] + [None]
    python = sys.executable
    rows = [] if args.skip_finsentry else run_engine(
        "finsentry", [python, "-m", "streams.cli", "worker", "-l", "warn"],
        {"FINSENTRY_MODEL_VARIANT": args.variant} if args.variant else {}, rates, args.seconds, args.drain)
    if args.checkpoint:
        env = {"FINSENTRY_BENCH_CHECKPOINT": str(Path(args.checkpoint).resolve()), "PYTHONPATH": str(ROOT)}
        base_rates: list[float | None] = [float(r) for r in args.baseline_rates.split(",")] + [None]
        rows += run_engine("naive HF pipeline agent", [python, "-m", "faust", "-A", "bench.naive_app", "worker", "-l", "warn"], env, base_rates, args.seconds, args.drain)
    print("\n| engine | offered/s | sent | scored | sustained scored/s | p50 ms | p99 ms | CPU ms/record | dead letters |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p50 = f"{r['p50_ms']:.0f}" if r["p50_ms"] is not None else "-"
        p99 = f"{r['p99_ms']:.0f}" if r["p99_ms"] is not None else "-"
        print(f"| {r['engine']} | {r['offered_per_s']} | {r['sent']} | {r['scored']} | {r['sustained_per_s']:.0f} | "
              f"{p50} | {p99} | {r['cpu_ms_per_record']:.2f} | {r['deadletters']} |")
    best = {e: max((r["sustained_per_s"] for r in rows if r["engine"] == e), default=0) for e in {r["engine"] for r in rows}}
    if len(best) == 2:
        print(f"\nbest sustained: finsentry {best['finsentry']:.0f}/s vs naive {best['naive HF pipeline agent']:.0f}/s "
              f"= {best['finsentry'] / max(best['naive HF pipeline agent'], 1e-9):.1f}x")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
