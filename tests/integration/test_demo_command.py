"""`finsentry demo` run as the README says, in a pipe as a user's terminal log would take it: its
summary reports the anomalies the monitor opens and the cases they become (who holds each, or why
the machine closed it or why it waits), and with `--keep-running` it prints the console's address and
a demo analyst's sign-in that works, stays up, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from surge import needs_shipped_model
from waiting import wait_for

pytestmark = [pytest.mark.integration, needs_shipped_model]

FINSENTRY = Path(sys.executable).with_name("finsentry")
WAIT = 600  # seconds; the demo's own stream takes about a minute on a quiet machine
STOP_WAIT = 300  # seconds from Ctrl-C to the demo's exit, at most
BROKER = re.compile(r"^broker: (kafka://127\.0\.0\.1:\d+)  \(finsentry tail ")
CONSOLE = re.compile(r"^console: http://127\.0\.0\.1:(\d+)/console/  \(sign in as demo with the token (\S+)\)$")
# "   open    warning  negative surge   topic:Stock Movement  -> case-<id>: held by demo"
SUMMARY_ROW = re.compile(r"^   (open|update|resolve) +(info|warning|critical) +[a-z ]+? +(topic|ticker):.+ -> case-\w+: "
                         r"(held by demo|closed by the machine: .+|waiting: .+)$")


def post_form(port: int, path: str, body: str, cookie: str) -> tuple[int, str, list[str]]:
    """(status, Location, every Set-Cookie) of a form POST."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body.encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        response = conn.getresponse()
        return response.status, response.getheader("Location", ""), response.msg.get_all("Set-Cookie") or []
    finally:
        conn.close()


def get(port: int, path: str, cookie: str = "") -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        conn.close()


def test_the_demo_reports_anomalies_and_their_cases_and_keeps_the_console_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENTRY_")}
    demo = subprocess.Popen([str(FINSENTRY), "demo", "--keep-running"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in demo.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(CONSOLE.match(line) for line in lines) or demo.poll() is not None, WAIT,
                 "the demo's summary and console address")
        out = "\n".join(lines)
        assert demo.poll() is None, out
        # The live log: anomalies as they open, cases as the scheduler decides them.
        assert re.search(r"^  anomaly open +(info|warning|critical) ", out, re.MULTILINE), out
        assert re.search(r"^  case +case-\w+: (held by demo|closed by the machine: |waiting: )", out, re.MULTILINE), out
        # The summary: every anomaly with what its case became.
        rows = [line for line in lines if re.match(r"^   (open|update|resolve) ", line)]
        assert rows and all(SUMMARY_ROW.match(row) for row in rows), rows
        assert any(row.endswith("held by demo") for row in rows), out  # a topic anomaly: the demo analyst's case

        # The printed sign-in works: the token gets a session whose queue holds the case.
        port, token = next(m.groups() for line in lines if (m := CONSOLE.match(line)))
        status, headers, page = get(int(port), "/console/signin")
        assert status == 200
        pre = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        status, location, cookies = post_form(int(port), "/console/signin", f"csrf={pre}&token={token}",
                                              headers["set-cookie"].split(";")[0])
        assert status == 303 and location == "/console/", (status, location)
        [session] = [c.split(";")[0] for c in cookies if c.startswith("finsentry_console=")]
        status, _, queue = get(int(port), "/console/", session)
        held = [row.split(" -> ")[1].split(":")[0] for row in rows if row.endswith("held by demo")]
        assert status == 200 and any(f'data-case="{case}"' in queue for case in held), queue[-2000:]

        # The printed broker is the demo's: `finsentry tail` (and `feedback export`) read from it.
        [broker_url] = [m.group(1) for line in lines if (m := BROKER.match(line))]
        tailed = subprocess.run([str(FINSENTRY), "tail", "news.scored", "--count", "3", "--broker", broker_url],
                                capture_output=True, text=True, env=env, timeout=120, check=False)
        assert tailed.returncode == 0 and len(tailed.stdout.splitlines()) == 3, tailed.stderr
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            # Generous: on a loaded machine the worker's own graceful stop can take a while (the
            # demo gives it 20 s before a kill); a demo that never stops still fails, with its output.
            code = demo.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if demo.poll() is None:
                demo.kill()
        reader.join(10)
    out = "\n".join(lines)
    assert code is not None, f"the demo did not stop within {STOP_WAIT} s of Ctrl-C:\n" + out[-3000:]
    assert code == 0, out[-3000:]
    assert "stopping the worker, then the broker" in out and "all stories accounted for" in out
