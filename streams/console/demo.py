"""`finsentry demo`'s console: a demo roster with one analyst per topic, her sign-in, and
`--keep-running`, which keeps the broker and worker up until Ctrl-C so a new user can click through
the planted surge's case in the console."""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path


def topics() -> list[str]:
    """The running model's topics: the demo analyst can take a case in any of them."""
    import json

    from models.runtime import default_model_dir
    from streams.settings import Settings

    directory = Settings().model_dir or default_model_dir()
    return sorted(json.loads((directory / "labels.json").read_text(encoding="utf-8"))["topic"])


def roster(tmpdir: Path) -> tuple[dict[str, str], str]:
    """(worker environment for a demo roster, the demo analyst's token). Every analyst covers every
    topic around the clock; the token is fresh for each run and only its SHA-256 is in the file."""
    token = "demo-" + secrets.token_urlsafe(12)
    digest = hashlib.sha256(token.encode()).hexdigest()
    skills = ", ".join(f'"{t}": 3' for t in topics())
    path = tmpdir / "roster.yaml"
    path.write_text(f"""analysts:
  - id: demo
    name: Demo Analyst
    capacity: 10
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{{skills}}}}}
    notify: http://127.0.0.1:9/demo
    token_sha256: {digest}
""", encoding="utf-8")
    return {"FINSENTRY_ROSTER": str(path), "FINSENTRY_SCHEDULER_TICK_SECONDS": "2"}, token


def keep_running(web_port: int, token: str) -> None:
    print(f"\nconsole: http://127.0.0.1:{web_port}/console/  (sign in as demo with the token {token})\n"
          "the planted surge's case is in the demo analyst's queue; Ctrl-C stops the worker and the broker",
          flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
