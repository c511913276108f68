import re
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from scheduler_fixtures import ROSTER_YAML, roster, settled, write_roster

from scheduler import RosterError, RosterWatcher, Shift, parse_roster
from scheduler.tokens import TokenCache


def test_parses_analysts_skills_shifts_and_sectors():
    r = roster()
    assert list(r.analysts) == ["alice", "bob", "nina"]
    alice = r.analysts["alice"]
    assert alice.capacity == 2
    assert alice.skills == {"topic:Earnings": 5, "topic:Macro": 2, "sector:Technology": 4}
    assert r.skill_level(alice, "ticker:AAPL") == 4  # through the sector
    assert r.skill_level(r.analysts["nina"], "ticker:AAPL") == 5  # direct ticker beats nothing
    assert r.skill_level(r.analysts["bob"], "ticker:AAPL") == 0


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("capacity: 2\n    shifts", "capacity: lots\n    shifts", 6, "analysts[0].capacity", "integer"),
        ("Earnings: 2, Macro: 5", "Earnings: 7, Macro: 5", 18, "analysts[1].skills.topics.Earnings", "1..5"),
        ("09:00-18:00 America/New_York", "09:00-18:00 Mars/Olympus", 24, "analysts[2].shifts[0]", "time zone"),
        ("    token_env: FINSENTRY_TOKEN_BOB\n", "", 13, "analysts[1].token", "exactly one"),
        ("    name: Bob\n", "    name: Bob\n    nmae: Bob\n", 15, "analysts[1].nmae", "unknown field"),
        ("notify: https://hooks.example.com/nina", "notify: ftp://x", 28, "analysts[2].notify", "webhook"),
        # a typo no request can be made to: once copied into every case event, it crashed each delivery
        ("notify: https://hooks.example.com/nina", "notify: https://hooks.example.com:80x/nina", 28,
         "analysts[2].notify", "webhook"),
        ("notify: https://hooks.example.com/nina", "notify: 'https://[fd00::1/nina'", 28, "analysts[2].notify",
         "webhook"),
    ],
)
def test_errors_name_line_and_field(old, new, line, field, words):
    assert old in ROSTER_YAML
    with pytest.raises(RosterError) as info:
        parse_roster(ROSTER_YAML.replace(old, new), "roster.yaml")
    assert (info.value.line, info.value.field) == (line, field)
    assert str(info.value).startswith(f"roster.yaml:{line}: {field}: ")
    assert words in str(info.value)


def test_duplicate_analyst_and_syntax_errors_are_located():
    dup = ROSTER_YAML.replace("id: bob", "id: alice")
    with pytest.raises(RosterError, match=r"roster.yaml:13: analysts\[1\].id: duplicate id 'alice'"):
        parse_roster(dup, "roster.yaml")
    with pytest.raises(RosterError) as info:
        parse_roster("analysts:\n  - id: [unclosed\n", "roster.yaml")
    assert info.value.field == "(syntax)" and info.value.line >= 2


def test_shift_overnight_and_dst():
    night = Shift.parse("Mon-Fri 22:00-06:00 Europe/London")
    assert night.covers(datetime(2024, 3, 4, 23, 0, tzinfo=UTC))  # Monday night
    assert night.covers(datetime(2024, 3, 9, 5, 0, tzinfo=UTC))  # Saturday morning: Friday's shift
    assert not night.covers(datetime(2024, 3, 10, 5, 0, tzinfo=UTC))  # Sunday morning
    ny = Shift.parse("Mon-Fri 09:00-17:00 America/New_York")
    assert ny.covers(datetime(2024, 3, 8, 14, 0, tzinfo=UTC))  # EST: 09:00
    assert not ny.covers(datetime(2024, 3, 11, 12, 30, tzinfo=UTC))  # EDT from 10 March: 08:30
    assert ny.covers(datetime(2024, 3, 11, 13, 0, tzinfo=UTC))
    for bad in ("Mon-Fri 9-17 Europe/London", "Xyz 08:00-17:00 UTC", "Mon 08:00-08:00 UTC", "Mon 08:00-25:00 UTC"):
        with pytest.raises(ValueError):
            Shift.parse(bad)


