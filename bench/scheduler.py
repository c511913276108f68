"""Compare the assignment optimiser with round-robin and greedy-least-loaded on one simulated week.

    .venv/bin/python bench/scheduler.py [--seed S] [--load 0.85] [--days 5] [--json OUT]

All three policies see the same arrivals, meetings and service-time draws (see scheduler/simulate.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

# Python puts this file's folder first on sys.path, where this very file would shadow the package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from scheduler.simulate import Metrics, SimConfig, compare

COLUMNS = (
    ("policy", "{:<13}"),
    ("cases", "{:>6}"),
    ("breach_rate", "{:>11.1%}"),
    ("mean_assign_min", "{:>15.2f}"),
    ("p95_assign_min", "{:>14.2f}"),
    ("utilisation", "{:>11.1%}"),
    ("gini", "{:>6.3f}"),
    ("escalations", "{:>11}"),
    ("still_open", "{:>10}"),
)


def table(results: list[Metrics]) -> str:
    header = " ".join(f"{name:>{len(fmt.format(getattr(results[0], name)))}}" for name, fmt in COLUMNS)
    rows = [" ".join(fmt.format(getattr(m, name)) for name, fmt in COLUMNS) for m in results]
    return "\n".join([header, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SimConfig.seed)
    parser.add_argument("--load", type=float, default=SimConfig.load, help="offered load, e.g. 0.85")
    parser.add_argument("--days", type=int, default=SimConfig.days, help="days of arrivals, from a Monday")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = SimConfig(seed=args.seed, load=args.load, days=args.days)
    results = compare(
        config, progress=lambda msg: print(f"[{time.perf_counter() - started:5.1f}s] {msg}", file=sys.stderr)
    )
    print(table(results))
    optimal, round_robin = results[0], results[1]
    if round_robin.breach_rate > 0:
        fewer = 1 - optimal.breach_rate / round_robin.breach_rate
        print(f"\noptimal vs round_robin: {fewer:.1%} fewer SLA breaches (target: at least 30% at load 0.85)")
    if args.json:
        payload = {
            "config": {"seed": args.seed, "load": args.load, "days": args.days},
            "results": [asdict(m) for m in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
