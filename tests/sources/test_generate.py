from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.cli import main
from streams.sources import catalog
from streams.sources import generate as gen
from streams.sources.generate import (
    EPOCH,
    MALFORMED_KINDS,
    OVERSIZED_BYTES,
    Surge,
    generate,
    malformed,
    malformed_with_kinds,
    parse_surge,
)
from streams.validation import MAX_FUTURE_SKEW, MAX_ID_CHARS

COMPANY_NAMES = {c.ticker: c.name for c in catalog.COMPANIES + catalog.IPO_CANDIDATES}


def records(count: int, rate: float = 5.0, seed: int = 1, surges: tuple[Surge, ...] = ()) -> list[gen.GeneratedItem]:
    return list(generate(count, rate, seed, surges))


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    assert records(300, seed=7) == records(300, seed=7)
    assert [i.record["headline"] for i in records(300, seed=7)] != [i.record["headline"] for i in records(300, seed=8)]


def test_a_later_run_is_new_news_with_new_ids() -> None:
    first = [i.record for i in generate(50, 5.0, 7)]
    later = [i.record for i in generate(50, 5.0, 7, start=EPOCH + timedelta(hours=1))]
    assert [r["headline"] for r in later] == [r["headline"] for r in first]
    assert {r["id"] for r in later}.isdisjoint(r["id"] for r in first)
    with pytest.raises(ValueError, match="timezone-aware"):
        next(generate(1, 5.0, 7, start=datetime(2024, 1, 2)))


def test_records_follow_the_news_raw_contract() -> None:
    items = records(3000)
    ids = [i.record["id"] for i in items]
    assert len(set(ids)) == len(ids) and ids[:2] == ["gen-1-1704205800-0", "gen-1-1704205800-1"]
    for item in items:
        r = item.record
        assert set(r) <= {"id", "source", "headline", "body", "url", "published_at", "tickers", "lang", "style"}
        assert r.get("style", "newswire") == ("social" if r["headline"].startswith("$") else "newswire")
        assert r["source"] and r["headline"] and "{" not in r["headline"] and "{" not in r.get("body", "")
        assert re.fullmatch(r"https://[a-z.]+\.example/\S+", r["url"])
        assert datetime.fromisoformat(r["published_at"]).tzinfo == UTC
        for ticker in r.get("tickers", []):  # tickers exactly when a company is named, by name or cashtag
            assert f"${ticker}" in r["headline"] or COMPANY_NAMES[ticker] in r["headline"]
        if "tickers" not in r:
            assert not any(name in r["headline"] for name in COMPANY_NAMES.values())
    styles = {i.record["headline"].startswith("$") for i in items}
    assert styles == {True, False}  # both wire headlines and cashtag posts
    assert any("body" in i.record for i in items)


def test_long_stream_covers_every_topic_and_sentiment() -> None:
    items = records(10_000)
    assert {(i.topic, i.sentiment) for i in items} == {(t, s) for t in catalog.TOPICS for s in catalog.SENTIMENTS}
    assert len(catalog.TOPICS) == 20 and set(catalog.TEMPLATES) == set(catalog.TOPICS)


def test_rate_is_honoured_in_simulated_time() -> None:
    items = records(8000, rate=4.0)
    offsets = [i.offset for i in items]
    assert offsets == sorted(offsets)
    assert 8000 / 4.0 * 0.95 < offsets[-1] < 8000 / 4.0 * 1.05  # about 4.5 standard deviations either side
    for item in items[::500]:  # published_at is the offset from the epoch, to the millisecond
        published = datetime.fromisoformat(item.record["published_at"])
        assert abs(published - (EPOCH + timedelta(seconds=item.offset))) < timedelta(milliseconds=1)


def test_surge_adds_planted_records_inside_its_window_and_leaves_background_alone() -> None:
    surge = Surge(topic="IPO", start=100.0, duration=50.0, rate=3.0, sentiment="positive")
    plain = records(2000, rate=2.0)
    planted = records(2000, rate=2.0, surges=(surge,))

    extra = [i for i in planted if i.surge]
    assert 100 <= len(extra) <= 200  # 150 expected
    assert all(100.0 <= i.offset < 150.0 for i in extra)
    assert {(i.topic, i.sentiment) for i in extra} == {("IPO", "positive")}
    background = [i for i in planted if not i.surge]
    assert [_content(i) for i in background] == [_content(i) for i in plain[: len(background)]]


