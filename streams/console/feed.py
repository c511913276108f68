"""Feeds the console's charts: every scored story this worker receives is counted per scope and minute.

Its own agent on `news.scored` (beside the monitor's fan-out); in memory only, so a restarted worker's
charts start empty and fill again. Nothing here can fail an agent: it reads the topic as bytes, like the
monitor, and a record it cannot decode or read is skipped (the monitor dead-letters it). Reading it
through the JSON serializer made one foreign record a decode error in Faust's stream, an agent
crash, which stops the worker (streams/failures.py).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from alerts.engine import scopes_for
from streams.app import app, scored_bytes, settings
from streams.console.charts import SERIES, Series
from streams.failures import guarded_timer

log = logging.getLogger(__name__)


def record(raw: bytes | None, series: Series = SERIES) -> None:
    """Count one `news.scored` value (raw bytes) in the charts; anything unreadable is ignored."""
    try:
        value = json.loads(raw) if raw is not None else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return
    if not isinstance(value, dict):
        return
    try:
        at = datetime.fromisoformat(str(value["published_at"])).timestamp()
    except (KeyError, ValueError, TypeError):
        return
    sentiment = value.get("sentiment") if isinstance(value.get("sentiment"), str) else None
    topic = value.get("topic") if isinstance(value.get("topic"), str) else None
    tickers = [t for t in value.get("tickers") or () if isinstance(t, str)]
    for scope in scopes_for(topic, tickers):  # the monitor's scopes, so a chart matches its anomalies
        series.add(scope, at, sentiment)


@app.agent(scored_bytes, name="console-feed")
async def feed(stream: Any) -> None:
    async for value in stream:
        try:
            record(value)
        except Exception:
            log.debug("console feed skipped a record", exc_info=True)


@app.timer(interval=300.0)
@guarded_timer("console-prune", settings.crash_exit_delay_seconds)
async def prune() -> None:
    SERIES.prune(time.time())
