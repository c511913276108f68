"""The analyst console in a real browser (issue 19): Debian's headless Chromium driven by Selenium.

One worker with a two-analyst roster, and a real surge: generated news with a planted burst of
negative legal news goes to `news.raw`, and ingest, the shipped classifier, the monitor and the
scheduler make it alice's case (tests/surge.py, as the end-to-end test does). She signs in by way of
an alert link, sees the case arrive in her open queue without a reload, acknowledges it, corrects a
headline's sentiment, resolves it, and the case leaves her queue while the correction comes out of
`finsentry feedback export`. Planted anomalies add what a surge cannot: a machine-closed case with a
hostile headline and ticker (markup and script must show as text and nothing may run), one she
reopens, and bob's case (403). Screenshots go to $CI_ARTIFACTS/console (or tests/artifacts/console).
Skips with the reason when chromium, chromedriver, selenium or the shipped model is missing.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from surge import MONITOR_ENV, SURGE_SCOPE, SURGE_TOPIC, needs_shipped_model, send_paced, stories, surge_opened
from waiting import wait_for

from alerts.records import SEVERITIES
from models.data import load_file
from scheduler.tokens import hash_token
from streams.settings import Settings

pytestmark = [pytest.mark.integration, needs_shipped_model]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CI_ARTIFACTS") or ROOT / "tests" / "artifacts") / "console"
ALICE = "alice-" + uuid.uuid4().hex
BOB = "bob-" + uuid.uuid4().hex
WAIT = 300
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"
HOSTILE_TICKER = "ticker:<u>ACME</u><script>alert(4)</script>"
HOSTILE_NOTE = "<b>confirmed</b><script>alert(3)</script> guidance cut"
# Long enough for the browser flow on a loaded machine; expiry itself is checked against a clock in
# tests/unit/test_console.py, so no step here depends on how fast the machine is.
SESSION_SECONDS = 3600


def roster_yaml() -> str:
    week = "Mon-Sun 00:00-24:00 UTC"
    return f"""\
analysts:
  - id: alice
    name: Alice
    capacity: 3
    shifts: ["{week}"]
    skills: {{topics: {{"{SURGE_TOPIC}": 5, Credit: 3}}}}
    notify: http://127.0.0.1:9/alice
    token_hash: {hash_token(ALICE)}
  - id: bob
    name: Bob
    capacity: 3
    shifts: ["{week}"]
    skills: {{topics: {{Macro: 5}}}}
    notify: http://127.0.0.1:9/bob
    token_hash: {hash_token(BOB)}
"""


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def planted(scope: str, severity: str, headlines: list[str], now: datetime) -> dict:
    """An anomaly as the monitor writes it, for what a generated surge cannot make."""
    aid = uuid.uuid4().hex[:12]
    ids = [f"{aid}-s{i}" for i in range(len(headlines))]
    return {"anomaly_id": aid, "event": "open", "kind": "negative_surge", "scope": scope,
            "window_start": iso(now - timedelta(minutes=10)), "window_end": iso(now),
            "observed": 14, "expected": 2.5, "score": 7.5, "severity": severity,
            "sample_ids": ids, "headlines": headlines,
            "samples": [{"id": i, "headline": h, "sentiment": "negative", "confidence": 0.61 + 0.1 * n}
                        for n, (i, h) in enumerate(zip(ids, headlines, strict=True))]}


def http_call(port: int, method: str, path: str, cookie: str | None = None, body: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = cookie
    try:
        conn.request(method, path, body=body.encode() if body is not None else None, headers=headers)
        response = conn.getresponse()
        headers = {**dict(response.getheaders()), "cookies": response.msg.get_all("Set-Cookie") or []}
        return response.status, headers, response.read().decode()
    finally:
        conn.close()


def sign_in_http(port: int, token: str) -> str:
    """The session cookie ('name=value') an analyst gets from the sign-in form, without a browser."""
    status, headers, body = http_call(port, "GET", "/console/signin")
    assert status == 200
    pre = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
    pre_cookie = headers["Set-Cookie"].split(";")[0]
    status, headers, _ = http_call(port, "POST", "/console/signin", pre_cookie, f"csrf={pre}&token={token}")
    assert status == 303 and headers["Location"] == "/console/", (status, headers)
    [cookie] = [c for c in headers["cookies"] if c.startswith("finsentry_console=")]
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/console", "Max-Age="):
        assert attribute.lower() in cookie.lower(), cookie
    assert token not in cookie
    return cookie.split(";")[0]


@pytest.fixture
def browser():
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    import tempfile

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for downloads
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def shot(driver, name: str, width: int = 1280, height: int = 800) -> Path:
    """The whole page at this width (`name`.png) and the first screen alone (`name`-screen.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, height)
    driver.save_screenshot(str(ARTIFACTS / f"{name}-screen.png"))
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height, min(int(full) + 140, 6000)))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, height)
    return path


