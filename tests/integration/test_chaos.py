"""The crash and hostile-input runners at test size: scripts/chaos.py SIGKILLs the worker three
times mid-stream (and, in a second run, stops it gracefully three times), scripts/hostile.py pushes 5,000 hostile inputs; both check from the topics that
nothing was lost or double-counted (full-scale figures: docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run_script(name: str, model_dir: Path, out: Path, *args: str, timeout: float) -> dict:
    done = subprocess.run([sys.executable, str(SCRIPTS / name), "--model-dir", str(model_dir), "--json", str(out),
                           *args], check=False, capture_output=True, text=True, timeout=timeout)
    assert out.is_file(), done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] and done.returncode == 0, done.stdout + done.stderr[-3000:]
    return report


def test_three_sigkills_lose_nothing_and_count_nothing_twice(model_dir: Path, tmp_path: Path) -> None:
    report = run_script("chaos.py", model_dir, tmp_path / "chaos.json", "--records", "3000", "--kills", "3",
                        "--min-gap", "3", "--max-gap", "8", timeout=420)
    assert report["lost"] == 0 and report["scored_unique"] == 3000
    assert report["monitor_missing"] == report["monitor_double_counted"] == 0
    assert len(report["recoveries"]) == 3


def test_three_graceful_stops_lose_nothing_and_count_nothing_twice(model_dir: Path, tmp_path: Path) -> None:
    # SIGTERM: the stopping agents' streams acknowledge the events they held unfinished
    report = run_script("chaos.py", model_dir, tmp_path / "stops.json", "--scenario", "stops", "--records", "3000",
                        "--kills", "3", "--min-gap", "3", "--max-gap", "8", timeout=420)
    assert report["lost"] == 0 and report["scored_unique"] == 3000
    assert report["monitor_missing"] == report["monitor_double_counted"] == 0
    assert len(report["recoveries"]) == 3


def test_5000_hostile_inputs_all_accounted_for_and_the_worker_survives(model_dir: Path, tmp_path: Path) -> None:
    report = run_script("hostile.py", model_dir, tmp_path / "hostile.json", "--count", "5000", timeout=420)
    assert report["sent"] == 5000 and report["lost"] == 0
    assert report["worker_alive"] and report["worker_ready"]
    assert report["deadlettered"] == report["expected_rejected"]
