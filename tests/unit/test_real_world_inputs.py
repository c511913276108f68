"""Issue #15's rows for news.raw values, spreadsheet files and the command line, one test per row.

news.raw rows go through `validate`, the function the ingest agent runs on every record (the same
rows also run through the agent on the embedded broker in tests/integration/test_real_world_values_on_broker.py);
file rows go through `finsentry produce` and `finsentry classify`; CLI rows through `finsentry`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams import broker
from streams.cli import main, worker_args
from streams.settings import Settings
from streams.validation import Story, unread_because, validate

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0


def ok(value: dict) -> Story:
    result = validate(json.dumps(value).encode(), NOW)
    assert isinstance(result, Story), result
    return result


# --- news.raw values -----------------------------------------------------------------------------


def test_toyota_on_the_tokyo_exchange_is_a_ticker() -> None:
    story = ok({"headline": "Toyota raises profit forecast", "tickers": ["7203.T"]})
    assert story.tickers == ["7203.T"]


def test_hong_kong_korean_and_share_class_tickers_are_accepted() -> None:
    story = ok({"headline": "Asia and Berkshire", "tickers": ["0700.HK", "005930.KS", "BRK/B", "SAP.DE", "^GSPC"]})
    assert story.tickers == ["0700.HK", "005930.KS", "BRK.B", "SAP.DE", "^GSPC"]
    assert story.dropped_tickers == []


def test_terminal_and_exchange_forms_of_a_ticker_are_the_ticker() -> None:
    story = ok({"headline": "Four desks, one name", "tickers": ["NASDAQ:AAPL", "AAPL US Equity", "VOD LN Equity",
                                                                 "brk/b", "AAPL/MSFT", "MSFT:US"]})
    # AAPL/MSFT once became the bogus AAPL.MSFT: a / is a share class only before one letter; only an
    # exchange's name is a prefix (MSFT:US is not the ticker US), and it is kept as the suffix (VOD.L)
    assert story.tickers == ["AAPL", "VOD.L", "BRK.B"] and story.dropped_tickers == ["AAPL/MSFT", "MSFT:US"]


def test_a_currency_cashtag_is_not_a_ticker() -> None:
    assert ok({"headline": "$USD weakens"}).tickers == []
    assert ok({"headline": "$USD weakens as $AAPL gains"}).tickers == ["AAPL"]


def test_an_unusable_ticker_is_dropped_and_the_story_kept() -> None:
    story = ok({"headline": "Acme", "tickers": ["ACME", "not a ticker"]})
    assert (story.tickers, story.dropped_tickers) == (["ACME"], ["NOT A TICKER"])


def test_an_rfc_2822_published_at_is_accepted() -> None:
    story = ok({"headline": "x", "published_at": "Tue, 10 Jun 2025 14:00:00 GMT"})
    assert (story.published_at, story.published_at_source) == ("2025-06-10T14:00:00.000Z", "source")


@pytest.mark.parametrize("stamp", [1_749_564_000, 1_749_564_000_000, 1_749_564_000_000_000,
                                   1_749_564_000_000_000_000, "1749564000", "1749564000000",
                                   "1749564000000000", "1749564000000000000", "1749564000.0"])
def test_epochs_in_any_unit_as_numbers_or_numeric_strings_are_accepted(stamp: int | str) -> None:
    assert ok({"headline": "x", "published_at": stamp}).published_at == "2025-06-10T14:00:00.000Z"


@pytest.mark.parametrize(("stamp", "at"), [("2026-03-04 09.30", "2026-03-04T09:30:00.000Z"),
                                          ("2026-03-04 23,59", "2026-03-04T23:59:00.000Z"),
                                          ("2026-03-04T14.05.07+01:00", "2026-03-04T13:05:07.000Z")])
def test_a_clock_written_with_dots_or_commas_is_read_as_a_clock(stamp: str, at: str) -> None:
    # datetime.fromisoformat read 09.30 as 09:00:00.300 and 23,59 as 23:00:00.590: up to an hour early
    story = ok({"headline": "Contoso opens its Lisbon plant", "published_at": stamp})
    assert (story.published_at, story.published_at_source) == (at, "source")


@pytest.mark.parametrize(("stamp", "why"), [
    ("1.77263E+12", "1.77263E+12 is in scientific notation and may have lost digits"),  # Excel's General format
    ("2026-03-04 14.5", "14.5 is no clock (HH.MM or HH.MM.SS); write the time as HH:MM"),  # 14:05 or 14:30?
    ("2026-03-04 09:30.5", "09:30.5 holds a fraction of a minute; write the time as HH:MM:SS")])
def test_a_time_that_cannot_be_read_exactly_gets_the_receive_time_and_says_why(stamp: str, why: str) -> None:
    # each was read as exact and wrong (52 minutes early for the epoch), with no warning
    assert ok({"headline": "Contoso opens its Lisbon plant", "published_at": stamp}).published_at_source == "received"
    assert why in unread_because(stamp, NOW)


def test_a_body_over_the_limit_is_cut_not_rejected() -> None:
    story = ok({"headline": "Annual report", "body": ("revenue rose in the quarter " * 1000)[:25_799]})
    assert story.truncated and len(story.body or "") <= 20_000


# --- files to `finsentry produce` ----------------------------------------------------------------


def produce(path: Path, tmp_path: Path) -> tuple[int, list[dict]]:
    """`finsentry produce FILE -o sent.jsonl`: the exit status and the records sent."""
    out = tmp_path / "sent.jsonl"
    code = main(["produce", str(path), "-o", str(out)])
    return code, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


EXCEL_ROWS = [["id", "headline", "tickers", "published_at"],
              ["x-1", "Acme beats estimates", "ACME", "2025-06-10T14:00:00Z"],
              ["x-2", "Globex slides, again", "GLBX;ACME", "Tue, 10 Jun 2025 14:05:00 GMT"],
              ["x-3", "Initech says\nmore later", "NaN", ""]]


def excel_csv(separator: str) -> bytes:
    def cell(text: str) -> str:
        return f'"{text}"' if any(c in text for c in (separator, "\n", '"', ";", ",")) else text

    lines = [separator.join(cell(c) for c in row) for row in EXCEL_ROWS]
    return "\ufeff".encode() + "\r\n".join(lines).encode("utf-8") + b"\r\n"


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_an_excel_csv_utf8_export_sends_every_row(tmp_path: Path, separator: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(excel_csv(separator))
    code, sent = produce(path, tmp_path)
    assert code == 0, capsys.readouterr().err
    assert [r["id"] for r in sent] == ["x-1", "x-2", "x-3"]
    assert sent[1]["tickers"] == ["GLBX", "ACME"]
    assert sent[2]["headline"] == "Initech says\nmore later"  # a quoted newline stays in its cell
    assert "tickers" not in sent[2] and "published_at" not in sent[2]  # NaN and empty cells are missing
    assert "sent 3 record(s), skipped 0" in capsys.readouterr().err


def test_a_one_column_file_keeps_the_commas_in_its_headlines(tmp_path: Path) -> None:
    path = tmp_path / "headlines.csv"
    path.write_text("headline\r\nAcme, Globex rise\r\n\"Fed holds, again\"\r\n", encoding="utf-8-sig")
    code, sent = produce(path, tmp_path)
    assert code == 0 and [r["headline"] for r in sent] == ["Acme, Globex rise", "Fed holds, again"]


def test_a_misnamed_column_is_one_line_naming_the_columns_found(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id;Headlines;tickers\r\nx-1;Acme beats;ACME\r\nx-2;Globex slides;GLBX\r\n", encoding="utf-8")
    assert main(["produce", str(path), "-o", str(tmp_path / "sent.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("finsentry: error: ")
    assert "semicolon separator" in err and "'id', 'Headlines', 'tickers'" in err  # as the file writes them


def test_usual_column_names_are_read_and_other_columns_named_once(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Title,Date,Symbol,Link,Sector,\nAcme beats,2025-06-10 14:00,ACME,https://w.example/a,Autos,\n"
                    "Globex slides,last Tuesday,GLBX,,Energy,\n", encoding="utf-8")
    code, sent = produce(path, tmp_path)
    assert code == 0
    assert sent[0] == {"headline": "Acme beats", "published_at": "2025-06-10 14:00", "tickers": ["ACME"],
                       "url": "https://w.example/a"}
    assert ingested_date(sent[0]) == ("2025-06-10T14:00:00.000Z", "source")
    assert ingested_date(sent[1])[1] == "received"  # "last Tuesday" is no date: kept, with the receive time
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 2 and "'Sector'" in warnings[0]  # the other: the date it could not read
    assert "1 published_at value(s) could not be read" in warnings[1]


def ingested_date(record: dict) -> tuple[str, str]:
    story = validate(json.dumps(record).encode(), NOW)
    assert isinstance(story, Story)
    return story.published_at, story.published_at_source


@pytest.mark.parametrize("stamp", [46356.5, "46356.5", "2026", 20261399])
def test_a_spreadsheets_number_in_the_date_column_is_not_taken_for_a_1970_date(stamp: float | str) -> None:
    # an Excel serial date or a year once became 1970-01-01..., marked as the story's own date
    assert ingested_date({"headline": "Contoso files late", "published_at": stamp})[1] == "received"


@pytest.mark.parametrize(("stamp", "expected"), [
    (20261130140500, "2026-11-30T14:05:00.000Z"), ("20261130140500", "2026-11-30T14:05:00.000Z"),  # no Unix time
    ("30/11/2026 14:05", "2026-11-30T14:05:00.000Z"),  # day first: 30 is no month
    ("11/30/2026 2:05 PM", "2026-11-30T14:05:00.000Z"),  # month first: 30 is no month
    ("03.11.2026 14:05", "2026-11-03T14:05:00.000Z"),  # dots: day first, as Europe writes it
    ("Nov 30, 2026 2:05 PM", "2026-11-30T14:05:00.000Z"), ("Monday, November 30, 2026 at 9:05 a.m. EST", "2026-11-30T14:05:00.000Z"),
    ("30 Nov 2026 14:05", "2026-11-30T14:05:00.000Z"), ("30-Nov-26 14:05", "2026-11-30T14:05:00.000Z"),
    ("Mon, 30 Nov 2026 16:05:00 GMT+2", "2026-11-30T14:05:00.000Z"), ("30 Nov 2026 19:35 UTC+05:30", "2026-11-30T14:05:00.000Z"),
    ("2026.11.30 14:05", "2026-11-30T14:05:00.000Z"), ("2026-11-30 2:05 PM", "2026-11-30T14:05:00.000Z"),
    # a zone written against the clock, as some feeds do: read before the written-date forms, and still
    ("30 Nov 2026 14:05:00Z", "2026-11-30T14:05:00.000Z"), ("Mon, 30 Nov 2026 9:05:00AMEST", "2026-11-30T14:05:00.000Z"),
])
def test_dates_as_desks_and_wires_write_them_are_the_storys_own(stamp: object, expected: str) -> None:
    # each was once unreadable, so a spreadsheet's backlog all landed at the moment it was sent
    assert ingested_date({"headline": "Contoso files late", "published_at": stamp}) == (expected, "source")


@pytest.mark.parametrize("stamp", ["03/11/2026", "32/11/2026", "13/13/2026", "30 Foo 2026", "30 Nov 2026 25:00",
                                   "Nov 30, 2026 GMT+15", "3 days ago"])
def test_a_date_whose_reading_is_not_certain_is_not_guessed(stamp: str) -> None:
    assert ingested_date({"headline": "Contoso files late", "published_at": stamp})[1] == "received"


def test_produce_says_which_dates_it_could_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "NEWS.CSV"  # Excel on Windows writes upper-case extensions too
    path.write_text("headline,published_at\nAdatum recalls heaters,03/11/2026 09:05\nFabrikam beats,"
                    "2025-06-10T14:00:00Z\n", encoding="utf-8")
    code, sent = produce(path, tmp_path)
    err = capsys.readouterr().err
    assert code == 0 and len(sent) == 2
    assert ("line 2: published_at '03/11/2026 09:05' could not be read (03/11/2026 could be day 3 of month 11 or day "
            "11 of month 3; write ISO 8601 (2026-11-03)); the receive time stands in") in err
    assert "1 published_at value(s) could not be read" in err and "line 3" not in err


def test_a_jsonl_file_with_a_byte_order_mark_sends_every_record(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": "j-1", "headline": "Acme beats"}\r\n{"id": "j-2", "headline": "Globex"}\r\n')
    code, sent = produce(path, tmp_path)
    assert code == 0 and [r["id"] for r in sent] == ["j-1", "j-2"]


def test_produce_runs_ingest_validation_on_the_bytes_it_sends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(json.dumps({"id": "big", "headline": "Acme", "body": "é" * 40_000}, ensure_ascii=False) + "\n"
                    + json.dumps({"id": "ok", "headline": "Globex"}) + "\n", encoding="utf-8")
    code, sent = produce(path, tmp_path)
    assert code == 0 and [r["id"] for r in sent] == ["ok"]
    for line in (tmp_path / "sent.jsonl").read_bytes().splitlines():
        assert isinstance(validate(line, time.time()), Story)
    assert "line 1: skipped: oversized" in capsys.readouterr().err


# --- `finsentry classify` ------------------------------------------------------------------------


def test_classify_reads_the_headline_of_generated_news_and_says_so(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    news, out = tmp_path / "news.jsonl", tmp_path / "scored.jsonl"
    assert main(["generate", "--count", "30", "--seed", "3", "-o", str(news)]) == 0
    assert main(["classify", str(news), str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 30 and all("topic" in r for r in rows)
    err = capsys.readouterr().err
    assert "classified 30, skipped 0" in err and "text from 'headline' (30)" in err


def test_classify_names_a_row_with_more_cells_than_the_header_instead_of_reading_half_a_headline(tmp_path: Path) -> None:
    news, out = tmp_path / "news.csv", tmp_path / "out.jsonl"
    news.write_text("Headline,Ticker\nContoso holds prices steady, signals patience,\nAdatum recalls heaters,ADTM\n",
                    encoding="utf-8")
    assert main(["classify", str(news), str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0] == {"line": 2, "error": "the row has 3 cells, the header 2: a headline with a comma must be in "
                                          "double quotes"}
    assert rows[1]["line"] == 3 and rows[1]["text"] == "Adatum recalls heaters"


def test_classify_with_nothing_to_classify_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    news = tmp_path / "empty.jsonl"
    news.write_text('{"id": "a", "source": "x"}\n{"id": "b"}\n')
    assert main(["classify", str(news), str(tmp_path / "out.jsonl")]) == 1
    assert "nothing classified" in capsys.readouterr().err


def test_classify_falls_back_to_the_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    news = tmp_path / "bodies.csv"
    news.write_text("id;body\r\n1;Acme shares fall after the results\r\n", encoding="utf-8-sig")
    assert main(["classify", str(news), str(tmp_path / "out.jsonl")]) == 0
    assert "text from 'body' (1)" in capsys.readouterr().err


def test_classify_reads_a_spreadsheets_headline_or_title_column_whatever_its_case(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "Headline,Ticker" once ended in "no 'text' or 'headline' or 'body' column", though produce read it
    for name, header in (("upper.csv", "Headline,Ticker"), ("title.csv", "Title,Ticker")):
        news = tmp_path / name
        news.write_text(f"{header}\r\nAdatum shares slump after recall,ADTM\r\n", encoding="utf-8")
        assert main(["classify", str(news), str(tmp_path / "out.jsonl")]) == 0
        assert f"text from '{header.split(',')[0]}' (1)" in capsys.readouterr().err


def test_classify_reads_excels_sep_line_and_json_keys_whatever_their_case(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # "no 'text' or 'headline' or 'title' or 'body' column (found 'sep=;')": every story of the file lost,
    # though produce sent it; and a JSON line's "Headline" skipped, though produce and the worker read it
    for name, raw in (("excel.csv", b"sep=;\r\nid;Headline;Tickers\r\ns1;Contoso beats estimates, again;CTSO\r\n"),
                      ("bom.csv", b"\xef\xbb\xbfsep=;\r\nid;Headline\r\ns1;Contoso beats estimates, again\r\n"),
                      ("keys.jsonl", b'{"id": "s1", "Headline": "Contoso beats estimates, again"}\n')):
        news, out = tmp_path / name, tmp_path / "out.jsonl"
        news.write_bytes(raw)
        assert main(["classify", str(news), str(out)]) == 0, capsys.readouterr().err
        [row] = [json.loads(line) for line in out.read_text().splitlines()]
        assert (row["line"], row["text"]) == (3 if name.endswith(".csv") else 1, "Contoso beats estimates, again")
        assert "text from 'Headline' (1)" in capsys.readouterr().err


# --- the command line ----------------------------------------------------------------------------


def finsentry(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FINSENTRY_")}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, cwd=ROOT, env={**clean, **(env or {})})


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("finsentry 0.")


def test_worker_help_needs_no_broker() -> None:
    nobody = f"kafka://127.0.0.1:{broker.free_port()}"
    started = time.monotonic()
    out = finsentry("worker", "--help", env={"FINSENTRY_BROKER": nobody, "FINSENTRY_BROKER_WAIT_SECONDS": "300"})
    assert out.returncode == 0, out.stderr
    assert "--loglevel" in out.stdout and "not reachable" not in out.stderr
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("argv", [["--bogus"], ["-l", "loud"], ["--web-port", "notaport"]])
def test_a_bad_worker_option_is_one_line_at_once_without_a_broker(argv: list[str]) -> None:
    nobody = f"kafka://127.0.0.1:{broker.free_port()}"
    out = finsentry("worker", *argv, env={"FINSENTRY_BROKER": nobody, "FINSENTRY_BROKER_WAIT_SECONDS": "300"})
    one_line_usage_error(out)
    assert "finsentry: error: worker: " in out.stderr and "not reachable" not in out.stderr
    if argv[0] == "-l":  # the spellings the README promises are named beside Faust's own
        assert "'loud' is not one of 'crit', 'error', 'warn', 'info', 'debug'" in out.stderr
        assert "finsentry also takes warning, critical," in out.stderr


@pytest.mark.parametrize("entry", [["-m", "streams.cli", "worker"], ["-m", "faust", "-A", "streams.worker", "worker"]])
def test_a_bad_broker_setting_is_one_line_from_either_entry_point(entry: list[str]) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FINSENTRY_")}
    out = subprocess.run([sys.executable, *entry, "-l", "info"], capture_output=True, text=True, check=False,
                         timeout=60, cwd=ROOT, env={**clean, "FINSENTRY_BROKER": "localhost:9092"})
    one_line_usage_error(out)
    assert "finsentry: error: setting broker (env FINSENTRY_BROKER): expected kafka://HOST:PORT" in out.stderr


@pytest.mark.parametrize(("given", "faust"), [("warning", "warn"), ("WARNING", "warn"), ("critical", "crit"),
                                              ("info", "info"), ("Debug", "debug")])
def test_usual_log_level_spellings_are_taken(given: str, faust: str) -> None:
    assert worker_args(["-l", given, "--web-port", "1"]) == ["-l", faust, "--web-port", "1"]
    assert worker_args([f"--loglevel={given}"]) == [f"--loglevel={faust}"]


def test_a_misspelt_setting_is_warned_about_with_the_closest_name(capsys: pytest.CaptureFixture[str]) -> None:
    Settings.load({"FINSENTRY_BROKERR": "kafka://h:9092", "FINSENTRY_TOKEN_ANA": "secret"})
    err = capsys.readouterr().err
    assert "FINSENTRY_BROKERR is not a setting and is ignored; did you mean FINSENTRY_BROKER?" in err
    assert "TOKEN_ANA" not in err  # a roster's token variable is the user's to name


def one_line_usage_error(out: subprocess.CompletedProcess) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("finsentry: error: "), out.stderr


def test_a_bad_roster_or_receivers_file_is_exit_2_and_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("analysts: [1, 2\n")
    one_line_usage_error(finsentry("worker", env={"FINSENTRY_ROSTER": str(bad)}))
    one_line_usage_error(finsentry("worker", env={"FINSENTRY_RECEIVERS": str(bad)}))


@pytest.mark.parametrize("argv", [["broker", "--port", "99999"], ["receiver", "--port", "0"],
                                  ["produce", "no-such-file.jsonl", "-o", "-"], ["generate", "--count", "0", "-o", "-"],
                                  ["scrape", "--feed", "file:///etc/passwd"], ["nosuchcommand"]])
def test_usage_errors_are_exit_2_and_one_line_in_one_format(argv: list[str]) -> None:
    one_line_usage_error(finsentry(*argv))


def test_column_names_with_spaces_and_punctuation_are_the_fields(tmp_path: Path) -> None:
    # `Published At` and `Ticker(s)` were once "not story fields": the stories went out undated, untickered
    path = tmp_path / "desk.csv"
    path.write_text("Headline:,Published At,Ticker(s)\nAdatum recalls heaters,2026-11-30 14:05,ADTM US Equity\n"
                    "Fabrikam and Contoso merge,2026-11-30 14:06,FBKM; CTSO\n", encoding="utf-8")
    code, sent = produce(path, tmp_path)
    assert code == 0
    assert sent == [{"headline": "Adatum recalls heaters", "published_at": "2026-11-30 14:05", "tickers": ["ADTM US Equity"]},
                    {"headline": "Fabrikam and Contoso merge", "published_at": "2026-11-30 14:06",
                     "tickers": ["FBKM", "CTSO"]}]
    stories = [validate(json.dumps(record).encode(), NOW) for record in sent]
    assert [s.tickers for s in stories] == [["ADTM"], ["FBKM", "CTSO"]]  # type: ignore[union-attr]


@pytest.mark.parametrize(("cell", "tickers"), [
    ("FBKM, CTSO", ["FBKM", "CTSO"]), ("FBKM;CTSO", ["FBKM", "CTSO"]), ("ADTM US Equity", ["ADTM"]),
    ("FBKM\nCTSO", ["FBKM", "CTSO"]), ("FBKM\r\nCTSO", ["FBKM", "CTSO"]),  # one per line, as Alt+Enter writes them
    # a space splits nothing: a name, a code with its country, class or sector key is no list of tickers
    # (once split into false ones: META, US, B, INDEX); dropped, and produce says how to write several
    ("Adatum Inc", []), ("ADATUM PLATFORMS", []), ("ADTM US", []), ("BRK B", []), ("SPX Index", []), ("FBKM CTSO", []),
])
def test_a_ticker_cell_is_split_on_commas_and_semicolons_only(tmp_path: Path, cell: str, tickers: list[str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "desk.csv"
    path.write_text(f'headline,tickers\nAdatum recalls heaters,"{cell}"\n', encoding="utf-8")
    code, sent = produce(path, tmp_path)
    story = validate(json.dumps(sent[0]).encode(), NOW)
    assert code == 0 and isinstance(story, Story) and story.tickers == tickers
    said = not tickers and " " in cell  # a name with a space was dropped
    assert ("separate tickers with commas or semicolons" in capsys.readouterr().err) == said


def test_a_row_with_more_cells_than_the_header_is_named_not_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an unquoted comma once cut the headline there and sent the rest as a "ticker"
    path = tmp_path / "desk.csv"
    path.write_text("Headline,Ticker\nContoso holds prices steady, signals patience,\nAdatum recalls heaters,ADTM\n",
                    encoding="utf-8")
    code, sent = produce(path, tmp_path)
    err = capsys.readouterr().err
    assert code == 0 and sent == [{"headline": "Adatum recalls heaters", "tickers": ["ADTM"]}]
    assert ("line 2: skipped: the row has 3 cells, the header 2: a headline with a comma must be in double quotes; if "
            "every row ends with a separator, end the header line with one too") in err


def test_a_missing_marker_among_tickers_is_no_ticker(tmp_path: Path) -> None:
    path = tmp_path / "desk.csv"
    path.write_text('Headline,Tickers\nAdatum recalls heaters,"ADTM, #N/A"\n', encoding="utf-8")
    code, sent = produce(path, tmp_path)
    assert code == 0 and sent == [{"headline": "Adatum recalls heaters", "tickers": ["ADTM"]}]


@pytest.mark.parametrize("tickers", ["nan", "N/A", "None", ["null", "NA"]])
def test_a_no_value_marker_in_the_ticker_field_is_no_ticker(tickers: object) -> None:
    # as a string it was split into a false ticker NAN (or N.A), a scope the monitor would alert on
    story = validate(json.dumps({"headline": "Adatum recalls heaters", "tickers": tickers}).encode(), NOW)
    assert isinstance(story, Story) and (story.tickers, story.dropped_tickers) == ([], [])


def test_a_time_ahead_of_the_clock_says_how_far_and_that_a_zoneless_time_is_utc(tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # a desk east of UTC exports local times without a zone: they read as UTC, so ahead of the clock
    path = tmp_path / "desk.csv"
    path.write_text("headline,published_at\nAdatum recalls heaters,2099-11-30 14:05\n", encoding="utf-8")
    code, _ = produce(path, tmp_path)
    err = capsys.readouterr().err
    assert code == 0 and "min ahead of this clock; a time without a zone is read as UTC: write its zone" in err


@pytest.mark.parametrize("stamp", ["4102444800", "2099-11-30T14:05:00+00", "2099-11-30T14:05:00Z"])
def test_a_time_ahead_with_its_zone_or_an_epoch_gets_no_zone_hint(stamp: str) -> None:
    from streams.validation import unread_because

    said = unread_because(stamp, NOW)
    assert "ahead of this clock" in said and "without a zone" not in said