def pointer_off_rows(driver) -> None:
    """Rest the pointer on the queue's heading: the queue holds its rows still while it is over them."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    ActionChains(driver).move_to_element(driver.find_element(By.TAG_NAME, "h1")).perform()


def fresh(read):
    """`read()`, or None when the element it used was replaced meanwhile: by the queue's re-render, or by
    a new page loading after a form's post (chromedriver then raises stale-element, no-such-element or,
    mid-load, "Node with given id does not belong to the document"). Any other failure is raised."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException

    try:
        return read()
    except (StaleElementReferenceException, NoSuchElementException):
        return None
    except WebDriverException as error:
        if "does not belong to the document" in (error.msg or ""):
            return None
        raise


SENT_NOT_APPLIED = "Sent, not yet applied"  # the console's 202 page (streams/console/templates/pending.html)


def after_post(driver, destination: str) -> bool:
    """Wait for a console form's post to land on `destination`. The console waits OUTCOME_TIMEOUT for the
    scheduler to apply an action; on a machine loaded enough to take longer it answers its 202 page,
    which says the action was sent and to reload rather than resend. Do as it says: load `destination`;
    the checks after this wait for the action's state, as they would for a user reloading. True when
    the post itself landed there (the page before it is then one Back away)."""
    def landed() -> bool:  # the queue after an action carries its notice's id: /console/?done=<action id>
        return driver.current_url.split("?done=")[0] == destination

    wait_for(lambda: landed() or driver.title.startswith(SENT_NOT_APPLIED), WAIT,
             f"{destination} or the console's sent-not-applied page")
    if not landed():
        driver.get(destination)
        return False
    return True