def test_verify_token_by_hash_and_env(monkeypatch):
    r = roster()
    assert r.analysts["alice"].verify_token("test")
    assert not r.analysts["alice"].verify_token("tset")
    monkeypatch.delenv("FINSENTRY_TOKEN_BOB", raising=False)
    assert not r.analysts["bob"].verify_token("anything")
    monkeypatch.setenv("FINSENTRY_TOKEN_BOB", "s3cret")
    assert r.analysts["bob"].verify_token("s3cret") and not r.analysts["bob"].verify_token("s3cre")



def test_watcher_reloads_and_keeps_old_roster_on_bad_file(tmp_path):
    path = tmp_path / "roster.yaml"
    write_roster(path, ROSTER_YAML, 0)
    watcher = RosterWatcher(path, settle_seconds=0)
    assert watcher.poll() is None  # unchanged
    write_roster(path, ROSTER_YAML.replace("capacity: 3", "capacity: 4"), 10)
    reloaded = settled(watcher)
    assert reloaded is not None and reloaded.analysts["nina"].capacity == 4
    write_roster(path, ROSTER_YAML.replace("capacity: 3", "capacity: -1"), 20)
    assert settled(watcher) is None
    assert watcher.roster is reloaded  # the last good roster stays in force
    assert watcher.error is not None and watcher.error.field == "analysts[2].capacity" and watcher.error.line == 23
    write_roster(path, ROSTER_YAML, 30)
    assert settled(watcher).analysts["nina"].capacity == 3 and watcher.error is None
    path.unlink()
    assert settled(watcher) is None and watcher.roster.analysts["nina"].capacity == 3
    assert watcher.error.field == "(file)"


def test_a_roster_read_half_written_is_never_loaded(tmp_path):
    """An editor or `>` writing in place truncates first. Cut after a complete analyst, the file is a
    valid roster without the analysts after the cut; read at that moment, the scheduler would take
    their cases from them. The watcher reads a change only once the file has stayed the same for a
    poll, so the half is never loaded and the whole is."""
    path = tmp_path / "roster.yaml"
    write_roster(path, ROSTER_YAML, 0)
    watcher = RosterWatcher(path, settle_seconds=0)
    edited = ROSTER_YAML.replace("capacity: 3", "capacity: 4")
    half = edited[:edited.index("  - id: nina")]
    assert set(roster(half).analysts) < set(roster(edited).analysts)  # the half alone is a valid roster
    write_roster(path, half, 10)
    assert watcher.poll() is None  # the poll lands mid-write
    write_roster(path, edited, 11)  # the write completes before the next poll
    assert watcher.poll() is None and watcher.roster.analysts.keys() == roster(ROSTER_YAML).analysts.keys()
    reloaded = watcher.poll()
    assert reloaded is not None and reloaded.analysts["nina"].capacity == 4 and watcher.error is None


def test_a_roster_last_written_before_the_settle_time_is_read_at_the_first_look(tmp_path):
    """The case-webhooks agent looks at the file when a case event names an analyst: an analyst the
    scheduler already assigned (it read the edit ticks ago) must be known at that first look, or the
    event is signed with the shared secret, or not sent when there is none."""
    path = tmp_path / "roster.yaml"
    write_roster(path, ROSTER_YAML, -60)
    watcher = RosterWatcher(path, settle_seconds=2.0)
    write_roster(path, ROSTER_YAML.replace("capacity: 3", "capacity: 4"), -10)  # saved 10 s ago
    assert watcher.poll().analysts["nina"].capacity == 4


