"""A damaged or mismatched model directory is one line naming the file, the problem and the fix,
never a traceback and never a silent run with wrong labels.

Review findings: a labels.json with the wrong number of topics or sentiments gave a numpy shape
error; one without "positive"/"negative" a ValueError, `{"topics": []}` a KeyError; negative and
positive swapped ran with inverted sentiment; card.json fields of the wrong kind gave tracebacks or
blamed tokenizer.json; a missing card.json ran silently without the re-check; `train` refused an
unreachable --base, a missing --init and --device cuda only after reading the data and making
--out; `evaluate` did not say what ran, showed no progress and read numeric sentiments silently;
`export` read --dev only at the end, after writing into --out.

Each test builds a damaged copy of models/default in tmp_path (the ONNX files linked, not copied).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models import runtime
from models.data import DataError
from models.runtime import Classifier, ModelError, default_model_dir

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny_topic.csv"
PLUNGE = "Acme shares plunge 20% after profit warning"


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.data

    monkeypatch.setattr(runtime, "_warned", set(), raising=False)
    monkeypatch.setattr(models.data, "_said", {"codes": False}, raising=False)


def shipped() -> Path:
    directory = default_model_dir()
    if not (directory / "model.onnx").is_file():
        pytest.skip("the shipped model is not here")
    return directory


def model_copy(tmp_path: Path, name: str = "model", hashes: bool = False) -> Path:
    """models/default's small files copied, its ONNX files linked, without its style models (a plain
    model, whose card names none); the card's sha256 as `hashes` says: recorded from the copies
    (True), or left out as by an export from before they were recorded (False), so that a test
    editing labels.json meets the check it is about, not the hash check."""
    source, target = shipped(), tmp_path / name
    target.mkdir()
    for path in source.iterdir():
        if path.is_dir():
            continue
        if path.suffix == ".onnx":
            os.symlink(path, target / path.name)
        else:
            shutil.copy(path, target / path.name)
    card = json.loads((target / "card.json").read_text())
    card.pop("sha256", None)
    card.pop("style_models", None)
    if hashes:
        card["sha256"] = {n: hashlib.sha256((target / n).read_bytes()).hexdigest() for n in ("labels.json", "tokenizer.json")}
    (target / "card.json").write_text(json.dumps(card))
    return target


def test_the_shipped_card_records_the_hashes_of_its_files() -> None:
    card = json.loads((shipped() / "card.json").read_text())
    for name in ("labels.json", "tokenizer.json"):  # of the content, or (as the card was first written) of the bytes
        assert card["sha256"][name] in {runtime.content_sha256(shipped() / name),
                                         hashlib.sha256((shipped() / name).read_bytes()).hexdigest()}


def test_checkouts_keep_the_model_files_bytes() -> None:
    # core.autocrlf=true would write labels.json and tokenizer.json with CRLF, and an ONNX file is binary
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "check-attr", "text", "--", "models/default/labels.json",
                          "models/default/tokenizer.json", "models/default/card.json", "models/default/model.onnx",
                          "elsewhere/model.fp16.onnx"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert [line.rsplit(": ", 1)[1] for line in out.splitlines()] == ["unset"] * 5


def crlf(path: Path, final_newline: bool = False) -> None:
    data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    path.write_bytes(data + (b"\r\n" if final_newline else b""))


@pytest.mark.parametrize("final_newline", [False, True])
def test_crlf_line_endings_or_a_final_newline_do_not_refuse_the_model(tmp_path: Path, final_newline: bool) -> None:
    # a Windows checkout (core.autocrlf=true), or an editor that ends the file with a newline
    model = model_copy(tmp_path, hashes=True)  # the card has the sha256 of the LF files' bytes, as the shipped one
    for name in ("labels.json", "tokenizer.json"):
        crlf(model / name, final_newline)
    assert Classifier.load(model, device="cpu").predict([PLUNGE])[0].sentiment == "negative"


def test_a_content_hash_still_refuses_swapped_labels(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    edit_json(model / "card.json", lambda card: {**card, "sha256": {
        n: runtime.content_sha256(model / n) for n in ("labels.json", "tokenizer.json")}})
    crlf(model / "labels.json")
    Classifier.load(model, device="cpu", variant="int8")
    edit_json(model / "labels.json", lambda labels: {**labels, "sentiment": labels["sentiment"][::-1]})
    with pytest.raises(ModelError, match="labels.json: its sha256 differs from the one card.json recorded"):
        Classifier.load(model, device="cpu", variant="int8")


def edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def finsentry(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, check=False,
                          input=stdin, timeout=300, cwd=ROOT)


# --- 1. labels.json against the model's outputs --------------------------------------------------


def test_fewer_topics_than_the_model_scores_is_one_line(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    edit_json(model / "labels.json", lambda labels: {**labels, "topic": labels["topic"][:-1]})
    with pytest.raises(ModelError, match=f"^{re.escape(str(model / 'labels.json'))}: 19 topics, but model.onnx "
                                         "scores 20, so it is not the labels.json exported with this model"):
        Classifier.load(model, device="cpu")


def test_more_sentiments_than_the_model_scores_is_one_line(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    edit_json(model / "labels.json", lambda labels: {**labels, "sentiment": [*labels["sentiment"], "mixed"]})
    with pytest.raises(ModelError, match="labels.json: 4 sentiment labels, but model.onnx scores 3"):
        Classifier.load(model, device="cpu", variant="int8")


@pytest.mark.parametrize("labels, message", [
    ({"topics": []}, "needs a non-empty 'topic' list of label names \\(found keys \\[\"topics\"\\]\\)"),
    ({"topic": [], "sentiment": ["negative", "neutral", "positive"]}, "needs a non-empty 'topic' list"),
    ({"topic": ["Earnings"], "sentiment": ["bearish", "neutral", "bullish"]},
     "the sentiment labels \\['bearish', 'neutral', 'bullish'\\] lack 'negative' and 'positive'"),
    ({"topic": ["Earnings", 3], "sentiment": ["negative", "neutral", "positive"]}, "'topic' label 3 is not a name"),
    ({"topic": ["Earnings", "Earnings"], "sentiment": ["negative", "neutral", "positive"]},
     "'topic' names \\['Earnings'\\] more than once"),
    (["Earnings"], "a JSON list, not an object"),
])
def test_labels_the_scoring_code_cannot_use_are_one_line(tmp_path: Path, labels: object, message: str) -> None:
    model = model_copy(tmp_path)
    (model / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ModelError, match=f"^{re.escape(str(model / 'labels.json'))}: {message}"):
        Classifier.load(model, device="cpu", variant="int8")


def test_evaluate_refuses_unusable_labels_with_one_line(tmp_path: Path) -> None:
    from models.evaluate import evaluate

    model = model_copy(tmp_path)
    (model / "labels.json").write_text('{"topics": []}')
    with pytest.raises(ModelError, match="labels.json: needs a non-empty 'topic' list"):
        evaluate(model, [str(TINY)], progress=False)


def tiny_graph(path: Path, topics: int, sentiments: int) -> None:
    """An ONNX model with the exported inputs and outputs whose output widths are left symbolic."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
              for n in ("input_ids", "attention_mask")]
    outputs = [helper.make_tensor_value_info("topic_logits", TensorProto.FLOAT, ["batch", "topics"]),
               helper.make_tensor_value_info("sentiment_logits", TensorProto.FLOAT, ["batch", "sentiments"])]
    weights = [numpy_helper.from_array(np.linspace(-1, 1, topics, dtype=np.float32).reshape(1, topics), "wt"),
               numpy_helper.from_array(np.linspace(-1, 1, sentiments, dtype=np.float32).reshape(1, sentiments), "ws")]
    nodes = [helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["m"], ["x"], axes=[1], keepdims=1),
             helper.make_node("MatMul", ["x", "wt"], ["topic_logits"]),
             helper.make_node("MatMul", ["x", "ws"], ["sentiment_logits"])]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_a_symbolic_output_width_is_checked_by_a_probe_run(tmp_path: Path) -> None:
    model = tmp_path / "tiny"
    model.mkdir()
    shutil.copy(shipped() / "tokenizer.json", model / "tokenizer.json")
    (model / "card.json").write_text(json.dumps({"version": "t", "max_tokens": 16}))
    (model / "labels.json").write_text(json.dumps({"topic": ["A", "B", "C"], "sentiment": ["negative", "neutral", "positive"]}))
    tiny_graph(model / "model.onnx", topics=3, sentiments=3)
    assert Classifier.load(model, device="cpu").predict(["Fed holds"])[0].topic in {"A", "B", "C"}
    tiny_graph(model / "model.onnx", topics=4, sentiments=3)
    with pytest.raises(ModelError, match="labels.json: 3 topics, but model.onnx scores 4"):
        Classifier.load(model, device="cpu")


