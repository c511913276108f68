"""Scheduler on a real broker: anomalies become assigned cases, analysts work them over the HTTP API,
corrected labels come out as training data, and a worker killed with SIGKILL mid-case is replaced
by one that carries on with the same state.

Anomalies are produced straight to `alerts.anomalies`, so nothing depends on the model or the
monitor. Two analysts with disjoint skills make every assignment deterministic.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from waiting import wait_for

from alerts.signing import verify
from models.data import load_file
from scheduler.tokens import hash_token
from streams.settings import Settings

ALICE_TOKEN = "alice-" + uuid.uuid4().hex
BOB_TOKEN = "bob-" + uuid.uuid4().hex
WEBHOOK_SECRET = "case-hook-" + uuid.uuid4().hex
ALL_WEEK = "Mon-Sun 00:00-24:00 UTC"
GROUP = Settings().app_id  # the worker's consumer group
INBOX = "scheduler.inbox"  # streams/agents/schedule.py: anomalies, actions and ticks, one writer
STATE_CHANGELOG = f"{GROUP}-scheduler-state-changelog"
WAIT = 300  # seconds; a condition normally holds within a few


def roster_yaml(hook: str) -> str:
    return f"""\
analysts:
  - id: alice
    name: Alice
    capacity: 3
    shifts: ["{ALL_WEEK}"]
    skills: {{topics: {{Earnings: 5}}}}
    notify: {hook}/alice
    token_env: TEST_TOKEN_ALICE
  - id: bob
    name: Bob
    capacity: 3
    shifts: ["{ALL_WEEK}"]
    skills: {{topics: {{Macro: 5}}}}
    notify: {hook}/bob
    token_hash: {hash_token(BOB_TOKEN)}
"""


def anomaly(scope: str) -> dict:
    aid = uuid.uuid4().hex[:12]
    return {"anomaly_id": aid, "event": "open", "kind": "negative_surge", "scope": scope,
            "window_start": "2024-03-04T10:00:00.000Z", "window_end": "2024-03-04T10:01:00.000Z",
            "observed": 9, "expected": 1.5, "score": 6.0, "severity": "warning",
            "sample_ids": [f"{aid}-s1", f"{aid}-s2"],
            "headlines": [f"Acme {aid} profit warning shocks investors", f"Acme {aid} shares slide"]}


class Hooks:
    """A webhook receiver on 127.0.0.1 that records every POST with its signature check."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict, bool]] = []
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(WEBHOOK_SECRET.encode(), dict(self.headers), body, time.time())
                hooks.received.append((self.path, json.loads(body), ok))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    running = Hooks()
    yield running
    running.server.shutdown()


