"""`finsentry classify` on the shipped model: its output can be trusted as the worker's labels for the
file it names, or it says why not in one line (exit 2) and leaves the output file as it was."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from models.runtime import Classifier
from streams.cli import main, parser

# Invented headlines of varied length: the short one's label must not depend on its neighbours.
ALONE = "Globex sees flat sales"
NEIGHBOURS = [
    "Initech shares jump",
    ("Umbrella Holdings cuts its full-year outlook after a weak quarter in its consumer unit and warns of "
     "further job losses across its European plants"),
    "Hooli to buy Pied Piper",
    ("Vandelay Industries reports record revenue as demand for imported latex goods rises in every region "
     "it serves, beating analysts' estimates by a wide margin"),
    "Central bank holds rates",
    "Wonka Foods recalls chocolate bars",
    "Soylent Corp misses estimates",
    "Cyberdyne Systems wins a defence contract worth two billion dollars over five years",
    "Stark Industries names a new chief executive",
    "Tyrell Corp bonds rally",
]
LONG = " ".join(["Acme Widgets, the Springfield maker of industrial widgets and household appliances,"] * 6)


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("finsentry: error: ")]
    assert len(err) == 1, err
    return err[0]


# --- the output file -----------------------------------------------------------------------------


def test_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    news = write_jsonl(tmp_path / "news.jsonl", ["Initech shares jump"])
    before = news.read_bytes()
    (tmp_path / "hard.jsonl").hardlink_to(news)
    for same in (str(news), str(tmp_path / "." / "news.jsonl"), str(tmp_path / "hard.jsonl")):
        assert main(["classify", str(news), same]) == 2
        assert "is the input file" in one_error_line(capsys)
        assert news.read_bytes() == before


def test_a_failure_leaves_an_existing_output_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    news, out = tmp_path / "news.jsonl", tmp_path / "scored.jsonl"
    news.write_bytes(b'{"text": "Initech shares jump"}\n{"text": "Hooli to buy Pied Piper"}\n'
                     b'{"text": "Soci\xe9t\xe9 G\xe9n\xe9rale shares fall"}\n')
    out.write_text('{"kept": true}\n')
    assert main(["classify", str(news), str(out)]) == 2
    line = one_error_line(capsys)
    assert "line 3: not UTF-8" in line and f"nothing was written to {out}" in line
    assert out.read_text() == '{"kept": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.jsonl", "scored.jsonl"]  # no temporary file left


def test_output_in_a_missing_directory_or_a_directory_is_one_line(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    news = write_jsonl(tmp_path / "news.jsonl", ["Initech shares jump"])
    assert main(["classify", str(news), str(tmp_path / "nowhere" / "out.jsonl")]) == 2
    assert "no such directory" in one_error_line(capsys)
    assert main(["classify", str(news), str(tmp_path)]) == 2
    assert "is a directory" in one_error_line(capsys)
    assert main(["classify", str(tmp_path), str(tmp_path / "out.jsonl")]) == 2
    assert "is a directory" in one_error_line(capsys)


def test_a_written_output_is_complete_and_keeps_its_permissions(tmp_path: Path) -> None:
    news, out = write_jsonl(tmp_path / "news.jsonl", NEIGHBOURS[:3]), tmp_path / "scored.jsonl"
    out.write_text("old\n")
    out.chmod(0o640)
    assert main(["classify", str(news), str(out)]) == 0
    assert [r["text"] for r in rows_of(out)] == NEIGHBOURS[:3]
    assert out.stat().st_mode & 0o777 == 0o640


# --- the worker's labels, whatever else is in the file --------------------------------------------


def test_a_text_gets_the_same_output_alone_and_among_others(tmp_path: Path) -> None:
    alone = write_jsonl(tmp_path / "alone.jsonl", [ALONE])
    among = write_jsonl(tmp_path / "among.jsonl", NEIGHBOURS[:5] + [ALONE] + NEIGHBOURS[5:] + [LONG])
    assert main(["classify", "--device", "cpu", str(alone), str(tmp_path / "a.jsonl")]) == 0
    assert main(["classify", "--device", "cpu", str(among), str(tmp_path / "b.jsonl")]) == 0
    assert main(["classify", "--device", "cpu", "--batch-size", "2", str(among), str(tmp_path / "c.jsonl")]) == 0
    by_itself = rows_of(tmp_path / "a.jsonl")[0]
    in_file = rows_of(tmp_path / "b.jsonl")
    assert {k: v for k, v in in_file[5].items() if k != "line"} == {k: v for k, v in by_itself.items() if k != "line"}
    assert rows_of(tmp_path / "c.jsonl") == in_file  # --batch-size changes no result
    # ... and it is what the worker's call gives
    worker = Classifier.load(device="cpu").predict([ALONE])[0]
    assert (by_itself["topic"], by_itself["topic_confidence"], by_itself["sentiment_score"]) == (
        worker.topic, worker.topic_confidence, worker.sentiment_score)


# --- what the model reads ------------------------------------------------------------------------


def test_a_text_over_the_models_tokens_is_marked_truncated_and_counted(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    news, out = write_jsonl(tmp_path / "news.jsonl", ["Initech shares jump", LONG]), tmp_path / "out.jsonl"
    assert main(["classify", str(news), str(out)]) == 0
    assert [r["truncated"] for r in rows_of(out)] == [False, True]
    assert "1 truncated to the model's 64 tokens" in capsys.readouterr().err


def test_a_text_empty_after_normalisation_is_skipped_not_labelled(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    news, out = tmp_path / "news.jsonl", tmp_path / "out.jsonl"
    write_jsonl(news, ["https://t.co/abc123", "@initech_news", "\u200b\u200b", "Initech shares jump"])
    assert main(["classify", str(news), str(out)]) == 0
    rows = rows_of(out)
    assert all(r["error"].startswith("no text after normalisation") and "topic" not in r for r in rows[:3])
    assert rows[3]["topic"]
    err = capsys.readouterr().err
    assert "classified 1, skipped 3" in err and "3 with no text after normalisation" in err


# --- where each row came from --------------------------------------------------------------------


def test_line_is_the_files_line_and_id_is_copied_through(tmp_path: Path) -> None:
    news, out = tmp_path / "news.csv", tmp_path / "out.jsonl"
    news.write_text('ID,headline\r\nn-1,Initech shares jump\r\n\r\nn-2,"Hooli to buy\r\nPied Piper"\r\n'
                    "n-3,Tyrell Corp bonds rally\r\n", encoding="utf-8")
    assert main(["classify", str(news), str(out)]) == 0
    assert [(r["line"], r["id"]) for r in rows_of(out)] == [(2, "n-1"), (4, "n-2"), (6, "n-3")]
    jsonl = tmp_path / "news.jsonl"
    jsonl.write_text('{"id": 7, "text": "Initech shares jump"}\n\n{"text": "Hooli to buy Pied Piper"}\n')
    assert main(["classify", str(jsonl), str(out)]) == 0
    rows = rows_of(out)
    assert (rows[0]["line"], rows[0]["id"]) == (1, 7) and rows[1]["line"] == 3 and "id" not in rows[1]


# --- what is read, and what is refused -----------------------------------------------------------


def test_stdin_that_is_not_utf8_is_refused_naming_the_line(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    raw = b'{"text": "Initech shares jump"}\n{"text": "Soci\xe9t\xe9 G\xe9n\xe9rale shares fall"}\n'
    # as a C locale's stdin decodes it: the bad bytes became lone surrogates, and were classified
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors="surrogateescape"))
    assert main(["classify", "-"]) == 2
    line = one_error_line(capsys)
    assert "stdin line 2: not UTF-8" in line and "CSV" not in line


def test_non_utf8_messages_name_the_line_and_fit_the_format(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    jsonl = tmp_path / "news.jsonl"
    jsonl.write_bytes(b'{"text": "Initech shares jump"}\n{"text": "Caf\xe9 chain grows"}\n')
    assert main(["classify", str(jsonl)]) == 2
    line = one_error_line(capsys)
    assert "news.jsonl line 2: not UTF-8" in line and "CSV" not in line
    csv = tmp_path / "news.csv"
    csv.write_bytes(b"headline\nInitech shares jump\nCaf\xe9 chain grows\n")
    assert main(["classify", str(csv)]) == 2
    assert "news.csv line 3: not UTF-8" in one_error_line(capsys)


def test_a_json_array_is_refused_with_one_line_saying_to_use_json_lines(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    news = tmp_path / "news.json"
    news.write_text(json.dumps([{"text": "Initech shares jump"}, {"text": "Tyrell Corp bonds rally"}], indent=2))
    assert main(["classify", str(news), str(tmp_path / "out.jsonl")]) == 2
    assert "a JSON array, not JSON Lines" in one_error_line(capsys)
    assert not (tmp_path / "out.jsonl").exists()


def test_help_lists_the_formats_read(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["classify", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for form in (".csv", ".tsv", ".jsonl", ".ndjson", ".json", "- for JSON Lines on stdin"):
        assert form in text
    assert "never changes a result" in text


# --- where the output goes, and what a kill or a closed pipe leaves ------------------------------


def test_dev_stdout_appended_to_a_log_is_written_in_place(tmp_path: Path) -> None:
    # `classify news.jsonl /dev/stdout >> run.log` replaced run.log by a rename: its earlier lines went
    import subprocess

    news, log = write_jsonl(tmp_path / "news.jsonl", NEIGHBOURS[:2]), tmp_path / "run.log"
    log.write_text("earlier line\n")
    inode = log.stat().st_ino
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(f'"{sys.executable}" -m streams.cli classify --device cpu "{news}" /dev/stdout >> "{log}"',
                         shell=True, capture_output=True, text=True, timeout=300, cwd=root, check=False)
    assert out.returncode == 0, out.stderr
    lines = log.read_text().splitlines()
    assert log.stat().st_ino == inode and lines[0] == "earlier line"
    assert [json.loads(line)["text"] for line in lines[1:]] == NEIGHBOURS[:2]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_a_directory_without_room_for_a_temporary_file_is_written_in_place(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import streams.commands.model

    def no_permission(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")

    news, out = write_jsonl(tmp_path / "news.jsonl", NEIGHBOURS[:2]), tmp_path / "scored.jsonl"
    out.write_text("old\n")  # a file the user may write, in a directory they may not
    monkeypatch.setattr(streams.commands.model.tempfile, "mkstemp", no_permission)
    assert main(["classify", "--device", "cpu", str(news), str(out)]) == 0
    assert [r["text"] for r in rows_of(out)] == NEIGHBOURS[:2]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("finsentry: warning:")]
    assert warnings == [(f"finsentry: warning: {out}: no temporary file can be made in {tmp_path} (Permission "
                         "denied), so it is written in place: an error or a kill leaves it cut short")]


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_kill_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    import signal

    signum = getattr(signal, name)
    news, out = write_jsonl(tmp_path / "news.jsonl", NEIGHBOURS[:3]), tmp_path / "scored.jsonl"
    out.write_text("old\n")

    def killed(self: Classifier, texts: list[str], batch_size: int | None = None, styles: object = None) -> list:
        handler = signal.getsignal(signum)  # what the signal would run now; the default kills, leaving .partial
        assert callable(handler), f"{name} would kill classify, leaving its temporary file"
        handler(signum, None)
        raise AssertionError("not stopped")

    monkeypatch.setattr(Classifier, "predict", killed)
    old = signal.signal(signum, signal.SIG_DFL)  # as a command line process has it
    try:
        with pytest.raises(SystemExit) as stopped:
            main(["classify", "--device", "cpu", str(news), str(out)])
        assert stopped.value.code == 128 + signum and signal.getsignal(signum) is signal.SIG_DFL
    finally:
        signal.signal(signum, old)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.jsonl", "scored.jsonl"]


class ClosedPipe(io.StringIO):
    """stdout once `head -1` has what it wanted and exited."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_on_stdout_ends_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # `finsentry classify news.jsonl | head -1`, as `finsentry tail ... | head` ends
    news = write_jsonl(tmp_path / "news.jsonl", NEIGHBOURS[:3])
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["classify", "--device", "cpu", str(news)]) == 0
    err = capsys.readouterr().err
    assert "error" not in err and "Traceback" not in err


