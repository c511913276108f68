import json

import numpy as np
import pytest

from models.data import Columns, DataError, LabelMaps, load_file
from models.metrics import expected_calibration_error, report


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_and_jsonl_combine_with_missing_labels(tmp_path):
    topics = write(tmp_path / "t.csv", "text,topic\nAcme beats,Earnings\nFed holds,Fed | Central Banks\n")
    sentiment = write(tmp_path / "s.jsonl", '{"text": "Acme soars", "sentiment": "Bullish"}\n\n{"text": "Acme sinks", "sentiment": "negative"}\n')
    examples = [e for path in (topics, sentiment) for e in load_file(path)]
    assert [(e.topic, e.sentiment) for e in examples] == [
        ("Earnings", None), ("Fed | Central Banks", None), (None, "positive"), (None, "negative")]
    labels = LabelMaps.from_examples(examples)
    assert labels.topics == ["Earnings", "Fed | Central Banks"]
    assert LabelMaps.from_json(json.loads(json.dumps(labels.to_json()))) == labels


def test_custom_columns(tmp_path):
    path = write(tmp_path / "c.csv", "body,label\nAcme,Earnings\n")
    assert load_file(path, Columns(text="body", topic="label"))[0].topic == "Earnings"


@pytest.mark.parametrize("name, content, message", [
    ("empty.csv", "text,topic\n", "no rows"),
    ("nocol.csv", "headline,topic\nx,Earnings\n", "row 1: no 'text' column"),
    ("nolabel.csv", "text,other\nx,y\n", "neither a 'topic' nor a 'sentiment' column"),
    ("badsent.csv", "text,sentiment\nx,positive\ny,furious\n", "row 2: unknown sentiment 'furious'"),
    ("emptytext.csv", "text,topic\nx,Earnings\n ,Earnings\n", "row 2: empty or missing 'text'"),
    ("badjson.jsonl", '{"text": "x", "topic": "a"}\nnot json\n', "row 2: not JSON"),
    ("array.jsonl", '[1]\n', "row 1: expected a JSON object"),
    ("data.txt", "x", "unsupported file type"),
])
def test_loader_errors_name_file_and_row(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as err:
        load_file(path)
    assert message in str(err.value) and name in str(err.value)


def test_a_csv_with_a_byte_order_mark_and_padded_header_reads(tmp_path):
    # Excel writes the mark: `evaluate` and `train` then found a column "\ufefftext", and said to name "text"
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext , sentiment\r\nContoso cuts jobs,negative\r\n".encode())
    assert [(e.text, e.sentiment) for e in load_file(path)] == [("Contoso cuts jobs", "negative")]


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "absent.csv")
    (tmp_path / "latin.csv").write_bytes(b"text,topic\ncaf\xe9,Earnings\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load_file(tmp_path / "latin.csv")


def test_unknown_label_against_a_model(tmp_path):
    labels = LabelMaps(topics=["Earnings"])
    examples = load_file(write(tmp_path / "d.csv", "text,topic\nx,Earnings\ny,IPO\n"))
    with pytest.raises(DataError, match="row 2: unknown topic 'IPO'"):
        labels.check(examples, "d.csv")


def test_report_against_hand_computed_metrics():
    gold = np.array([0, 0, 1, 1, 2])
    probs = np.array([[.9, .1, 0], [.2, .8, 0], [0, 1, 0], [.6, .4, 0], [0, 0, 1]])
    r = report(["a", "b", "c"], gold, probs)
    assert r.accuracy == pytest.approx(3 / 5)
    assert r.confusion == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert [c.f1 for c in r.classes] == pytest.approx([0.5, 0.5, 1.0])
    assert r.macro_f1 == pytest.approx(2 / 3)
    # perfectly calibrated one-hot predictions have zero ECE; confident and wrong is maximal
    assert expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0], [0, 1.0]])) == 0
    assert expected_calibration_error(np.array([0, 1]), np.array([[0, 1.0], [1.0, 0]])) == pytest.approx(1.0)
