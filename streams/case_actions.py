"""One path for an analyst's case action, shared by the analyst API (streams/views/cases.py) and the
console (streams/console/views.py), so both answer by the same rules.

The action is first tried on a private copy of the current state, so a mistake gets its status at once
(400/403/404/409); the label rules are checked; then it goes to `cases.actions` and the caller waits
for the scheduler's single writer (streams/agents/schedule.py) to apply it, so the answer is what
actually happened (a race lost in between comes back as the writer's refusal). `send_action` is the
only place an action is written, and it signs what it writes (streams/action_signing.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scheduler import ActionError
from scheduler.feedback import label_problem
from streams.action_signing import action_secret, sign
from streams.app import case_actions_topic, settings
from streams.case_state import expect, forget, load
from streams.loaded_model import model_topics

OUTCOME_TIMEOUT = 10.0  # seconds to wait for the single writer before answering 202


@dataclass(frozen=True)
class Outcome:
    """200 applied (with its case events), 202 sent but not applied in time, else the refusal's status."""

    status: int
    message: str
    events: list[dict[str, Any]] = field(default_factory=list)


async def send_action(action: dict[str, Any]) -> None:
    """Sign one action and write it to `cases.actions`, keyed by its case; returns once the broker has it,
    so a 202 "sent" is true."""
    await (await case_actions_topic.send(key=action["case_id"].encode(), value=sign(action, action_secret(), time.time())))


async def submit(action: dict[str, Any]) -> Outcome:
    """Check `action` against the current state, send it, and wait for the writer's outcome."""
    sched = load()
    case = sched.case(action["case_id"])
    if case is None:
        return Outcome(404, f"no case {action['case_id']!r}")
    try:
        sched.on_action(action, datetime.now(UTC))  # a dry run on a private copy of the state
    except ActionError as exc:
        return Outcome(exc.status, str(exc))
    problem = label_problem(case, action.get("labels"), model_topics(settings))
    if problem is not None:
        return Outcome(400, problem)
    outcome = expect(action["action_id"])
    try:
        await send_action(action)
        events = await asyncio.wait_for(outcome, OUTCOME_TIMEOUT)
    except ActionError as exc:
        return Outcome(exc.status, str(exc))
    except TimeoutError:
        return Outcome(202, f"not applied within {OUTCOME_TIMEOUT:g}s; watch cases.events")
    finally:
        forget(action["action_id"])
    return Outcome(200, "done", events)
