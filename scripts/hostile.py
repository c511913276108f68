"""Hostile input at scale through the real ingest path: every input scored or dead-lettered with
the reason the validator gives it, and the worker alive and ready at the end.

    python scripts/hostile.py --count 100000 [--seed S] [--json out.json]

The mix: every generated malformed kind, random bytes, deep JSON, giant and control-character
fields, wrong types, and valid stories. The expected verdict of each input is computed with the
same pure validator the agent runs, so the check is exact per reason, not just a total.

Issue #17's attack table (web port, silences, cases, scraper, ingest) is replayed by
scripts/hostile_table.py; its output is in docs/SECURITY.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness import SETTINGS, Stack, end_offsets, exit_on_sigterm, model_dir, read_json

from streams.sources.generate import generate, malformed_with_kinds
from streams.sources.kafka_sink import KafkaSink
from streams.validation import Rejection, validate

SHAPES = ("valid", "malformed", "random_bytes", "deep_json", "giant_field", "control_chars", "wrong_types")


def hostile(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """(shape, value) for `count` inputs, a fixed mix of the shapes above."""
    rng = random.Random(seed)
    valid = generate(count, 20.0, seed, start=datetime(2026, 4, 6, tzinfo=UTC))
    bad = malformed_with_kinds(count, seed)
    for n in range(count):
        shape = SHAPES[n % len(SHAPES)]
        if shape == "valid":
            value = json.dumps(next(valid).record).encode()
        elif shape == "malformed":
            value = next(bad)[1]
        elif shape == "random_bytes":
            value = rng.randbytes(rng.randint(0, 512))
        elif shape == "deep_json":
            depth = rng.randint(100, 30_000)
            value = (b"[" * depth + b"]" * depth) if n % 2 else (b'{"a":' * depth + b"1" + b"}" * depth)
        elif shape == "giant_field":
            name = rng.choice(("headline", "body", "id", "source", "url"))
            value = json.dumps({"id": f"giant-{n}", "headline": "Acme falls", name: "x" * rng.randint(900, 90_000)}).encode()
        elif shape == "control_chars":
            text = "".join(chr(rng.choice((0, 7, 27, 127, 0x200B, 0x2028, 0xFEFF, rng.randint(32, 0x2FFF))))
                           for _ in range(rng.randint(1, 80)))
            value = json.dumps({"id": f"ctl-{n}", "headline": text, "tickers": [text[:8]]}).encode()
        else:
            value = json.dumps({"id": f"typ-{n}", "headline": rng.choice((1, None, [], {}, True, "Acme up")),
                                "tickers": rng.choice(([1], "ACME", None, [{}], ["ACME"])),
                                "published_at": rng.choice((True, [], "x", 1e300, -1e20, None))}).encode()
        yield shape, value


@dataclass
class Report:
    sent: int = 0
    expected_scored: int = 0
    expected_rejected: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    deadlettered: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    worker_alive: bool = False
    worker_ready: bool = False
    internal_errors_in_log: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.worker_alive and self.worker_ready and self.internal_errors_in_log == 0
                and self.deadlettered == self.expected_rejected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=5000, help="inputs sent before waiting for them to be processed")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for the whole run")
    parser.add_argument("--model-dir")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    report, started = Report(), time.monotonic()
    expected_ids: set[str] = set()
    rejected: Counter[str] = Counter()
    stack = Stack(Path(tempfile.mkdtemp(prefix="finsentry-hostile-")), model_dir(args.model_dir))
    try:
        emb = stack.start_broker()
        worker = stack.start_worker()
        worker.wait_ready()
        deadline = time.monotonic() + args.timeout

        def caught_up() -> bool:
            return (end_offsets(emb.bootstrap, SETTINGS.topic_deadletter) >= sum(rejected.values())
                    and end_offsets(emb.bootstrap, SETTINGS.topic_scored) >= len(expected_ids))

        # Sent in chunks, each processed before the next: a single burst of 100,000 inputs (a tenth
        # of them near 64 KiB) kept the embedded broker's producer queue longer than kafka-python's
        # 120 s delivery timeout, which tests the producer, not the ingest path.
        with KafkaSink(emb.url, SETTINGS.topic_raw) as sink:
            for _, value in hostile(args.count, args.seed):
                verdict = validate(value, time.time())
                if isinstance(verdict, Rejection):
                    rejected[verdict.reason] += 1
                else:
                    expected_ids.add(verdict.id)
                sink.send(value)
                report.sent += 1
                if report.sent % args.chunk == 0 or report.sent == args.count:
                    sink.flush()
                    while not caught_up() and time.monotonic() < deadline:
                        time.sleep(1)
                    print(f"{report.sent}/{args.count} sent, {time.monotonic() - started:.0f}s: "
                          f"{'processed' if caught_up() else 'NOT processed within --timeout'}", file=sys.stderr, flush=True)
        report.expected_scored, report.expected_rejected = len(expected_ids), dict(sorted(rejected.items()))
        scored = {r["id"] for r in read_json(emb.bootstrap, SETTINGS.topic_scored)}
        reasons = Counter(d["reason"] for d in read_json(emb.bootstrap, SETTINGS.topic_deadletter))
        report.scored, report.deadlettered = len(scored), dict(sorted(reasons.items()))
        report.lost = len(expected_ids - scored) + max(0, sum(rejected.values()) - sum(reasons.values()))
        report.worker_alive = worker.process.poll() is None
        report.worker_ready = report.worker_alive and worker.becomes_ready(within=60.0)
        report.internal_errors_in_log = worker.log.read_text(errors="replace").count("unexpected error")
    finally:
        stack.close()
    report.wall_s = round(time.monotonic() - started, 1)
    for name, value in asdict(report).items():
        print(f"{name:<24} {value}")
    print("OK: every input accounted for, worker alive" if report.ok else "FAILED: see the counts above")
    if args.json:
        args.json.write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