# --- 2. labels.json and tokenizer.json against the card's sha256 ---------------------------------


def test_swapped_sentiments_are_refused_where_the_card_has_hashes(tmp_path: Path) -> None:
    model = model_copy(tmp_path, hashes=True)
    assert Classifier.load(model, device="cpu").predict([PLUNGE])[0].sentiment == "negative"

    def swap(labels: dict) -> dict:
        s = labels["sentiment"]
        return {**labels, "sentiment": [s[2], s[1], s[0]]}

    edit_json(model / "labels.json", swap)
    with pytest.raises(ModelError, match=f"^{re.escape(str(model / 'labels.json'))}: its sha256 differs from the one "
                                         "card.json recorded at export"):
        Classifier.load(model, device="cpu")


def test_another_tokenizer_is_refused_where_the_card_has_hashes(tmp_path: Path) -> None:
    model = model_copy(tmp_path, hashes=True)
    edit_json(model / "tokenizer.json", lambda tok: {**tok, "truncation": None})
    with pytest.raises(ModelError, match="tokenizer.json: its sha256 differs"):
        Classifier.load(model, device="cpu", variant="int8")


def test_a_card_without_hashes_loads_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = model_copy(tmp_path)
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        Classifier.load(model, device="cpu", variant="int8")
        Classifier.load(model, device="cpu", variant="int8")
    warned = [r.getMessage() for r in caplog.records if "sha256" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"{model / 'card.json'}: records no sha256 of labels.json and tokenizer.json")


