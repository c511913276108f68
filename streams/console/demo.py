"""`finsentry demo`'s console: a demo roster with one analyst for every topic, her sign-in, and
`--keep-running`, which keeps the broker and worker up until Ctrl-C (reporting new anomalies and
cases meanwhile) so a new user can click through the planted surge's case in the console."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path

from scheduler.tokens import hash_token


def topics() -> list[str]:
    """The running model's topics: the demo analyst can take a case in any of them."""
    from models.runtime import model_labels
    from streams.settings import Settings

    return sorted(model_labels(Settings().model_dir)["topic"])


# The monitor arms after 30 one-minute windows by default; the demo's stream is shorter, so the demo
# arms it after 10 (as tests/integration/test_monitor_surge.py does), and its planted surge comes after.
MONITOR_ENV = {"FINSENTRY_MONITOR_WARMUP_WINDOWS": "10", "FINSENTRY_MONITOR_ALLOWED_LATENESS": "120"}


def roster(tmpdir: Path) -> tuple[dict[str, str], str]:
    """(worker environment for a demo roster, the demo analyst's token). The analyst covers every
    topic around the clock; the token is fresh for each run and only its salted hash is in the file."""
    token = "demo-" + secrets.token_urlsafe(24)
    digest = hash_token(token)
    skills = ", ".join(f'"{t}": 3' for t in topics())
    path = tmpdir / "roster.yaml"
    path.write_text(f"""analysts:
  - id: demo
    name: Demo Analyst
    capacity: 10
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{{skills}}}}}
    notify: http://127.0.0.1:9/demo
    token_hash: {digest}
""", encoding="utf-8")
    return {"FINSENTRY_ROSTER": str(path), "FINSENTRY_SCHEDULER_TICK_SECONDS": "2", **MONITOR_ENV}, token


def keep_running(web_port: int, token: str, reported: Callable[[], list[str]], broker_url: str) -> None:
    """Print the console's address and sign-in and the broker's (for `finsentry tail` and `feedback
    export`), then each new anomaly and case line until Ctrl-C."""
    print(f"\nconsole: http://127.0.0.1:{web_port}/console/  (sign in as demo with the token {token})\n"
          f"broker: {broker_url}  (finsentry tail news.scored --broker {broker_url}; "
          f"finsentry feedback export labels.jsonl --broker {broker_url})\n"
          "anomalies on topic scopes become cases in the demo analyst's queue (the machine closes info ones;\n"
          "ticker cases above info wait: she has no ticker skills); new anomalies and cases are reported below.\n"
          "Ctrl-C stops the worker and the broker", flush=True)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C even where the demo inherited SIGINT ignored (started with `&` from a script: Python then
    # installs no KeyboardInterrupt handler, and Ctrl-C did nothing), and a plain `kill` the same way:
    # both stop the worker before the broker.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        while True:
            for line in reported():
                print(line, flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