# --- a regular file under /dev, stdout on the input, a closed stderr ------------------------------


@pytest.fixture
def shm_dir() -> object:
    """A directory of our own on /dev/shm (a regular file system under /dev), removed after."""
    import shutil
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip("no writable /dev/shm")
    made = Path(tempfile.mkdtemp(dir=shm, prefix="finsentry-test-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def test_the_input_under_dev_shm_is_never_the_output(tmp_path: Path, shm_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # `classify /dev/shm/x/news.jsonl /dev/shm/x/news.jsonl` was written in place: the input erased, exit 1
    news = write_jsonl(shm_dir / "news.jsonl", NEIGHBOURS[:2])
    before = news.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(news)
    for same in (str(news), str(tmp_path / "link.jsonl")):
        assert main(["classify", "--device", "cpu", str(news), same]) == 2
        assert "is the input file" in one_error_line(capsys)
        assert news.read_bytes() == before


def test_a_regular_file_under_dev_shm_is_replaced_whole_not_cut_short(shm_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    news, out = write_jsonl(shm_dir / "news.jsonl", NEIGHBOURS[:2]), shm_dir / "scored.jsonl"
    out.write_text("old\n")

    def fails(self: Classifier, texts: list[str], batch_size: int | None = None, styles: object = None) -> list:
        raise RuntimeError("the model failed")

    with monkeypatch.context() as patched:
        patched.setattr(Classifier, "predict", fails)
        with pytest.raises(RuntimeError, match="the model failed"):
            main(["classify", "--device", "cpu", str(news), str(out)])
    assert out.read_text() == "old\n" and sorted(p.name for p in shm_dir.iterdir()) == ["news.jsonl", "scored.jsonl"]
    inode = out.stat().st_ino
    assert main(["classify", "--device", "cpu", str(news), str(out)]) == 0
    assert [r["text"] for r in rows_of(out)] == NEIGHBOURS[:2] and out.stat().st_ino != inode  # renamed over


def test_stdout_appended_to_the_input_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # `classify news.jsonl >> news.jsonl` read its own output back
    news = write_jsonl(tmp_path / "news.jsonl", NEIGHBOURS[:2])
    before = news.read_bytes()
    with open(news, "a", encoding="utf-8") as appended:
        monkeypatch.setattr(sys, "stdout", appended)
        assert main(["classify", "--device", "cpu", str(news)]) == 2
    assert one_error_line(capsys).startswith("finsentry: error: stdout: is the input file")
    assert news.read_bytes() == before


def test_a_link_to_dev_stdout_appended_to_a_log_is_written_in_place(tmp_path: Path) -> None:
    # out.jsonl -> /dev/stdout: followed to the log, which a rename replaced
    import subprocess

    news, log, link = write_jsonl(tmp_path / "news.jsonl", NEIGHBOURS[:1]), tmp_path / "run.log", tmp_path / "out.jsonl"
    log.write_text("earlier line\n")
    link.symlink_to("/dev/stdout")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(f'"{sys.executable}" -m streams.cli classify --device cpu "{news}" "{link}" >> "{log}"',
                         shell=True, capture_output=True, text=True, timeout=300, cwd=root, check=False)
    assert out.returncode == 0, out.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier line" and [json.loads(line)["text"] for line in lines[1:]] == NEIGHBOURS[:1]
    assert link.is_symlink()


def test_a_closed_stderr_changes_nothing_of_the_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `classify in.jsonl out.jsonl 2>&1 | logger` with the logger gone: the first stderr line raised
    # BrokenPipeError, which ended classify with status 0 and nothing written
    news, out = write_jsonl(tmp_path / "news.jsonl", NEIGHBOURS[:2]), tmp_path / "scored.jsonl"
    monkeypatch.setattr(sys, "stderr", ClosedPipe())
    assert main(["classify", "--device", "cpu", str(news), str(out)]) == 0
    assert [r["text"] for r in rows_of(out)] == NEIGHBOURS[:2]
    empty = write_jsonl(tmp_path / "empty.jsonl", ["https://t.co/abc"])
    assert main(["classify", "--device", "cpu", str(empty), str(tmp_path / "none.jsonl")]) == 1  # nothing classified


def test_a_closed_stderr_costs_the_messages_not_the_run(tmp_path: Path) -> None:
    # Started with 2>&- (sys.stderr is None), classify printed its first line to stdout, into the
    # JSONL, and exited 1 ("nothing classified") having written nothing else.
    import subprocess

    source = tmp_path / "in.csv"
    source.write_text("text\nContoso shares surge\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "streams.cli", "classify", str(source)], capture_output=False,
                         stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2), check=False, timeout=300,
                         cwd=Path(__file__).resolve().parents[2], text=True)
    lines = run.stdout.splitlines()
    assert run.returncode == 0 and len(lines) == 1 and json.loads(lines[0])["text"] == "Contoso shares surge"


def test_nothing_classified_leaves_the_previous_output_as_it_was(tmp_path: Path, capsys) -> None:
    # Exit 1 (nothing classified) emptied it, or replaced it with error rows: "replaced only on success".
    previous = tmp_path / "prev.jsonl"
    previous.write_text('{"previous": "good run"}\n', encoding="utf-8")
    for name, content in (("header.csv", "text\n"), ("links.csv", "text\nhttps://t.co/abc123\n")):
        source = tmp_path / name
        source.write_text(content, encoding="utf-8")
        assert main(["classify", str(source), str(previous)]) == 1
        assert previous.read_text(encoding="utf-8") == '{"previous": "good run"}\n'
        assert f"{previous} was left as it was" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["header.csv", "links.csv", "prev.jsonl"]


def test_plain_text_lines_are_told_to_be_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fresh-user run: `printf 'Gold hits record high\\n' | finsentry classify -` ended with
    'no row had text in text or headline or title or body', which names the wrong cause."""
    plain = tmp_path / "plain.jsonl"
    plain.write_text("Northwind recalls kettles\nContoso opens plant\n", encoding="utf-8")
    assert main(["classify", "--device", "cpu", str(plain)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no line could be read as a row" in last and 'JSON Lines, one object per line ({"text": "..."})' in last
    assert "no row had text" not in last


def test_a_json_row_with_an_error_field_and_no_text_is_a_row_without_text(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """classify's own error rows fed back in are rows, readable, that have no text: not unreadable lines."""
    rows = tmp_path / "errors.jsonl"
    rows.write_text('{"line": 1, "error": "not JSON"}\n', encoding="utf-8")
    assert main(["classify", "--device", "cpu", str(rows)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no row had text" in last and "no line could be read" not in last