def no_alert(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - raises when no dialog is open


def only_our_script(driver) -> None:
    """No script or image from the page's text made it into the DOM; nothing ran."""
    scripts = driver.execute_script("return Array.from(document.scripts).map(s => s.src)")
    assert scripts == [driver.current_url.split("/console/")[0] + "/console/static/console.js"], scripts
    assert driver.execute_script("return document.querySelectorAll('img').length") == 0
    no_alert(driver)


def test_console_in_a_browser(embedded_broker, start_worker_process, kafka, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    settings = Settings()
    bootstrap = embedded_broker.bootstrap
    roster = tmp_path / "roster.yaml"
    roster.write_text(roster_yaml())
    worker = start_worker_process(FINSENTRY_ROSTER=str(roster), FINSENTRY_SCHEDULER_TICK_SECONDS="1",
                                  FINSENTRY_CONSOLE_SESSION_SECONDS=str(SESSION_SECONDS), **MONITOR_ENV)
    port, base = worker.web_port, worker.url

    # Security without a browser: no cookie → sign-in; an early session to watch expire later.
    status, headers, _ = http_call(port, "GET", "/console/")
    assert status == 303 and headers["Location"] == "/console/signin"
    status, headers, _ = http_call(port, "GET", "/console/signin")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    early = sign_in_http(port, ALICE)
    status, _, body = http_call(port, "POST", "/console/signin", None, f"token={ALICE}")
    assert status == 403, "a sign-in without the form's CSRF cookie and field must be refused"
    body = http_call(port, "GET", "/console/signin?next=//evil.example/x")[2]
    assert 'name="next" value="/console/"' in body, "sign-in must not send anyone to another host"

    # What a surge cannot show: a machine-closed case with hostile text, one alice will reopen, bob's.
    now = datetime.now(UTC).replace(microsecond=0)
    machine = planted(HOSTILE_TICKER, "info", [HOSTILE, "<i>routine</i> filing"], now)  # below the threshold
    second = planted("topic:Credit", "info", ["Acme's rating outlook is affirmed"], now)  # not the surge's scope
    macro = planted("topic:Macro", "critical", ["Central bank surprises markets"], now)
    anomalies = [machine, second, macro]
    kafka.produce(bootstrap, settings.topic_anomalies, anomalies, [a["scope"] for a in anomalies])
    case_m, case_r, case_b = (f"case-{a['anomaly_id']}" for a in anomalies)
    wait_for(lambda: "Model confidence over its 2 headline(s)" in http_call(port, "GET", f"/console/cases/{case_m}",
                                                                         early)[2], WAIT,
             "the machine-closed case with its anomaly record")

    # An alert link, followed before signing in: sign-in first, then back to the anomaly's case page.
    # The token goes in a form field, never the URL.
    driver = browser
    driver.get(f"{base}/anomalies/{machine['anomaly_id']}")
    assert "/console/signin?next=" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(ALICE)
    driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
    wait_for(lambda: driver.current_url == f"{base}/console/cases/{case_m}", WAIT, "the case page after sign-in")
    assert ALICE not in driver.current_url and ALICE not in driver.page_source
    cookie = driver.get_cookie("finsentry_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # The machine-closed case: the rule, the threshold and the model's confidence, hostile text as text.
    text = driver.find_element(By.TAG_NAME, "body").text
    assert HOSTILE_TICKER in text and HOSTILE in text and "Why the machine closed it" in text
    assert "below the auto-resolve threshold warning" in text and "Model confidence over its 2 headline(s)" in text
    assert driver.title.startswith(case_m)
    only_our_script(driver)

    # Any analyst may reopen a machine-closed case; this one is in a topic of alice's, so it becomes hers.
    # Its anomaly reaches the scheduler apart from the first one's (another partition): wait for it too.
    wait_for(lambda: 'id="reopen"' in http_call(port, "GET", f"/console/cases/{case_r}", early)[2], WAIT,
             "the second machine-closed case")
    driver.get(f"{base}/console/cases/{case_r}")
    driver.find_element(By.ID, "reopen").click()
    if after_post(driver, f"{base}/console/"):  # the queue says where the reopened case went: to alice herself
        assert driver.find_element(By.CSS_SELECTOR, ".notice").text == f"Reopened {case_r}: now assigned to you."
    pointer_off_rows(driver)  # the click left the pointer where the button was: the rows refresh only without it
    wait_for(lambda: "assigned" in (fresh(lambda: driver.find_element(
        By.CSS_SELECTOR, f'tr[data-case="{case_r}"]').text) or ""), WAIT, "the reopened case in alice's queue")
    status, _, body = http_call(port, "GET", f"/console/cases/{case_r}", early)
    assert status == 200 and "reopened: by alice" in body and "Reopen for an analyst" not in body

    # The real surge, while the queue is open: its case appears by itself (short polling), no reload.
    driver.execute_script("document.body.dataset.loaded = 'once'")
    send_paced(kafka, bootstrap, stories(start=now - timedelta(minutes=25)))  # recent: the overview shows 24 h
    opened = surge_opened(kafka, bootstrap)
    assert opened["anomaly_id"] not in {a["anomaly_id"] for a in anomalies}, "the monitor's anomaly, not a planted one"
    case_a = f"case-{opened['anomaly_id']}"
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, f'tr[data-case="{case_a}"]'), WAIT,
             "the detected surge's case in alice's open queue")
    assert driver.execute_script("return document.body.dataset.loaded") == "once", "the page was reloaded"
    first_row: dict[str, str] = {}
    wait_for(lambda: first_row.update(text=fresh(lambda: driver.find_element(
        By.CSS_SELECTOR, f'tr[data-case="{case_a}"]').text) or "") or first_row["text"], WAIT, "the case's row")
    # The surge goes on while the queue shows it, so the monitor may have escalated it since it opened.
    now_or_higher = SEVERITIES[SEVERITIES.index(opened["severity"]):]
    assert SURGE_SCOPE in first_row["text"] and "assigned" in first_row["text"], first_row
    assert any(severity in first_row["text"].split() for severity in now_or_higher), first_row
    print("queue:", shot(driver, "queue"))
    shot(driver, "queue-phone", 390, 844)
    driver.set_window_size(1280, 800)

    # The pointer over the queue holds its rows still, so a click lands on the row it was aimed at
    # (a case sorting in above once moved another case's Resolve under it); they refresh once it leaves.
    from selenium.webdriver.common.action_chains import ActionChains

    def held() -> int:
        return int(driver.execute_script("return document.getElementById('queue-rows').dataset.held || 0"))

    def mark() -> str | None:
        return driver.execute_script("return document.getElementById('queue-rows').firstElementChild.dataset.mark")

    wait_for(lambda: fresh(lambda: ActionChains(driver).move_to_element(driver.find_element(
        By.CSS_SELECTOR, f'tr[data-case="{case_a}"]')).perform() or True), WAIT, "the pointer over the case's row")
    driver.execute_script("document.getElementById('queue-rows').firstElementChild.dataset.mark = 'kept'")
    before = held()
    wait_for(lambda: held() >= before + 2, WAIT, "two refreshes held back while the pointer is over the rows")
    assert mark() == "kept", "the rows were replaced under the pointer"
    pointer_off_rows(driver)
    wait_for(lambda: mark() is None, WAIT, "the rows refreshed once the pointer left them")

    # Acknowledge in one click. The queue re-renders its rows every few seconds, so an element found
    # a moment ago may be gone: find the button when clicking, and read the row when checking.
    wait_for(lambda: fresh(lambda: driver.find_element(By.CSS_SELECTOR, f'tr[data-case="{case_a}"]').find_element(
        By.XPATH, ".//button[normalize-space()='Acknowledge']").click() or True), WAIT, "the Acknowledge click")
    after_post(driver, f"{base}/console/")
    wait_for(lambda: "acknowledged" in (fresh(lambda: driver.find_element(
        By.CSS_SELECTOR, f'tr[data-case="{case_a}"]').text) or ""), WAIT, "the case acknowledged")

    # The case page, reached as an alert link is: the anomaly, the chart with its window, the headlines.
    driver.get(f"{base}/anomalies/{opened['anomaly_id']}")
    wait_for(lambda: driver.current_url == f"{base}/console/cases/{case_a}", WAIT, "the alert link's case page")
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "At its worst" in body and "Severity history" in body and SURGE_SCOPE in body
    assert driver.find_elements(By.CSS_SELECTOR, "svg.chart .anomaly-window")
    assert driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline"), "the scored stories' sentiment line"
    story, headline = opened["sample_ids"][0], opened["headlines"][0]
    assert headline in driver.find_element(By.CSS_SELECTOR, f'tr[data-story="{story}"] td.headline').text
    only_our_script(driver)

    # Correct a headline's sentiment to positive (inline), then resolve with a marked-up note.
    form = driver.find_element(By.CSS_SELECTOR, f'tr[data-story="{story}"] form.label')
    Select(form.find_element(By.NAME, "sentiment")).select_by_value("positive")
    form.find_element(By.TAG_NAME, "button").click()
    after_post(driver, f"{base}/console/cases/{case_a}")
    # The click posts the form and the case page loads again: a row found on the old page goes stale.
    # The case page does not refresh itself: reload it until the correction shows.
    wait_for(lambda: "→ positive" in (fresh(lambda: driver.find_element(
        By.CSS_SELECTOR, f'tr[data-story="{story}"]').text) or "") or driver.refresh(), WAIT,
        "the correction shown on the case page", every=2)
    print("case:", shot(driver, "case"))
    shot(driver, "case-phone", 390, 844)
    driver.set_window_size(1280, 800)
    driver.find_element(By.ID, "outcome").send_keys(HOSTILE_NOTE)
    driver.find_element(By.ID, "resolve").click()
    direct = after_post(driver, f"{base}/console/")
    wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, f'tr[data-case="{case_a}"]'), WAIT,
             "the resolved case gone from the queue (it refreshes itself)")

    # Back to the case page: fetched again, not restored from the browser's memory, where it still
    # offered Resolve on a case that was no longer the analyst's. (After the 202 page, Back leads there.)
    if direct:
        driver.back()
        wait_for(lambda: driver.current_url.endswith(f"/console/cases/{case_a}")
                 and not driver.find_elements(By.ID, "resolve"), WAIT, "the case page after Back, as it is now",
                 every=1)

    # The resolved case shows the note as text.
    driver.get(f"{base}/console/cases/{case_a}")
    assert HOSTILE_NOTE in driver.find_element(By.TAG_NAME, "body").text
    only_our_script(driver)

    # Another analyst's case: a 403 page; and reopening is only for what the machine closed.
    wait_for(lambda: http_call(port, "GET", f"/console/cases/{case_b}", early)[0] == 403, WAIT, "bob's case as 403")
    driver.get(f"{base}/console/cases/{case_b}")
    assert "Not your case" in driver.find_element(By.TAG_NAME, "h1").text

    # Overview: sentiment per topic and per ticker, open anomalies, team load.
    # The overview does not refresh itself: load it again until the surge's scope shows.
    wait_for(lambda: driver.get(f"{base}/console/overview") or SURGE_SCOPE in driver.find_element(
        By.TAG_NAME, "body").text, WAIT, "the topic trends", every=2)
    assert driver.find_elements(By.CSS_SELECTOR, "svg.spark polyline, svg.spark circle")
    assert driver.find_elements(By.CSS_SELECTOR, "meter")
    print("overview:", shot(driver, "overview"))
    only_our_script(driver)

    # A POST without the CSRF token is refused, with a session and all; the API's rules, as pages.
    status, _, body = http_call(port, "POST", f"/console/cases/{case_b}/ack", early, "")
    assert status == 403 and "CSRF" in body
    csrf = re.search(r'name="csrf" value="([^"]+)"', http_call(port, "GET", "/console/", early)[2]).group(1)
    # Refused before the engine is asked, whose answer would name bob's case's status ("it is resolved").
    for verb in ("ack", "reopen", "resolve"):
        status, _, body = http_call(port, "POST", f"/console/cases/{case_b}/{verb}", early, f"csrf={csrf}")
        assert status == 403 and f"{case_b} is not assigned to you" in body and "it is" not in body, (verb, body)

    # The correction is training data.
    export = tmp_path / "feedback.jsonl"

    def exported() -> bool:
        done = subprocess.run([sys.executable, "-m", "streams.cli", "feedback", "export", str(export),
                               "--broker", embedded_broker.url], check=False, capture_output=True, text=True,
                              timeout=WAIT)
        assert done.returncode == 0, done.stderr
        return any(e.text == headline and e.sentiment == "positive" for e in load_file(export))

    wait_for(exported, WAIT, "the correction in `finsentry feedback export`")

    # Sign out ends the session; the early session expires by itself.
    driver.get(base + "/console/")
    driver.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait_for(lambda: driver.current_url.endswith("/console/signin"), WAIT, "the sign-in page after sign-out")
    driver.get(base + "/console/")
    assert driver.current_url.endswith("/console/signin")
    assert http_call(port, "GET", "/console/", early)[0] == 200  # signing out one session leaves the others

    # A guesser is slowed (429 after five failures a minute, with no scrypt computed for it), while a
    # token this worker verified before still signs in from the same address.
    def attempt(token: str) -> tuple[int, str]:
        status, headers, body = http_call(port, "GET", "/console/signin")
        pre = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
        status, _, body = http_call(port, "POST", "/console/signin", headers["Set-Cookie"].split(";")[0],
                                    f"csrf={pre}&token={token}")
        return status, body

    statuses = [attempt(f"guess-{n}")[0] for n in range(6)]
    assert set(statuses) <= {401, 429} and statuses == sorted(statuses) and statuses[-1] == 429, statuses
    assert "Too many failed attempts" in attempt("guess-7")[1]
    assert sign_in_http(port, ALICE).startswith("finsentry_console=")
    assert ALICE not in worker.log.read_text() and BOB not in worker.log.read_text()
