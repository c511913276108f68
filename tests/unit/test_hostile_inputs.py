"""Every parser that reads outside data, fed hostile input: each ends accepted, or refused with a
reason (a rejection, a one-line error, a 4xx body), never an unhandled exception.

The validator's plain any-bytes and any-object properties live in test_validation.py; here are the
shapes that broke parsers before: deep nesting, giant fields, control characters, wrong types.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.data import DataError, load_file
from scheduler.roster import RosterError, load_roster, parse_roster
from scheduler.tokens import hash_token
from streams.cli import main
from streams.commands.model import read_texts
from streams.deadletter import REASONS, dead_letter
from streams.sources.scrape import SeenStore, poll_once
from streams.validation import MAX_RECORD_BYTES, Rejection, Story, validate
from streams.views.cases import action_from_body
from streams.views.http import BadRequest
from streams.views.silences import silence_from_body

NOW = 1_800_000_000.0
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def deep(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + b"1" + closer * depth


# Values that are not what a field expects: every JSON type, huge, control characters, lone surrogates.
weird_text = st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Lu", "Ll", "Nd", "So"]), max_size=60)
weird_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), weird_text,
                        st.lists(weird_text, max_size=4), st.dictionaries(weird_text, weird_text, max_size=3),
                        st.integers(1_001, 70_000).map(lambda n: "x" * n))
deep_json = st.tuples(st.integers(500, 30_000), st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")])).map(
    lambda t: deep(t[0], *t[1]))
# Python refuses to read an integer of more than 4,300 digits (a ValueError, not a JSONDecodeError)
long_number = st.integers(4_301, 6_000).map(lambda n: b'{"headline": "Contoso", "text": "Contoso", "n": ' + b"7" * n + b"}")
hostile_line = st.one_of(st.binary(max_size=300), deep_json, long_number, weird_text.map(str.encode),
                         st.dictionaries(st.sampled_from(["id", "headline", "body", "text", "topic", "tickers",
                                                          "published_at", "url", "sentiment"]), weird_value,
                                         max_size=6).map(lambda d: json.dumps(d).encode()))


def check_story_or_rejection(result: Story | Rejection) -> None:
    if isinstance(result, Rejection):
        assert result.reason in REASONS and result.message
    else:
        json.dumps(result.to_json())  # it must travel on news.clean
        assert result.id and (result.headline or result.body)


@FUZZ
@given(raw=deep_json)
def test_validator_deep_json(raw: bytes) -> None:
    result = validate(raw, NOW)
    assert isinstance(result, Rejection) and result.reason in REASONS  # parsed when shallow enough, or not


@FUZZ
@given(record=st.dictionaries(st.sampled_from(["id", "source", "headline", "body", "url", "published_at",
                                               "tickers", "lang"]), weird_value, max_size=8))
def test_validator_wrong_types_control_chars_and_giant_fields(record: dict) -> None:
    raw = json.dumps(record).encode()
    result = validate(raw, NOW)
    check_story_or_rejection(result)
    if len(raw) > MAX_RECORD_BYTES:
        assert isinstance(result, Rejection) and result.reason == "oversized"
    # whatever the verdict, the dead-letter record for these bytes can be written
    json.dumps(dead_letter("ingest", "x", "x", raw, "news.raw", 0, 0, NOW).to_json())


def write_lines(tmp_path: Path, name: str, lines: list[bytes]) -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@FUZZ
@given(lines=st.lists(hostile_line, min_size=1, max_size=5), ext=st.sampled_from([".jsonl", ".csv"]))
def test_produce_reports_every_bad_line_or_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            lines: list[bytes], ext: str) -> None:
    source = write_lines(tmp_path, "in" + ext, ([b"headline,tickers"] if ext == ".csv" else []) + lines)
    assert main(["produce", str(source), "-o", str(tmp_path / "out.jsonl")]) in (0, 1, 2)
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) <= 1


def test_an_integer_too_long_to_read_is_a_bad_line_in_every_reader(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_lines(tmp_path, "in.jsonl", [b'{"headline": "Contoso", "text": "Contoso", "n": ' + b"7" * 5000 + b"}",
                                                b'{"headline": "Fabrikam halts output", "text": "Fabrikam", "topic": "Macro"}'])
    assert main(["produce", str(source), "-o", str(tmp_path / "out.jsonl")]) == 0
    assert "line 1: skipped: not JSON (Exceeds the limit (4300 digits)" in capsys.readouterr().err
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1
    assert [text for _, text, _, _ in read_texts(str(source), "text")] == [None, "Fabrikam"]
    with pytest.raises(DataError, match="row 1: not JSON"):
        load_file(source)


@FUZZ
@given(lines=st.lists(hostile_line, min_size=1, max_size=5), ext=st.sampled_from([".jsonl", ".csv"]))
def test_classify_input_rows_are_read_or_refused(tmp_path: Path, lines: list[bytes], ext: str) -> None:
    source = write_lines(tmp_path, "in" + ext, ([b"text,id"] if ext == ".csv" else []) + lines)
    try:
        for _, text, row, _column in read_texts(str(source), "text"):
            assert text is None or isinstance(text, str)
            assert isinstance(row, dict)
    except (DataError, UnicodeDecodeError):  # run_classify turns the latter into a DataError too
        pass


@FUZZ
@given(lines=st.lists(hostile_line, min_size=1, max_size=5), ext=st.sampled_from([".jsonl", ".csv"]))
def test_train_files_load_or_fail_with_file_and_row(tmp_path: Path, lines: list[bytes], ext: str) -> None:
    source = write_lines(tmp_path, "in" + ext, ([b"text,topic"] if ext == ".csv" else []) + lines)
    try:
        examples = load_file(source)
    except DataError as exc:
        assert str(source) in str(exc)
    else:
        assert all(isinstance(e.text, str) and e.text.strip() for e in examples)


def test_giant_csv_field_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_lines(tmp_path, "in.csv", [b"headline,text", b'"' + b"a" * 200_000 + b'",x'])
    assert main(["produce", str(source), "-o", str(tmp_path / "out.jsonl")]) == 2
    assert "malformed CSV" in capsys.readouterr().err
    with pytest.raises(DataError, match="malformed CSV"):
        list(read_texts(str(source), "text"))


ROSTER_HEAD = "analysts:\n  - id: ana\n    token_hash: " + hash_token("t" * 24, n=16) + "\n"


@settings(FUZZ, max_examples=40)
@given(tail=st.one_of(weird_text, st.integers(100, 1_500).map(lambda n: "- " * n + "x"),
                      st.integers(100, 1_500).map(lambda n: "[" * n + "]" * n),
                      st.text(max_size=200)))
def test_roster_edits_are_parsed_or_located(tail: str) -> None:
    for text in (tail, ROSTER_HEAD + tail, ROSTER_HEAD + "    skills: " + tail):
        try:
            parse_roster(text)
        except RosterError as exc:
            assert str(exc)


def test_roster_file_that_is_not_utf8_is_a_roster_error(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_bytes(b"analysts:\n  - id: \xff\n")
    with pytest.raises(RosterError, match="not UTF-8"):
        load_roster(path)


@FUZZ
@given(body=st.one_of(hostile_line, st.just(deep(40_000)), st.binary(max_size=64)),
       verb=st.sampled_from(["ack", "resolve", "reassign"]))
def test_api_bodies_become_actions_or_400(body: bytes, verb: str) -> None:
    try:
        action = action_from_body(verb, "case-1", "ana", body)
    except BadRequest as exc:
        assert str(exc)
    else:
        assert action["action"] == verb and action["case_id"] == "case-1"
    try:
        silence_from_body(body, NOW)
    except BadRequest as exc:
        assert str(exc)


@pytest.mark.parametrize("body", [b'{"outcome": "\\ud800"}', b'{"labels": {"\\udc80": "x"}}', b'{"note": ["ok", "\\ud834"]}'])
def test_an_api_body_with_a_lone_surrogate_is_a_400_not_a_stored_case_page_that_fails(body: bytes) -> None:
    # the outcome was stored, and the console's case page then answered 500 (UnicodeEncodeError)
    with pytest.raises(BadRequest, match="lone surrogate"):
        action_from_body("resolve", "case-1", "ana", body)


FEED = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{feed_title}</title>
<language>{lang}</language><item><title>{title}</title><link>{link}</link><guid>{guid}</guid>
<pubDate>{date}</pubDate><description>{summary}</description></item></channel></rss>"""


def xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


@settings(FUZZ, max_examples=60)
@given(fields=st.fixed_dictionaries({name: weird_text for name in ("feed_title", "lang", "title", "link", "guid",
                                                                    "summary")}),
       date=st.one_of(weird_text, st.sampled_from(["Mon, 01 Jan 99999 00:00:00 GMT", "Tue, 31 Feb 2024 25:61:61 +9999",
                                                   "0000-00-00T00:00:00Z", "Sat, 01 Jan 0001 00:00:00 -2359"])),
       garbage=st.one_of(st.none(), st.binary(max_size=400)))
def test_any_feed_body_polls_to_records_or_a_logged_error(tmp_path: Path, fields: dict[str, str], date: str,
                                                          garbage: bytes | None) -> None:
    body = garbage if garbage is not None else FEED.format(date=xml_text(date), **{
        k: xml_text(v) for k, v in fields.items()}).encode("utf-8", "surrogatepass")
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)))
    emitted: list[dict] = []
    with SeenStore(tmp_path / "seen.db") as store:
        result = poll_once(client, "https://feed.example/rss", store, emitted.append, now=NOW)
    assert result.error is None or result.error
    for record in emitted:  # what the scraper emits is what ingest takes, or dead-letters with a reason
        check_story_or_rejection(validate(json.dumps(record).encode(), NOW))