def test_the_cli_refuses_swapped_labels_with_one_line(tmp_path: Path) -> None:
    model = model_copy(tmp_path, hashes=True)
    edit_json(model / "labels.json", lambda labels: {**labels, "sentiment": ["positive", "neutral", "negative"]})
    out = finsentry("classify", "--model", str(model), "--device", "cpu", "-", stdin=json.dumps({"text": PLUNGE}) + "\n")
    assert out.returncode == 2 and out.stdout == "", out.stderr
    assert out.stderr.splitlines() == [(f"finsentry: error: {model / 'labels.json'}: its sha256 differs from the one "
                                       "card.json recorded at export, so it is not the file exported with this model "
                                       "(edited, or from another model); restore the file `finsentry export` wrote, "
                                       "or re-run `finsentry export`")]


# --- 3. card.json ------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (lambda card: [card], "a JSON list, not an object of fields"),
    (lambda card: {**card, "recheck": {**card["recheck"], "margin": "0.5x"}},
     "field recheck.margin is '0.5x', not a number of at least 0"),
    (lambda card: {**card, "recheck": {**card["recheck"], "margin": -1}}, "field recheck.margin is -1"),
    (lambda card: {**card, "recheck": "yes"}, "field recheck is 'yes', not an object"),
    (lambda card: {**card, "max_tokens": "sixty-four"}, "field max_tokens is 'sixty-four', not a whole number"),
    (lambda card: {**card, "max_tokens": 0}, "field max_tokens is 0"),
    (lambda card: {**card, "version": {"v": 1}}, "field version is"),
    (lambda card: {**card, "sha256": {"labels.json": "abc"}}, "field sha256.labels.json is 'abc', not a sha256"),
])
def test_a_card_field_of_the_wrong_kind_is_one_line_naming_it(tmp_path: Path, change, message: str) -> None:
    model = model_copy(tmp_path)
    edit_json(model / "card.json", change)
    with pytest.raises(ModelError, match=f"^{re.escape(str(model / 'card.json'))}: {message}"):
        Classifier.load(model, device="cpu")


def test_a_missing_card_warns_once_what_it_disables(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = model_copy(tmp_path)
    (model / "card.json").unlink()
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        clf = Classifier.load(model, device="cpu")
        Classifier.load(model, device="cpu")
    assert clf.version == "unknown" and clf.variant == "int8"
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{model}: no card.json, so the model's version shows as unknown, close int8 calls are "
                              "not re-checked")


def test_on_the_command_line_the_missing_card_is_one_warning_line(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    (model / "card.json").unlink()
    out = finsentry("classify", "--model", str(model), "--device", "cpu", "-", stdin=json.dumps({"text": PLUNGE}) + "\n")
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("finsentry: warning:")]
    assert len(warnings) == 1 and "no card.json" in warnings[0] and "Traceback" not in out.stderr


# --- 4. train refuses what it cannot use before reading data or making --out ----------------------


@pytest.fixture
def no_data_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.train

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("train read the data before its early checks")

    monkeypatch.setattr(models.train, "load_file", refuse)
    monkeypatch.setattr(models.train, "sha256", refuse)


def train_with(tmp_path: Path, **options: object) -> None:
    from models.train import TrainConfig, train

    options = {"train": [str(TINY)], "dev": [str(TINY)], **options}
    train(TrainConfig(out=str(tmp_path / "out"), **options),  # type: ignore[arg-type]
          progress=lambda _: None)


def test_train_refuses_a_missing_init_before_the_data(tmp_path: Path, no_data_read: None) -> None:
    with pytest.raises(DataError, match="^--init .*missing: not a checkpoint \\(no heads.pt\\)"):
        train_with(tmp_path, init=str(tmp_path / "missing"))
    assert not (tmp_path / "out").exists()


def test_train_refuses_cuda_without_cuda_before_the_data(tmp_path: Path, no_data_read: None) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(DataError, match="^--device cuda: torch sees no CUDA device"):
        train_with(tmp_path, device="cuda")
    assert not (tmp_path / "out").exists()


def test_train_refuses_a_hub_base_it_cannot_load_before_making_out(tmp_path: Path) -> None:
    # offline here: the hub is unreachable; online: the hub has no such model. Either is one line.
    with pytest.raises(DataError, match="^--base finsentry-test/no-such-model: the Hugging Face hub .*; pass a local "
                                        "model directory instead"):
        train_with(tmp_path, base="finsentry-test/no-such-model")
    assert not (tmp_path / "out").exists()


def test_train_refuses_a_base_directory_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="^--base .*nowhere: no such directory; pass a local model directory"):
        train_with(tmp_path, base=str(tmp_path / "nowhere"))
    assert not (tmp_path / "out").exists()


def test_a_hub_base_that_loads_passes_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoConfig

    from models.train import check_base

    seen: list[str] = []
    monkeypatch.setattr(AutoConfig, "from_pretrained", lambda name, *a, **k: seen.append(name))
    check_base("sentence-transformers/all-MiniLM-L6-v2")
    assert seen == ["sentence-transformers/all-MiniLM-L6-v2"]


