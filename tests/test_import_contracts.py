"""The layers hold: `lint-imports` checks the contracts in pyproject.toml ([tool.importlinter]).

models, alerts and scheduler import neither streams nor Kafka nor Faust; no import cycle among the
project's modules; agents don't import one another; views don't import agents (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.fail("lint-imports is missing: install the dev extra (pip install -e '.[dev]')")
    result = subprocess.run([lint, "--no-cache"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