def _content(item: gen.GeneratedItem) -> tuple[dict, float]:
    """What a surge must not disturb: ids and URLs carry the running count, so they shift."""
    return {k: v for k, v in item.record.items() if k not in ("id", "url")}, item.offset


def test_ticker_surge_names_the_ticker_and_counts_towards_total() -> None:
    surge = parse_surge("topic=Earnings,start=0s,duration=1m,rate=10/s,ticker=acme")
    items = records(400, rate=1.0, surges=(surge,))
    extra = [i for i in items if i.surge]
    assert len(items) == 400 and len(extra) > 300
    assert all("ACME" in i.record["tickers"] and i.sentiment == "negative" for i in extra)
    unknown = parse_surge("topic=Stock Movement,start=0s,duration=10s,rate=5/s,ticker=ZZTOP")
    assert all("ZZTOP" in i.record["tickers"] for i in records(40, surges=(unknown,)) if i.surge)


def test_parse_surge_reads_units() -> None:
    assert parse_surge("topic=earnings,start=10m,duration=5m,rate=2/s") == Surge("Earnings", 600.0, 300.0, 2.0)
    surge = parse_surge("topic=Fed | Central Banks, start=90, duration=1.5h, rate=30/m, sentiment=Positive")
    assert surge == Surge("Fed | Central Banks", 90.0, 5400.0, 0.5, "positive")


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("topic=Earnings,start=10m,duration=5m", "missing rate"),
        ("topic=Earnings,start=10m,duration=5x,rate=2/s", "bad duration '5x'"),
        ("topic=Earnings,start=10m,duration=5m,rate=fast", "bad rate 'fast'"),
        ("topic=Weather,start=10m,duration=5m,rate=2/s", "unknown topic 'Weather'"),
        ("topic=Earnings,start=10m,duration=5m,rate=2/s,sentiment=angry", "unknown sentiment 'angry'"),
        ("topic=Earnings,start=10m,duration=5m,rate=2/s,colour=red", "unknown field 'colour'"),
        ("topic=Earnings,start=10m,duration=0s,rate=2/s", "duration and rate > 0"),
        ("topic=Macro,start=0s,duration=5m,rate=2/s,ticker=ACME", "Macro has no negative headlines about a company"),
        ("Earnings", "'Earnings' is not name=value"),
    ],
)
def test_parse_surge_errors_name_the_bad_part_and_the_form(spec: str, names: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_surge(spec)
    message = str(error.value)
    assert names in message and "expected topic=Earnings,start=10m" in message and "\n" not in message


def test_malformed_yields_every_kind_each_really_broken() -> None:
    pairs = list(malformed_with_kinds(30, seed=3))
    assert [kind for kind, _ in pairs[:10]] == list(MALFORMED_KINDS)
    assert [value for _, value in pairs] == list(malformed(30, seed=3))
    for kind, value in pairs:
        assert _really_broken(kind, value), (kind, value[:100])


def _really_broken(kind: str, value: bytes) -> bool:
    if kind == "broken_json":
        try:
            json.loads(value)
        except ValueError:
            return True
        return False
    if kind == "invalid_utf8":
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False
    parsed = json.loads(value)
    if kind == "not_an_object":
        return not isinstance(parsed, dict)
    headline, body = parsed.get("headline"), parsed.get("body")
    if kind == "missing_text":
        return headline is None and body is None
    if kind == "empty_text":
        return not headline and not (body or "").strip()
    if kind == "headline_not_string":
        return isinstance(headline, int)
    if kind == "body_not_string":
        return isinstance(parsed.get("body"), dict) and headline is None
    if kind == "oversized":
        return len(value) > OVERSIZED_BYTES
    if kind == "overlong_id":
        return len(parsed["id"]) > MAX_ID_CHARS
    if kind == "control_chars_only":
        return bool(headline) and not (headline + body).strip("\x00\x01\x07\x1b\x7f\u200b\t\r\n ")
    raise AssertionError(f"untested kind {kind}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="finsentry")
    gen.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_writes_the_generated_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "news.jsonl"
    surge = "topic=Earnings,start=0s,duration=10s,rate=5/s"
    args = parse(
        ["generate", "--count", "60", "--rate", "3", "--seed", "4", "--start", "2024-01-02T14:30:00Z"]
        + ["--surge", surge, "-o", str(out)]
    )
    assert args.handler(args) == 0
    expected = [i.record for i in generate(60, 3.0, 4, [parse_surge(surge)], EPOCH)]
    assert [json.loads(line) for line in out.read_text().splitlines()] == expected
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    planted = sum(1 for i in generate(60, 3.0, 4, [parse_surge(surge)], EPOCH) if i.surge)
    assert summary.startswith(f"generate: 60 records ({planted} surge) in ")


def test_a_surge_after_the_stream_ends_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # README's old example: 1,000 records at 5/s span 200 s, so a surge at 10 minutes never came.
    argv = ["generate", "--count", "1000", "--rate", "5", "--surge", "topic=Earnings,start=10m,duration=5m,rate=2/s",
            "-o", str(tmp_path / "news.jsonl")]
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()
    assert len(last) == 1 and "the surge starting at 600s comes after the stream ends" in last[0]
    assert "span 200 simulated seconds" in last[0] and not (tmp_path / "news.jsonl").exists()


def test_without_start_a_stream_sent_at_once_ends_now(tmp_path: Path) -> None:
    """Sent at once, a stream published from now on would lie in the future, where validation clamps it
    to the receive time and flattens its surges; by default it ends now instead."""
    out = tmp_path / "news.jsonl"
    before = datetime.now(UTC)
    assert main(["generate", "--count", "600", "--rate", "1", "--seed", "2", "-o", str(out)]) == 0
    times = [datetime.fromisoformat(json.loads(line)["published_at"]) for line in out.read_text().splitlines()]
    assert before - timedelta(seconds=601) <= min(times) <= before - timedelta(seconds=590)
    # Poisson arrivals end near the span, not on it: within the validator's 300 s of future skew.
    assert max(times) <= datetime.now(UTC) + timedelta(seconds=MAX_FUTURE_SKEW)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--count", "0", "-o", "x"], "argument --count: '0' must be a finite number greater than 0"),
        (["--rate", "nan", "-o", "x"], "argument --rate: 'nan' must be a finite number greater than 0"),
        (["--rate", "inf", "-o", "x"], "argument --rate: 'inf' must be a finite number greater than 0"),
        (["--rate", "fast", "-o", "x"], "argument --rate: 'fast' is not a number"),
        (["--surge", "topic=Earnings", "-o", "x"], "argument --surge: bad surge 'topic=Earnings': missing"),
        (["--start", "tuesday", "-o", "x"], "argument --start: 'tuesday' is not an ISO-8601 time"),
        ([], "one of the arguments -o/--output --to-kafka is required"),
        (["-o", "x", "--to-kafka"], "not allowed with argument"),
        (["--to-kafka", "--broker", "http://h:1"], "argument --broker: bad broker address 'http://h:1'"),
    ],
)
def test_cli_argument_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(["generate", *argv])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in last


def test_cli_reads_broker_and_topic_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENTRY_BROKER", "kafka://k1:9092,kafka://k2:9092")
    monkeypatch.setenv("FINSENTRY_TOPIC_RAW", "news.test")
    args = parse(["generate", "--to-kafka"])
    assert (args.broker, args.topic) == ("kafka://k1:9092,kafka://k2:9092", "news.test")
    monkeypatch.delenv("FINSENTRY_BROKER")
    monkeypatch.delenv("FINSENTRY_TOPIC_RAW")
    args = parse(["generate", "--to-kafka"])
    assert (args.broker, args.topic) == ("kafka://127.0.0.1:9092", "news.raw")