def test_a_write_that_begins_while_the_roster_is_read_is_not_taken(tmp_path, monkeypatch):
    """The review's race: the file settled, then a new in-place save truncated it while it was read.
    What was read (a valid roster without the analysts after the cut) is thrown away, and the file
    is read once it has settled again."""
    import scheduler.roster as roster_module

    path = tmp_path / "roster.yaml"
    write_roster(path, ROSTER_YAML, 0)
    watcher = RosterWatcher(path, settle_seconds=0)
    edited = ROSTER_YAML.replace("capacity: 3", "capacity: 4")
    write_roster(path, edited, 10)
    assert watcher.poll() is None  # seen; settled by the next poll
    real = roster_module.load_roster

    def read_as_a_save_begins(where):
        write_roster(path, edited[:edited.index("  - id: nina")], 11)  # truncated, half rewritten
        return real(where)

    monkeypatch.setattr(roster_module, "load_roster", read_as_a_save_begins)
    assert watcher.poll() is None and "nina" in watcher.roster.analysts
    monkeypatch.setattr(roster_module, "load_roster", real)
    write_roster(path, edited, 12)  # the save completes
    assert settled(watcher).analysts["nina"].capacity == 4


def test_a_watcher_polled_often_reads_a_change_only_once_it_has_settled(tmp_path, monkeypatch):
    """The case-webhooks agent polls at every lookup, many times a second under load: the file must
    have stayed the same for `settle_seconds`, not just between two polls."""
    import scheduler.roster as roster_module

    now = [100.0]
    monkeypatch.setattr(roster_module, "time", SimpleNamespace(monotonic=lambda: now[0], time=time.time))
    path = tmp_path / "roster.yaml"
    write_roster(path, ROSTER_YAML, 0)
    watcher = RosterWatcher(path, settle_seconds=2.0)
    write_roster(path, ROSTER_YAML.replace("capacity: 3", "capacity: 4"), 10)
    for _ in range(5):  # first seen at 100.3, the same for 1.2 s by the last of these polls
        now[0] += 0.3
        assert watcher.poll() is None
    now[0] += 0.9  # 2.1 s since first seen
    assert watcher.poll().analysts["nina"].capacity == 4


def test_bearer_check_compares_in_constant_time_against_every_analyst(monkeypatch):
    # Timing must not tell which analyst (or whether any) a token belongs to: every analyst's
    # reference goes through hmac.compare_digest, whether the token matches the first, a later one, or none.
    import hmac

    from scheduler import roster as roster_module
    from streams.views.cases import bearer_person

    r = roster()
    monkeypatch.setenv("FINSENTRY_TOKEN_BOB", "bob-secret")
    monkeypatch.setattr(roster_module.Path, "read_text", lambda self: "nina-secret\n")
    compared, real = [], hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(roster_module.hmac, "compare_digest", spy)
    for token, expected in (("test", "alice"), ("bob-secret", "bob"), ("nina-secret", "nina"), ("wrong", None)):
        compared.clear()
        monkeypatch.setattr(roster_module, "CACHE", TokenCache())  # a first sight: no entry known yet
        match = bearer_person(r, f"Bearer {token}")
        assert (match.id if match else None) == expected
        assert len(compared) == len(r.analysts), token  # no early exit on a match or a miss
    assert bearer_person(r, "Basic test") is None and bearer_person(r, None) is None


def test_ticker_names_are_upper_case_like_the_monitors_scopes():
    r = parse_roster(ROSTER_YAML.replace("Technology: [AAPL, MSFT]", "Technology: [aapl, Msft]")
                     .replace("tickers: {AAPL: 5}", "tickers: {aapl: 5, nvda: 2}"), "roster.yaml")
    assert r.sectors == {"AAPL": "Technology", "MSFT": "Technology"}
    assert r.analysts["nina"].skills == {"topic:Earnings": 4, "ticker:AAPL": 5, "ticker:NVDA": 2}
    assert r.skill_level(r.analysts["nina"], "ticker:NVDA") == 2  # `aapl: 4` never matched `ticker:AAPL`
    assert r.skill_level(r.analysts["alice"], "ticker:MSFT") == 4


def test_ticker_skills_are_written_as_stories_carry_them():
    """The review's finding: roster tickers were only upper-cased, while ingest keeps `BRK/B` as BRK.B
    and `LON:VOD` as VOD.L, so such skills were accepted and matched no case, ever."""
    r = parse_roster(ROSTER_YAML.replace("Technology: [AAPL, MSFT]", "Technology: [$aapl, NASDAQ:MSFT]")
                     .replace("tickers: {AAPL: 5}", "tickers: {BRK/B: 5, 'LON:VOD': 3, HKG:700: 2}"), "roster.yaml")
    assert r.sectors == {"AAPL": "Technology", "MSFT": "Technology"}
    assert r.analysts["nina"].skills == {"topic:Earnings": 4, "ticker:BRK.B": 5, "ticker:VOD.L": 3, "ticker:0700.HK": 2}