# --- 5. evaluate -------------------------------------------------------------------------------


def test_evaluate_reports_the_version_and_the_variant_that_ran(tmp_path: Path) -> None:
    from models.evaluate import evaluate, table

    model = model_copy(tmp_path, hashes=True)
    data = tmp_path / "d.csv"
    data.write_text(f"text,sentiment\n{PLUNGE},negative\nFed holds rates,neutral\n")
    result = evaluate(model, [str(data)], progress=False)
    version = json.loads((model / "card.json").read_text())["version"]
    assert (result["version"], result["variant"], result["variant_requested"]) == (version, "int8+recheck", None)
    assert result["provider"] == "CPUExecutionProvider" and isinstance(result["rechecked"], int)
    assert table(result).splitlines()[0].startswith(f"model {model} (onnx, version {version}, int8+recheck on "
                                                    "CPUExecutionProvider")
    assert evaluate(model, [str(data)], variant="int8", progress=False)["variant"] == "int8"


def test_evaluate_reports_progress_off_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import models.evaluate

    model = model_copy(tmp_path, hashes=True)
    data = tmp_path / "d.csv"
    data.write_text("text,sentiment\n" + "".join(f"Acme story {i} {'x' * i},negative\n" for i in range(5)))
    monkeypatch.setattr(models.evaluate, "CHUNK", 2)
    monkeypatch.setattr(models.evaluate, "PROGRESS_EVERY_S", 0.0)
    whole = models.evaluate.evaluate(model, [str(data)], progress=False)
    capsys.readouterr()
    chunked = models.evaluate.evaluate(model, [str(data)])
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in err if line.startswith("scored")] == ["scored 2/5 texts", "scored 4/5 texts"]
    assert chunked["heads"] == whole["heads"]


CODES_WARNING = ("every sentiment is a number, read as the Twitter financial news set's codes: 0 negative, 1 positive, "
                 "2 neutral (docs/MODEL.md); write the names if a file means another mapping (said once, for the "
                 "first file read so)")


def test_numeric_sentiments_warn_once_naming_the_mapping(tmp_path: Path, capsys) -> None:
    from models.evaluate import evaluate

    model = model_copy(tmp_path, hashes=True)
    coded = tmp_path / "coded.csv"
    coded.write_text(f"text,sentiment\n{PLUNGE},0\nGlobex beats,1\nFed holds,2\n")
    also = tmp_path / "also.csv"
    also.write_text(f"text,sentiment\n{PLUNGE},0\n")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"text,sentiment\n{PLUNGE},0\nGlobex beats,positive\n")
    result = evaluate(model, [str(coded), str(also), str(mixed)], progress=False)
    evaluate(model, [str(also)], progress=False)  # once per process, for every file
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("finsentry: warning:")]
    assert warnings == [f"finsentry: warning: {coded}: {CODES_WARNING}"]
    assert result["files"][str(coded)]["sentiment"]["n"] == 3


def test_train_warns_of_numeric_sentiments_as_evaluate_does(tmp_path: Path, capsys) -> None:
    coded = tmp_path / "coded.csv"
    coded.write_text(f"text,topic,sentiment\n{PLUNGE},Earnings,0\nGlobex beats,Earnings,1\n")
    with pytest.raises(DataError, match="^--base "):  # stops at the base encoder, after reading the files
        train_with(tmp_path, train=[str(coded)], dev=[str(coded)], base=str(tmp_path / "nowhere"))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("finsentry: warning:")]
    assert warnings == [f"finsentry: warning: {coded}: {CODES_WARNING}"]


def test_a_missing_train_extra_is_one_line_and_another_import_error_is_not_hidden(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from streams.commands.model import run_train

    monkeypatch.setitem(sys.modules, "models.train", None)  # a broken import of the project's own
    with pytest.raises(ImportError) as raised:
        run_train(argparse.Namespace())
    assert not isinstance(raised.value, DataError) and raised.value.name == "models.train"
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(DataError, match=r"^training needs the \[train\] extra \(transformers is not installed\)"):
        run_train(argparse.Namespace())


# --- 6. export ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a one-layer encoder with random weights and the shipped labels: exports in seconds."""
    import torch
    from transformers import BertConfig, BertModel

    from models.network import TwoHeadModel, save_checkpoint

    labels = json.loads((shipped() / "labels.json").read_text())
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=64, attn_implementation="eager"))
    directory = tmp_path_factory.mktemp("ckpt") / "ckpt"
    save_checkpoint(TwoHeadModel(encoder, len(labels["topic"]), len(labels["sentiment"])), directory, labels,
                    {"config": {"max_tokens": 32}, "steps": 0})
    shutil.copy(shipped() / "tokenizer.json", directory / "tokenizer.json")
    return directory


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_export_checks_dev_files_before_writing_anything(tmp_path: Path, checkpoint: Path) -> None:
    from models.export import export

    out = tmp_path / "out"
    with pytest.raises(DataError, match="missing.csv: no such file"):
        export(checkpoint, out, dev=[str(TINY), str(tmp_path / "missing.csv")], progress=lambda _: None)
    assert not out.exists() and siblings(out) == []