def call(port: int, method: str, path: str, token: str | None = None, body: bytes | dict | None = None,
         source: str = "127.0.0.1") -> tuple[int, dict, dict[str, str]]:
    """One HTTP request from a chosen loopback address (the rate limiter keys on it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    try:
        conn.request(method, path, body=raw, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        return response.status, (json.loads(text) if text.startswith("{") else {"text": text}), dict(response.headers)
    finally:
        conn.close()



def saved_and_sent(kafka, bootstrap: str, statuses: dict[str, str]) -> bool:
    """The scheduler's saved cases (one record each) have these statuses, and its head record holds
    no unfinished journal (scheduler/storage.py)."""
    saved = [v for v in kafka.read(bootstrap, [STATE_CHANGELOG])[STATE_CHANGELOG] if v]
    heads = [v for v in saved if "case" not in v]
    cases = {v["case"]["case_id"]: v["case"] for v in saved if "case" in v}
    return (bool(heads) and heads[-1].get("journal") is None
            and all(cases.get(c, {}).get("status") == s for c, s in statuses.items()))


def case_events(kafka, bootstrap: str, case_id: str, until: Callable[[list[dict]], bool], timeout: float = WAIT) -> list[dict]:
    topic = Settings().topic_case_events
    seen = kafka.consume(bootstrap, [topic], lambda s: until([e for e in s[topic] if e.get("case_id") == case_id]),
                         timeout)
    return [e for e in seen[topic] if e.get("case_id") == case_id]


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


@pytest.mark.integration
def test_cases_flow_through_the_api_and_survive_a_killed_worker(embedded_broker, start_worker_process, kafka,
                                                               hooks, tmp_path: Path) -> None:
    settings = Settings()
    bootstrap = embedded_broker.bootstrap
    roster = tmp_path / "roster.yaml"
    roster.write_text(roster_yaml(hooks.url))
    secret = tmp_path / "hook-secret"
    secret.write_text(WEBHOOK_SECRET)
    env = {"FINSENTRY_ROSTER": str(roster), "TEST_TOKEN_ALICE": ALICE_TOKEN, "FINSENTRY_SCHEDULER_TICK_SECONDS": "1",
           "FINSENTRY_CASE_WEBHOOK_SECRET_FILE": str(secret)}
    first = start_worker_process(**env)

    earnings, macro = anomaly("topic:Earnings"), anomaly("topic:Macro")
    kafka.produce(bootstrap, settings.topic_anomalies, [earnings, macro], [earnings["scope"], macro["scope"]])
    case_a, case_b = f"case-{earnings['anomaly_id']}", f"case-{macro['anomaly_id']}"
    events_a = case_events(kafka, bootstrap, case_a, lambda es: "assigned" in names(es))
    assert names(events_a) == ["created", "assigned"] and events_a[1]["analyst"] == "alice"
    assert events_a[1]["notify"] == {"target": f"{hooks.url}/alice", "analyst": "alice"}
    events_b = case_events(kafka, bootstrap, case_b, lambda es: "assigned" in names(es))
    assert events_b[-1]["analyst"] == "bob"
    wait_for(lambda: {p for p, _, _ in hooks.received} >= {"/alice", "/bob"}, WAIT, "both assignment webhooks")
    _, payload, signed = next(h for h in hooks.received if h[0] == "/alice")
    assert signed and payload["version"] == "4"
    assert payload["alerts"][0]["labels"]["alertname"] == "case_assigned"
    assert payload["alerts"][0]["labels"]["case_id"] == case_a
    # a link the analyst can open, under the worker's own URL (no receivers file names one): it was ""
    link = payload["alerts"][0]["generatorURL"]
    assert payload["externalURL"] and link == f"{payload['externalURL'].rstrip('/')}/anomalies/{earnings['anomaly_id']}"

    # Assigned, not yet acknowledged: once the writer's saved state holds both assignments and an
    # empty outbox (its events sent), kill it without any chance to clean up.
    status, body, _ = call(first.web_port, "GET", "/cases", ALICE_TOKEN)
    assert status == 200 and [c["case_id"] for c in body["cases"]] == [case_a]
    wait_for(lambda: saved_and_sent(kafka, bootstrap, {case_a: "assigned", case_b: "assigned"}), WAIT,
             "the scheduler state with both assignments and an empty outbox")
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()

    second = start_worker_process(**env)
    wait_for(lambda: call(second.web_port, "GET", "/cases", ALICE_TOKEN)[0] == 200, WAIT, "the new worker to own the state")
    status, body, _ = call(second.web_port, "GET", "/cases", ALICE_TOKEN)
    assert [(c["case_id"], c["status"], c["analyst"]) for c in body["cases"]] == [(case_a, "assigned", "alice")]

    status, body, _ = call(second.web_port, "POST", f"/cases/{case_a}/ack", ALICE_TOKEN)
    assert status == 200, body
    assert body["case"]["status"] == "acknowledged" and names(body["events"]) == ["acknowledged"]
    labels = [{"id": earnings["sample_ids"][0], "topic": "Earnings", "sentiment": "negative"}]
    status, body, _ = call(second.web_port, "POST", f"/cases/{case_a}/resolve", ALICE_TOKEN,
                           {"outcome": "confirmed: guidance cut", "labels": labels})
    assert status == 200, body
    assert body["case"]["status"] == "resolved"

    # An action nobody signed (anyone writing to cases.actions): not applied, kept as a dead letter.
    forged = {"action": "reassign", "case_id": case_b, "analyst": "mallory", "action_id": "forged-1"}
    kafka.produce(bootstrap, settings.topic_case_actions, [forged], [case_b])
    dead = kafka.consume(bootstrap, [settings.topic_deadletter],
                         lambda s: any(d.get("stage") == "scheduler" for d in s[settings.topic_deadletter]), WAIT)
    [letter] = [d for d in dead[settings.topic_deadletter] if d.get("stage") == "scheduler"]
    assert (letter["reason"], letter["error"]) == ("rejected_action", "case action not applied: unsigned")

    events_a = case_events(kafka, bootstrap, case_a, lambda es: "resolved" in names(es))
    assert names(events_a) == ["created", "assigned", "acknowledged", "resolved"]  # not re-created or re-assigned
    topic = settings.topic_feedback
    seen = kafka.consume(bootstrap, [topic], lambda s: any(r.get("case_id") == case_a for r in s[topic]), WAIT)
    [feedback] = [r for r in seen[topic] if r["case_id"] == case_a]
    assert feedback == {"id": labels[0]["id"], "text": earnings["headlines"][0], "topic": "Earnings",
                        "sentiment": "negative", "case_id": case_a, "analyst": "alice", "at": feedback["at"]}

    export = tmp_path / "feedback.jsonl"
    done = subprocess.run([sys.executable, "-m", "streams.cli", "feedback", "export", str(export),
                           "--broker", embedded_broker.url], check=False, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    examples = load_file(export)
    assert any(e.text == earnings["headlines"][0] and e.topic == "Earnings" and e.sentiment == "negative"
               for e in examples)

    check_api_refusals(second.web_port, case_a, case_b)

    roster.write_text(roster.read_text().replace("capacity: 3", "capacity: lots", 1))  # a bad edit
    wait_for(lambda: "roster reload rejected" in second.log.read_text(), WAIT, "the bad roster to be reported")
    # Several ticks later (each one an inbox record the writer handles, then commits): reported
    # once, and the old roster stays in force.
    later = kafka.end_offsets(bootstrap, INBOX) + 3
    wait_for(lambda: kafka.committed(bootstrap, GROUP, INBOX) >= later, WAIT, "three more scheduler ticks")
    assert second.log.read_text().count("roster reload rejected") == 1
    assert call(second.web_port, "GET", "/cases", BOB_TOKEN)[0] == 200
    logs = first.log.read_text() + second.log.read_text()
    for token in (ALICE_TOKEN, BOB_TOKEN, "wrong-token"):
        assert token not in logs


def check_api_refusals(port: int, resolved: str, bobs: str) -> None:
    assert call(port, "GET", "/cases")[0] == 401
    assert call(port, "GET", "/cases", "wrong-token")[0] == 401
    # Another analyst's case answers as a missing one: case ids cannot be probed.
    other, missing = call(port, "POST", f"/cases/{bobs}/ack", ALICE_TOKEN), call(port, "POST", "/cases/case-nope/ack", ALICE_TOKEN)
    assert (other[0], other[1]["error"].replace(bobs, "X")) == (missing[0], missing[1]["error"].replace("case-nope", "X"))
    assert missing[0] == 404
    assert call(port, "POST", f"/cases/{resolved}/ack", ALICE_TOKEN)[0] == 409
    assert call(port, "POST", f"/cases/{bobs}/resolve", BOB_TOKEN, b"{not json")[0] == 400
    assert call(port, "POST", f"/cases/{bobs}/resolve", BOB_TOKEN, {"labels": [{"id": "not-a-headline"}]})[0] == 400
    assert call(port, "POST", f"/cases/{bobs}/resolve", BOB_TOKEN, b"x" * (64 * 1024 + 1))[0] == 413
    status, body, _ = call(port, "GET", "/cases", BOB_TOKEN)
    assert status == 200 and [c["case_id"] for c in body["cases"]] == [bobs]

    statuses = [call(port, "GET", "/cases", "wrong-token", source="127.0.0.2")[0] for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    status, _, headers = call(port, "GET", "/cases", "another-wrong-token", source="127.0.0.2")
    assert status == 429 and int(headers["Retry-After"]) > 0  # the guessing address is slowed, for a while
    # ...but a valid token from that same address (a shared proxy) still passes (issue 17)
    assert call(port, "GET", "/cases", BOB_TOKEN, source="127.0.0.2")[0] == 200
    assert call(port, "GET", "/cases", BOB_TOKEN)[0] == 200  # other addresses are unaffected

    # Guessing case ids is throttled per analyst (two 404s above, 18 more, then 429), while the
    # analyst's own cases still answer as before.
    guesses = [call(port, "POST", f"/cases/case-{n:012x}/ack", ALICE_TOKEN)[0] for n in range(22)]
    assert guesses[:18] == [404] * 18 and guesses[18:] == [429] * 4
    assert call(port, "POST", f"/cases/{resolved}/ack", ALICE_TOKEN)[0] == 409