@pytest.mark.parametrize("written", ["XOM/GE", "TSE:7203", "not a ticker"])
def test_a_ticker_skill_no_story_could_carry_is_refused_at_its_line(written: str):
    with pytest.raises(RosterError, match=rf"roster.yaml:\d+: analysts\[2\].skills.tickers.{re.escape(written)}: "
                                          rf"'{re.escape(written)}' is no ticker as stories carry them"):
        parse_roster(ROSTER_YAML.replace("tickers: {AAPL: 5}", f"tickers: {{'{written}': 5}}"), "roster.yaml")


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        # a sector skill that names no sector matched no case, silently
        ("sectors: {Technology: 4}", "sectors: {Tech: 4}", 10, "analysts[0].skills.sectors.Tech",
         "no sector 'Tech' is defined (defined: Technology); add it under the top-level `sectors:`"),
        ("sectors:\n  Technology: [AAPL, MSFT]\n", "", 8, "analysts[0].skills.sectors.Technology",
         "(defined: none)"),
        # one ticker in two sectors: the last one won, silently
        ("Technology: [AAPL, MSFT]", "Technology: [AAPL, MSFT]\n  Hardware: [msft]", 3, "sectors.Hardware[0]",
         "MSFT is already listed under sector Technology (line 2); list each ticker under one sector"),
        ("tickers: {AAPL: 5}", "tickers: {AAPL: 5, aapl: 3}", 27, "analysts[2].skills.tickers.aapl",
         "ticker:AAPL is listed twice"),
        # never on shift: the analyst would never get a case
        ('shifts: ["Mon-Fri 08:00-17:00 Europe/London"]\n    skills:\n      topics: {Earnings: 2',
         "shifts: []\n    skills:\n      topics: {Earnings: 2", 16, "analysts[1].shifts",
         "at least one shift is required"),
        # two people, one token: the first match wins, so bob would act as nina
        ("token_file: /run/secrets/nina", "token_env: FINSENTRY_TOKEN_BOB", 29, "analysts[2].token_env",
         "the same token as analysts[1] (line 20); give each person their own token"),
        ("token_env: FINSENTRY_TOKEN_BOB", "token_file: /run/secrets/nina", 29, "analysts[2].token_file",
         "the same token as analysts[1] (line 20)"),
    ],
    ids=["undefined-sector", "no-sectors", "ticker-in-two-sectors", "ticker-twice", "no-shifts", "shared-env",
         "shared-file"],
)
def test_names_no_scope_can_match_and_shared_tokens_are_refused_at_their_line(old, new, line, field, words):
    assert old in ROSTER_YAML
    with pytest.raises(RosterError) as info:
        parse_roster(ROSTER_YAML.replace(old, new), "roster.yaml")
    assert str(info.value).startswith(f"roster.yaml:{line}: {field}: ")
    assert words in str(info.value)


def test_an_operator_may_not_share_an_analysts_token_hash():
    from scheduler_fixtures import TOKEN_HASH

    with pytest.raises(RosterError, match=r"^roster.yaml:32: operators\[0\].token_hash: the same token as "
                                          r"analysts\[0\] \(line 12\)"):
        parse_roster(ROSTER_YAML + f"operators:\n  - id: olga\n    token_hash: {TOKEN_HASH}\n", "roster.yaml")


def test_topic_skills_naming_no_topic_of_the_model_are_found():
    # `M&A: 3` where the model says `M&A | Investments` matched no case and nobody was told.
    r = parse_roster(ROSTER_YAML.replace("Earnings: 2, Macro: 5", "Earnings: 2, M&A: 5"), "roster.yaml")
    assert r.unknown_topics({"Earnings", "Macro", "M&A | Investments"}) == ["bob: M&A"]
    assert roster().unknown_topics({"Earnings", "Macro"}) == []