def test_export_records_hashes_and_replaces_a_directory_whole(tmp_path: Path, checkpoint: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from models.export import export

    out = tmp_path / "out"
    card = export(checkpoint, out, dev=[str(TINY)], progress=lambda _: None)
    assert siblings(out) == []
    for name in ("labels.json", "tokenizer.json"):  # of the content: a checkout's CRLF changes nothing
        assert card["sha256"][name] == runtime.content_sha256(out / name)
    assert json.loads((out / "card.json").read_text())["sha256"] == card["sha256"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        assert Classifier.load(out, device="cpu").predict(["Fed holds"])[0].sentiment in {"negative", "neutral", "positive"}
    assert not [r for r in caplog.records if r.name == "models.runtime"]
    assert {"model.onnx", "model.fp16.onnx", "model.fp32.onnx"} <= {p.name for p in out.iterdir()}

    # Again into the same directory, without fp16 and fp32: the earlier export's files do not stay beside
    # the new ones; a file of the user's does.
    (out / "NOTES.md").write_text("mine")
    card = export(checkpoint, out, keep_fp32=False, fp16=False, progress=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["NOTES.md", "card.json", "labels.json", "model.onnx", "tokenizer.json"]
    assert list(card["files"]) == ["model.onnx"] and siblings(out) == []


def test_export_puts_a_style_model_inside_and_a_later_export_replaces_or_drops_it(tmp_path: Path, checkpoint: Path) -> None:
    from models.export import export

    tweets = tmp_path / "tweets"
    export(checkpoint, tweets, keep_fp32=False, fp16=False, progress=lambda _: None)
    out = tmp_path / "out"
    card = export(checkpoint, out, keep_fp32=False, fp16=False, progress=lambda _: None, style_models={"social": tweets})
    first = card["style_models"]["social"]
    assert first.startswith("social.")
    assert sorted(p.name for p in (out / first).iterdir()) == ["card.json", "labels.json", "model.onnx", "tokenizer.json"]
    clf = Classifier.load(out, device="cpu")
    assert set(clf.by_style) == {"social"} and clf.reader("social").directory == out / first
    # Into the same directory again: the new style model has a name of its own (the card's rename is
    # the switch), and the one the old card named goes; a directory of the user's stays...
    (out / "social.mine").mkdir()
    second = export(checkpoint, out, keep_fp32=False, fp16=False, progress=lambda _: None,
                    style_models={"social": tweets})["style_models"]["social"]
    assert second != first
    assert sorted(p.name for p in out.iterdir()) == sorted(["card.json", "labels.json", "model.onnx", second,
                                                           "social.mine", "tokenizer.json"])
    # ...and an export without it removes the one the card no longer names.
    export(checkpoint, out, keep_fp32=False, fp16=False, progress=lambda _: None)
    assert not (out / second).exists() and not Classifier.load(out, device="cpu").by_style
    export(checkpoint, out, keep_fp32=False, fp16=False, progress=lambda _: None, style_models={"social": tweets})
    for style, directory, problem in (("newswire", tweets, "newswire is the exported model's own"),
                                      ("social", tmp_path, "no card.json"),
                                      ("social", out, "has style models of its own")):
        with pytest.raises(DataError, match=problem):
            export(checkpoint, tmp_path / "x", progress=lambda _: None, style_models={style: directory})
    assert not (tmp_path / "x").exists()


def test_a_model_trained_with_style_markers_reads_each_text_after_its_styles_marker(
        tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.average import average
    from models.export import export

    marked = tmp_path / "marked"
    shutil.copytree(checkpoint, marked)
    meta = json.loads((marked / "train.json").read_text())
    (marked / "train.json").write_text(json.dumps({**meta, "config": {**meta["config"], "social_files": []}}))
    assert runtime.uses_style_markers(marked) and not runtime.uses_style_markers(checkpoint)
    with pytest.raises(ValueError, match="some checkpoints were trained with style markers"):
        average([checkpoint, marked], [0.5, 0.5], tmp_path / "avg")
    card = export(marked, tmp_path / "out", keep_fp32=False, fp16=False, progress=lambda _: None)
    assert card["style_markers"] == {"newswire": "news:", "social": "tweet:"}
    clf = Classifier.load(tmp_path / "out", device="cpu")
    assert clf.reads_markers and runtime.uses_style_markers(tmp_path / "out")
    read: list[str] = []
    original = clf.all_logits
    monkeypatch.setattr(clf, "all_logits", lambda texts, size=None: (read.extend(texts), original(texts, size))[1])
    clf.predict(["RT @desk: $CTSO cools on guidance", "Contoso cools on guidance"], styles=["social", None])
    assert sorted(read) == ["news: Contoso cools on guidance", "tweet: CTSO cools on guidance"]
    with pytest.raises(ValueError, match="style 'blog': expected one of newswire, social"):
        clf.predict(["Contoso cools"], styles=["blog"])
    with pytest.raises(ModelError, match="field style_markers"):
        runtime.check_card({"style_markers": {"newswire": "wire:", "social": "tweet:"}})


def test_export_chooses_the_recheck_margin_on_half_the_dev_texts_and_judges_it_on_the_rest(
        tmp_path: Path, checkpoint: Path) -> None:
    """A long run memorises its training texts with wide margins, so a margin chosen on them re-ran
    too few unseen texts (run 25: 99.1% dev agreement); half the --dev texts choose it now (their
    labels unused) and parity is reported on the other half."""
    from models.export import MIN_CHOOSE_TEXTS, export

    dev = tmp_path / "dev.csv"
    rows = [f"Contoso unit {i} {'beats' if i % 2 else 'misses'} estimates" for i in range(2 * MIN_CHOOSE_TEXTS + 1)]
    dev.write_text("text,sentiment\n" + "".join(f"{r},neutral\n" for r in rows), encoding="utf-8")
    train = tmp_path / "train.csv"
    train.write_text("text,sentiment\nContoso beats estimates,positive\n", encoding="utf-8")
    marked = tmp_path / "ckpt"
    shutil.copytree(checkpoint, marked)
    meta = json.loads((marked / "train.json").read_text())
    (marked / "train.json").write_text(json.dumps({**meta, "data": {"train": [{"path": str(train), "sha256": "x"}]}}))
    card = export(marked, tmp_path / "out", dev=[str(dev)], keep_fp32=False, progress=lambda _: None)
    assert card["recheck"]["chosen_on"]["texts"] == MIN_CHOOSE_TEXTS + 1 and "--dev" in card["recheck"]["chosen_on"]["source"]
    assert {p["n"] for p in card["export"]["parity"]} == {MIN_CHOOSE_TEXTS}
    # Too few dev texts to halve: the training texts choose it, and every dev text judges it.
    card = export(marked, tmp_path / "few", dev=[str(train)], keep_fp32=False, progress=lambda _: None)
    assert card["recheck"]["chosen_on"] == {**card["recheck"]["chosen_on"], "texts": 1, "source": "training files, seeded sample"}
    assert {p["n"] for p in card["export"]["parity"]} == {1}


def test_an_export_that_fails_midway_leaves_the_directory_as_it_was(tmp_path: Path, checkpoint: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import models.export

    out = tmp_path / "out"  # an earlier export's directory; no links, so nothing can write through one
    out.mkdir()
    for name in ("card.json", "tokenizer.json"):
        shutil.copy(shipped() / name, out / name)
    (out / "labels.json").write_text(json.dumps({"topic": ["Only"], "sentiment": ["negative", "neutral", "positive"]}))
    for name in ("model.onnx", "model.fp16.onnx"):
        (out / name).write_bytes(b"earlier " + name.encode())
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail(*_: object) -> None:
        raise RuntimeError("quantiser crashed")

    monkeypatch.setattr(models.export, "quantize_int8", fail)
    with pytest.raises(RuntimeError, match="quantiser crashed"):
        models.export.export(checkpoint, out, progress=lambda _: None)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert siblings(out) == []


def build_dirs(out: Path) -> list[str]:
    """Build directories an export left: `.NAME.export-*` beside `out`, `.export-*` inside it."""
    inside = sorted(p.name for p in out.iterdir() if p.name.startswith(".export-")) if out.is_dir() else []
    return siblings(out) + inside


@pytest.fixture
def umask_022() -> object:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_export_directory_gets_the_umasks_mode_not_0700(tmp_path: Path, checkpoint: Path, umask_022) -> None:
    from models.export import export

    out = tmp_path / "new" / "model"
    export(checkpoint, out, fp16=False, progress=lambda _: None)
    assert out.stat().st_mode & 0o777 == 0o755 and build_dirs(out) == []
    assert Classifier.load(out, device="cpu").predict(["Fed holds"])


def test_export_through_a_link_to_another_file_system(tmp_path: Path, checkpoint: Path) -> None:
    from models.export import export

    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no writable file system other than tmp_path's")
    target = Path(tempfile_dir(shm))
    try:
        (tmp_path / "link").symlink_to(target)
        export(checkpoint, tmp_path / "link", fp16=False, progress=lambda _: None)  # was EXDEV, as a traceback
        assert {"card.json", "labels.json", "tokenizer.json", "model.onnx"} <= {p.name for p in target.iterdir()}
        assert (tmp_path / "link").is_symlink() and build_dirs(target) == [] and siblings(tmp_path / "link") == []
    finally:
        shutil.rmtree(target, ignore_errors=True)


def tempfile_dir(where: Path) -> str:
    import tempfile

    return tempfile.mkdtemp(dir=where, prefix="finsentry-test-")


def test_export_into_the_empty_current_directory_keeps_it(tmp_path: Path, checkpoint: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from models.export import export

    here = tmp_path / "here"
    here.mkdir(mode=0o750)
    here.chmod(0o750)
    inode = here.stat().st_ino
    monkeypatch.chdir(here)
    export(checkpoint, Path("."), fp16=False, progress=lambda _: None)  # the directory was removed and replaced
    assert here.stat().st_ino == inode and os.path.samefile(".", here) and here.stat().st_mode & 0o777 == 0o750
    assert {"card.json", "labels.json", "tokenizer.json", "model.onnx"} <= {p.name for p in here.iterdir()}
    assert build_dirs(here) == []


def fake_build(*args: object) -> dict:
    """models.export._build in a moment: the files, no model."""
    build = args[5]
    assert isinstance(build, Path)
    for name in ("labels.json", "tokenizer.json", "model.onnx", "card.json"):
        (build / name).write_text("{}")
    return {"files": {"model.onnx": 2}}


def test_an_install_failure_is_one_line_naming_the_path(tmp_path: Path, checkpoint: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import models.export

    monkeypatch.setattr(models.export, "_build", fake_build)
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_text("earlier")

    def cross_device(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))

    monkeypatch.setattr(os, "replace", cross_device)
    with pytest.raises(DataError, match=f"^--out {re.escape(str(out))}: cannot put the exported files in place "
                                        "\\(Invalid cross-device link: .*; nothing in it was changed"):
        models.export.export(checkpoint, out, progress=lambda _: None)
    assert (out / "model.onnx").read_text() == "earlier" and build_dirs(out) == []


def left_build(directory: Path, name: str, pid: int, age: float = 0.0, host: str | None = None) -> Path:
    """A build directory as an export makes it: its marker names the pid, the host and the start."""
    import socket
    import time

    import models.export

    build = directory / name
    build.mkdir(parents=True)
    (build / models.export.BUILD_MARKER).write_text(json.dumps({
        "pid": pid, "host": host or socket.gethostname(), "started": time.time() - age}))
    (build / "model.onnx").write_text("half")
    return build


def dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


# Changed expectation (every `.export-*` directory was pruned by its name): only a build directory an
# export made (its name as generated, its marker) whose export is no longer running is removed.
def test_export_prunes_only_the_build_directories_a_killed_export_left(tmp_path: Path, checkpoint: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import models.export

    monkeypatch.setattr(models.export, "_build", fake_build)
    out, gone, alive = tmp_path / "out", dead_pid(), os.getppid()
    stale = [left_build(out, ".export-0123456789ab", gone),
             left_build(tmp_path, ".out.export-00000000000a", alive, age=25 * 3600),  # its pid reused a day on
             left_build(tmp_path, ".out.export-abcdef012345", gone)]
    kept = [left_build(out, ".export-notes", gone),  # a user's directory: not the generated name
            left_build(tmp_path, ".out.export-archive", gone),
            left_build(tmp_path, ".other.export-0123456789ab", gone),  # another --out's
            left_build(tmp_path, ".out.export-111111111111", alive),  # a concurrent export's live build
            left_build(tmp_path, ".out.export-222222222222", gone, host="elsewhere.example"),  # another host's
            ]
    (out / ".export-fedcba987654").mkdir()  # the generated name, but no marker: not an export's
    kept.append(out / ".export-fedcba987654")
    said: list[str] = []
    models.export.export(checkpoint, out, progress=said.append)
    assert [p.is_dir() for p in stale] == [False] * 3 and [p.is_dir() for p in kept] == [True] * 6
    assert [m for m in said if m.startswith("removing")] == [
        f"removing {p}: the build directory of an earlier export that did not finish" for p in stale]
    assert models.export.BUILD_MARKER not in {p.name for p in out.iterdir()}


def test_a_second_export_into_one_out_is_refused_while_the_first_runs(tmp_path: Path, checkpoint: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import fcntl

    import models.export
    from streams.cli import main

    monkeypatch.setattr(models.export, "_build", fake_build)
    out = tmp_path / "out"
    lock = models.export._lock_path(out)
    with open(lock, "w") as held:  # as the first export holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        assert main(["export", str(checkpoint), "--out", str(out)]) == 2
        assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("finsentry")] == [
            (f"finsentry: error: --out {out}: another export into it is running (it holds {lock}); wait for it "
             "to finish, or give another --out")]
        assert not out.exists() and lock.exists()
    lock.unlink()
    models.export.export(checkpoint, out, progress=lambda _: None)  # the lock let go: it runs, and leaves no lock file
    assert (out / "card.json").is_file() and siblings(out) == []


def test_the_lock_is_held_while_the_export_builds(tmp_path: Path, checkpoint: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    import models.export

    seen: list[bool] = []

    def build(*args: object) -> dict:
        with open(models.export._lock_path(tmp_path / "out")) as other:  # another process's open file
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append(True)
        return fake_build(*args)

    monkeypatch.setattr(models.export, "_build", build)
    models.export.export(checkpoint, tmp_path / "out", progress=lambda _: None)
    assert seen == [True]


def deliver(signum: int) -> None:
    """Run the handler a signal would run now; the default action (death) fails the test instead of
    killing pytest."""
    import signal

    handler = signal.getsignal(signum)
    assert callable(handler), f"signal {signum} has no handler here ({handler!r}): it would kill the process"
    handler(signum, None)


def test_a_killed_export_removes_its_build_directory(tmp_path: Path, checkpoint: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    import models.export

    def killed(*args: object) -> dict:
        fake_build(*args)
        deliver(signal.SIGTERM)
        raise AssertionError("not stopped")

    monkeypatch.setattr(models.export, "_build", killed)
    old = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as a command line process has it
    try:
        for out in (tmp_path / "new", tmp_path):  # built beside a new directory, inside an existing one
            with pytest.raises(SystemExit) as stopped:
                models.export.export(checkpoint, out, progress=lambda _: None)
            assert stopped.value.code == 128 + signal.SIGTERM
            assert build_dirs(out) == [] and not (tmp_path / "new").exists()
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, old)


def test_a_killed_export_leaves_an_ignored_hangup_ignored(tmp_path: Path, checkpoint: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    import models.export

    seen: list[object] = []
    monkeypatch.setattr(models.export, "_build", lambda *a: (seen.append(signal.getsignal(signal.SIGHUP)),
                                                             fake_build(*a))[1])
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        models.export.export(checkpoint, tmp_path / "out", progress=lambda _: None)
    finally:
        signal.signal(signal.SIGHUP, old)
    assert seen == [signal.SIG_IGN]


def test_a_sigterm_during_the_final_moves_waits_until_they_are_done(tmp_path: Path, checkpoint: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # a SIGTERM between two renames left a directory of mixed files, the new model.onnx beside the old card
    import signal

    import models.export

    out = tmp_path / "out"
    out.mkdir()
    for name in ("labels.json", "tokenizer.json", "model.onnx", "card.json"):
        (out / name).write_text("earlier")
    real_replace, moves = os.replace, []

    def replace(source: object, target: object) -> None:
        if not moves:
            deliver(signal.SIGTERM)  # the first move is under way
        moves.append(Path(str(target)).name)
        real_replace(source, target)

    monkeypatch.setattr(models.export, "_build", fake_build)
    monkeypatch.setattr(os, "replace", replace)
    old = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as a command line process has it
    try:
        with pytest.raises(SystemExit) as stopped:
            models.export.export(checkpoint, out, progress=lambda _: None)
        assert stopped.value.code == 128 + signal.SIGTERM and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, old)
    assert moves == ["labels.json", "model.onnx", "tokenizer.json", "card.json"]
    assert {p.name: p.read_text() for p in out.iterdir()} == {n: "{}" for n in moves}
    assert build_dirs(out) == [] and siblings(out) == []


def test_a_ctrl_c_during_the_final_moves_waits_until_they_are_done(tmp_path: Path, checkpoint: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # SIGTERM and SIGHUP waited; Ctrl-C between two renames still left old and new files mixed
    import signal

    import models.export

    out = tmp_path / "out"
    out.mkdir()
    for name in ("labels.json", "tokenizer.json", "model.onnx", "card.json"):
        (out / name).write_text("earlier")
    real_replace, moves = os.replace, []

    def replace(source: object, target: object) -> None:
        if not moves:
            deliver(signal.SIGINT)  # the first move is under way
        moves.append(Path(str(target)).name)
        real_replace(source, target)

    monkeypatch.setattr(models.export, "_build", fake_build)
    monkeypatch.setattr(os, "replace", replace)
    # as an interactive command line has it (a CI runner may start the tests with SIGINT ignored)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            models.export.export(checkpoint, out, progress=lambda _: None)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, old)
    assert moves == ["labels.json", "model.onnx", "tokenizer.json", "card.json"]
    assert {p.name: p.read_text() for p in out.iterdir()} == {n: "{}" for n in moves}


def test_an_onnx_file_of_another_size_than_the_card_recorded_is_one_line(tmp_path: Path) -> None:
    # a directory of mixed files (model.onnx from another export) loaded silently
    model = model_copy(tmp_path, hashes=True)
    (model / "model.onnx").unlink()
    os.symlink(shipped() / "model.fp16.onnx", model / "model.onnx")
    size = (shipped() / "model.fp16.onnx").stat().st_size
    recorded = json.loads((model / "card.json").read_text())["files"]["model.onnx"]
    with pytest.raises(ModelError, match=f"^{re.escape(str(model / 'model.onnx'))}: cannot be loaded: {size} bytes "
                                         f"where card.json recorded {recorded} at export, so it is not the file "
                                         "exported with this model \\(cut short, or another export's\\); restore"):
        Classifier.load(model, device="cpu", variant="int8")
    assert Classifier.load(model, device="cpu", variant="fp16").predict([PLUNGE])  # the file the card records
    edit_json(model / "card.json", lambda card: {**card, "files": {"model.onnx": "big"}})
    with pytest.raises(ModelError, match="card.json: field files.model.onnx is 'big', not a size in bytes"):
        Classifier.load(model, device="cpu", variant="fp16")


def test_exports_refusal_of_a_checkpoints_labels_says_to_train(tmp_path: Path, checkpoint: Path) -> None:
    from models.export import export

    broken = tmp_path / "ckpt"
    shutil.copytree(checkpoint, broken)
    edit_json(broken / "labels.json", lambda labels: {**labels, "sentiment": ["bearish", "neutral", "bullish"]})
    with pytest.raises(ModelError, match="lack 'negative' and 'positive', which the sentiment score needs; restore the "
                                         "labels.json `finsentry train` wrote into the checkpoint, or re-run "
                                         "`finsentry train`$"):
        export(broken, tmp_path / "out", progress=lambda _: None)
