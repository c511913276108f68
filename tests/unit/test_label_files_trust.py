"""Label files are read as written or refused with one line naming the file and the row.

Review findings: dev labels checked on all dev files joined blamed the wrong file; JSONL and Parquet
took the label columns from the first row only; an unquoted comma in a CSV text became the topic;
JSON labels that are not strings became Python reprs; topics differing only by case became two
classes; JSONL label errors counted records, not lines; `evaluate` checked labels only after
scoring every text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from models.data import DataError, Example, LabelMaps, check_topic_spellings, load_file
from models.runtime import model_labels


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """`train` must refuse the data before it touches a tokenizer; this makes sure it never trains."""
    import models.train

    def refuse(*_: object) -> None:
        raise AssertionError("train got past its data checks")

    monkeypatch.setattr(models.train, "_save_tokenizer", refuse)


def train_on(tmp_path: Path, files: list[Path], dev: list[Path]) -> None:
    from models.train import TrainConfig, train

    train(TrainConfig(train=[str(p) for p in files], dev=[str(p) for p in dev], out=str(tmp_path / "out"),
                    base=str(tmp_path / "no-such-base")), progress=lambda _: None)


def test_train_names_the_dev_file_and_its_own_row(tmp_path: Path, no_training: None) -> None:
    train = write(tmp_path / "train.csv", "text,topic\nContoso beats,Earnings\nFed holds,Macro\n")
    dev_a = write(tmp_path / "dev_a.csv", "text,topic\n" + "".join(f"Contoso story {i},Earnings\n" for i in range(50)))
    dev_b = write(tmp_path / "dev_b.csv", "text,topic\nFabrikam holds,Macro\nFabrikam lists,IPO\n")
    with pytest.raises(DataError, match=f"^{re.escape(str(dev_b))}: row 2: unknown topic 'IPO'"):
        train_on(tmp_path, [train], [dev_a, dev_b])


def test_train_refuses_a_topic_spelled_two_ways(tmp_path: Path, no_training: None) -> None:
    first = write(tmp_path / "a.csv", "text,topic\nContoso beats,Earnings\n")
    second = write(tmp_path / "b.jsonl", '{"text": "Fed holds", "topic": "Macro"}\n\n'
                                        '{"text": "Fabrikam misses", "topic": " earnings "}\n')
    with pytest.raises(DataError, match=f"^{re.escape(str(second))}: row 3: topic 'earnings' differs only by case from "
                                        f"'Earnings' \\({re.escape(str(first))}: row 1\\)"):
        train_on(tmp_path, [first, second], [first])


def test_the_shipped_models_topics_have_one_spelling_each() -> None:
    # why a second spelling is refused, not mapped: no label map the project ships has one to map
    topics = model_labels()["topic"]
    check_topic_spellings([("labels.json", [Example(text="x", topic=t) for t in topics])])


def test_every_jsonl_row_carries_the_labels_it_has(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"text": "Contoso beats", "topic": "Earnings"}\n'
                                       '{"text": "Contoso plunges", "topic": "Earnings", "sentiment": "negative"}\n'
                                       '{"text": "Fabrikam flat", "sentiment": "neutral"}\n')
    assert [(e.topic, e.sentiment) for e in load_file(path)] == [
        ("Earnings", None), ("Earnings", "negative"), (None, "neutral")]


def test_every_parquet_row_carries_the_labels_it_has(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "Contoso beats", "topic": "Earnings", "sentiment": None},
                                         {"text": "Fabrikam sinks", "topic": None, "sentiment": 0}]), path)
    assert [(e.topic, e.sentiment, e.row) for e in load_file(path)] == [("Earnings", None, 1), (None, "negative", 2)]


SHORT = ("fields where the header has 3: give every column (an empty cell for a missing label; some Excel exports "
         "leave trailing separators out: re-save from LibreOffice or pandas, or fill the cells), and put a text "
         "that holds a comma or a line break in double quotes")


@pytest.mark.parametrize("content, message", [
    ("text,topic\nContoso beats,Earnings\nContoso, Inc. beats estimates,Earnings\n",
     'row 2: 3 fields where the header has 2: put a text that holds a comma in double quotes'),
    # a text broken by an unquoted line break: its first part has no label left
    ("text,topic,sentiment\nContoso beats,Earnings,positive\nFabrikam misses\nits estimates,Earnings,negative\n",
     "row 2: 1 field where the header has 3: give every column"),
    ("topic,sentiment,text\nEarnings,positive,Contoso beats\nEarnings,negative\n", f"row 2: 2 {re.escape(SHORT)}$"),
    # an extra cell that holds something is refused, even where the others are empty
    ("text,topic\nContoso beats,Earnings,,x\n", "row 1: 4 fields where the header has 2: put a text"),
])
def test_a_csv_row_that_does_not_match_the_header_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path / "shifted.csv", content)
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: {message}"):
        load_file(path)


# Changed expectation (short rows were read as absent trailing labels): a text broken by an unquoted
# comma or line break reads as a short row too, and its tail became a topic ("Contoso, Inc. beats" ->
# "Inc. beats"); nothing lies beats convenience, so every short row is refused with the fix.
@pytest.mark.parametrize("content", [
    "text,topic,sentiment\nContoso, Inc. beats\nestimates,Earnings,positive\n",
    "text,topic,sentiment\nShares fell, analysts said\nBank beats,Earnings,positive\n",
    "text,topic,sentiment,note\nContoso beats,Earnings,positive,ok\nFed holds rates,Fed | Central Banks\n",
])
def test_a_row_shorter_than_the_header_is_refused_with_the_fix(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "short.csv", content)
    with pytest.raises(DataError, match=r"fields where the header has \d+: give every column \(an empty cell for a "
                                        "missing label; some Excel exports leave trailing separators out"):
        load_file(path)


def test_trailing_separators_are_read_when_the_header_ends_with_one_too(tmp_path: Path) -> None:
    # A writer that ends every line with a separator: with the header's own, every row fits it.
    path = write(tmp_path / "extra.csv", "text,topic,\nContoso beats,Earnings,\nFabrikam sinks,Macro, \n")
    assert [(e.text, e.topic) for e in load_file(path)] == [("Contoso beats", "Earnings"), ("Fabrikam sinks", "Macro")]


# Changed expectation: empty fields past the header were accepted up to the count most rows had, and
# a file of partly labelled rows whose texts hold commas outvoted its labelled rows ("Contoso, Inc.
# beats," learnt the topic "Inc. beats", one row alone too). Any field past the header is refused.
@pytest.mark.parametrize("content", [
    "text,topic\nContoso, Inc. beats,\n",
    "text,topic\nAcme beats,Earnings\nContoso, Inc. beats,\nFoo, Bar rises,\n",
    "text,topic\nContoso beats,Earnings,\nFed holds,Macro,\n",
    "text,topic,sentiment\nAcme beats,Earnings,positive\nX, Y falls,,\nZ, W rises,,\n",
])
def test_any_field_past_the_header_is_refused(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "shifted.csv", content)
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: row \\d+: \\d+ fields where the header has \\d+: put a "
                                        "text that holds a comma in double quotes .*end the header with one too"):
        load_file(path)


def test_quoted_commas_and_empty_cells_still_read(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.csv", 'text,topic,sentiment\n"Contoso, Inc. beats",Earnings,\nFabrikam sinks,,Bearish\n')
    assert [(e.text, e.topic, e.sentiment) for e in load_file(path)] == [
        ("Contoso, Inc. beats", "Earnings", None), ("Fabrikam sinks", None, "negative")]


@pytest.mark.parametrize("label, shown", [
    ('{"name": "Earnings"}', "dict {'name': 'Earnings'}"), ("true", "bool True"), ("7.5", "float 7.5"),
    ("[]", "list []"),
])
def test_a_json_label_that_is_not_a_string_is_refused(tmp_path: Path, label: str, shown: str) -> None:
    path = write(tmp_path / "odd.jsonl", '{"text": "Contoso beats", "topic": "Earnings"}\n\n'
                                         f'{{"text": "Fabrikam", "topic": {label}}}\n')
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: row 3: 'topic' is {re.escape(shown)}, not text"):
        load_file(path)


def test_a_sentiment_code_from_the_twitter_set_still_reads(tmp_path: Path) -> None:
    path = write(tmp_path / "codes.jsonl", '{"text": "Contoso sinks", "sentiment": 0}\n{"text": "Fabrikam soars", "sentiment": 1}\n')
    assert [e.sentiment for e in load_file(path)] == ["negative", "positive"]
    write(path, '{"text": "Contoso sinks", "sentiment": false}\n')
    with pytest.raises(DataError, match="row 1: 'sentiment' is bool False, not text"):
        load_file(path)


def test_a_whole_number_label_reads_as_a_csv_cell_would(tmp_path: Path) -> None:
    # topic 7 in CSV is the topic "7"; so in JSON Lines and Parquet. A sentiment code may be 1.0 (a
    # column with gaps holds it so).
    path = write(tmp_path / "n.jsonl", '{"text": "Contoso beats", "topic": 7}\n{"text": "Fabrikam", "topic": 7, '
                                       '"sentiment": 1.0}\n{"text": "Globex", "topic": "7", "sentiment": 2}\n')
    assert [(e.topic, e.sentiment) for e in load_file(path)] == [("7", None), ("7", "positive"), ("7", "neutral")]
    write(path, '{"text": "Contoso sinks", "sentiment": 0.5}\n')
    with pytest.raises(DataError, match="row 1: 'sentiment' is float 0.5, not a sentiment: use negative, neutral or "
                                        "positive \\(or the codes 0, 1, 2\\)"):
        load_file(path)


# Changed expectation (an integral float topic read as its whole number): JSON 1.0 became the topic "1"
# where a CSV cell "1.0" stays "1.0", and 1e20 became "100000000000000000000".
@pytest.mark.parametrize("topic, shown", [("1.0", "float 1.0"), ("1e20", "float 1e+20"), ("7.5", "float 7.5")])
def test_a_topic_that_is_a_json_float_is_refused(tmp_path: Path, topic: str, shown: str) -> None:
    path = write(tmp_path / "f.jsonl", f'{{"text": "Contoso beats", "topic": {topic}}}\n')
    with pytest.raises(DataError, match=f"row 1: 'topic' is {re.escape(shown)}, not text: write the label as a string$"):
        load_file(path)


@pytest.mark.parametrize("sentiment", ["3", "-1", "2.5", "1e20", "3.0"])
def test_a_sentiment_number_other_than_the_codes_is_refused(tmp_path: Path, sentiment: str) -> None:
    path = write(tmp_path / "s.jsonl", f'{{"text": "Contoso beats", "sentiment": {sentiment}}}\n')
    with pytest.raises(DataError, match="row 1: 'sentiment' is .*, not a sentiment: use negative, neutral or positive"):
        load_file(path)
    write(path, '{"text": "a", "sentiment": 0.0}\n{"text": "b", "sentiment": 2}\n')
    assert [e.sentiment for e in load_file(path)] == ["negative", "neutral"]


def test_whole_number_labels_read_from_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "n.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "Contoso beats", "topic": 3, "sentiment": 1.0},
                                         {"text": "Fabrikam sinks", "topic": None, "sentiment": 0.0}]), path)
    assert [(e.topic, e.sentiment) for e in load_file(path)] == [("3", "positive"), (None, "negative")]


def test_jsonl_label_errors_name_the_physical_line(tmp_path: Path) -> None:
    path = write(tmp_path / "fb.jsonl", '{"text": "Contoso", "topic": "Earnings"}\n\n\n'
                                        '{"text": "Fabrikam", "topic": "IPO"}\n{"text": "Fabrikam", "sentiment": "meh"}\n')
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: row 5: unknown sentiment 'meh'"):
        load_file(path)
    write(path, '{"text": "Contoso", "topic": "Earnings"}\n\n\n{"text": "Fabrikam", "topic": "IPO"}\n')
    with pytest.raises(DataError, match="^fb.jsonl: row 4: unknown topic 'IPO'"):
        LabelMaps(topics=["Earnings"]).check(load_file(path), "fb.jsonl")


def test_evaluate_checks_labels_before_inference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import models.evaluate

    def no_inference(*_: object) -> None:
        raise AssertionError("inference ran before the labels were checked")

    monkeypatch.setattr(models.evaluate, "logits_for", no_inference)
    model = tmp_path / "model"
    model.mkdir()
    (model / "labels.json").write_text(json.dumps(LabelMaps(topics=["Earnings", "Macro"]).to_json()))
    good = write(tmp_path / "good.csv", "text,topic\nContoso beats,Earnings\n")
    bad = write(tmp_path / "bad.csv", "text,topic\nFed holds,Macro\nFabrikam beats,earnings\n")
    with pytest.raises(DataError, match=f"^{re.escape(str(bad))}: row 2: unknown topic 'earnings'; the model knows \\['Earnings'"):
        models.evaluate.evaluate(model, [str(good), str(bad)])
