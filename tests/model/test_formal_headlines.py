"""The shipped model on the formal headlines of issue 14, through `finsentry classify`.

Each headline stands for a kind the tweet-only model got wrong: narrowing losses, quantities that
are good news when they fall, insolvency, and results that belong to the Earnings topic. These
rows sit in the test part of the project's formal set (models/data/formal/test.csv), which no
model is trained or tuned on.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# headline, expected topic (None: not judged), expected sentiment
ISSUE_TABLE = [
    ("Northwind Traders net loss narrowed to $3 million from $40 million a year earlier", None, "positive"),
    ("US jobless claims fall more than expected", None, "positive"),
    ("US jobless claims rise more than expected", None, "negative"),
    ("Woodgrove Bank files for Chapter 11 bankruptcy protection", None, "negative"),
    ("Contoso third-quarter profit beats estimates", "Earnings", None),
]


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    src = tmp_path_factory.mktemp("issue14") / "headlines.csv"
    with src.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text"])
        writer.writerows([h] for h, _, _ in ISSUE_TABLE)
    out = subprocess.run([sys.executable, "-m", "streams.cli", "classify", "--device", "cpu", str(src)],
                         capture_output=True, text=True, check=False, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return {r["text"]: r for r in rows}


def test_issue_table_headlines_are_in_the_formal_test_part():
    with (ROOT / "models" / "data" / "formal" / "test.csv").open(newline="", encoding="utf-8") as fh:
        test_texts = {row["text"] for row in csv.DictReader(fh)}
    for part in ("train", "dev"):
        with (ROOT / "models" / "data" / "formal" / f"{part}.csv").open(newline="", encoding="utf-8") as fh:
            assert not test_texts & {row["text"] for row in csv.DictReader(fh)}, part
    for headline, _, _ in ISSUE_TABLE:
        assert headline in test_texts, headline


@pytest.mark.parametrize("headline, topic, sentiment", [pytest.param(h, t, s, id=h[:40]) for h, t, s in ISSUE_TABLE])
def test_shipped_model_labels_issue_table(predictions, headline, topic, sentiment):
    got = predictions[headline]
    if topic is not None:
        assert got["topic"] == topic, got
    if sentiment is not None:
        assert got["sentiment"] == sentiment, got


def test_classify_reads_social_posts_with_the_shipped_social_model(predictions, tmp_path):
    """`--style social` sends every text to the model directory's social model (card.json
    `style_models`): its answers are that model's own, run alone."""
    card = json.loads((ROOT / "models" / "default" / "card.json").read_text())
    social = ROOT / "models" / "default" / card["style_models"]["social"]

    def classify(*args: str) -> dict:
        src = tmp_path / "headlines.csv"
        src.write_text("text\n" + "".join(f'"{h}"\n' for h, _, _ in ISSUE_TABLE), encoding="utf-8")
        out = subprocess.run([sys.executable, "-m", "streams.cli", "classify", "--device", "cpu", *args, str(src)],
                             capture_output=True, text=True, check=False, timeout=300, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        return {r["text"]: (r["topic"], r["sentiment"], r["sentiment_score"]) for r in map(json.loads, out.stdout.splitlines())}

    as_posts = classify("--style", "social")
    assert as_posts == classify("--model", str(social))
    assert as_posts != {text: (r["topic"], r["sentiment"], r["sentiment_score"]) for text, r in predictions.items()}


def test_classify_reads_each_row_in_its_own_style_and_names_a_style_it_does_not_know(predictions, tmp_path):
    """A `style` column (any case) sends its row to that style's model, whatever `--style` says; a
    value that is no style reads the row as `--style` and is named in one warning line."""
    card = json.loads((ROOT / "models" / "default" / "card.json").read_text())
    social = ROOT / "models" / "default" / card["style_models"]["social"]
    src = tmp_path / "mixed.csv"
    with src.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "Style"])
        writer.writerows([h, style] for (h, _, _), style in zip(ISSUE_TABLE, ["Social", "newswire", "", "blog", "social"],
                                                               strict=True))
    mixed = subprocess.run([sys.executable, "-m", "streams.cli", "classify", "--device", "cpu", str(src)],
                           capture_output=True, text=True, check=False, timeout=300, cwd=ROOT)
    assert mixed.returncode == 0, mixed.stderr
    assert "1 row(s) name a style that is not newswire or social, read as newswire (--style): line 5 'blog'" \
        in mixed.stderr
    plain = tmp_path / "plain.csv"
    plain.write_text("text\n" + "".join(f'"{h}"\n' for h, _, _ in ISSUE_TABLE), encoding="utf-8")
    as_posts = subprocess.run([sys.executable, "-m", "streams.cli", "classify", "--device", "cpu", "--model", str(social),
                               str(plain)], capture_output=True, text=True, check=True, timeout=300, cwd=ROOT)
    post = {r["text"]: r for r in map(json.loads, as_posts.stdout.splitlines())}
    rows = [json.loads(line) for line in mixed.stdout.splitlines()]
    assert [r["style"] for r in rows] == ["social", "newswire", "newswire", "newswire", "social"]
    key = ("topic", "sentiment", "sentiment_score")
    assert any([post[r["text"]][k] for k in key] != [predictions[r["text"]][k] for k in key]
               for r in rows if r["style"] == "social"), "the two models agree on the social rows: no test of routing"
    for row in rows:
        expected = post[row["text"]] if row["style"] == "social" else predictions[row["text"]]
        assert (row["topic"], row["sentiment"], row["sentiment_score"]) == \
            (expected["topic"], expected["sentiment"], expected["sentiment_score"]), row


def test_classify_with_a_model_that_reads_every_style_alike_does_not_read_the_style_column(tmp_path):
    card = json.loads((ROOT / "models" / "default" / "card.json").read_text())
    social = ROOT / "models" / "default" / card["style_models"]["social"]  # a plain model: no markers, no parts
    src = tmp_path / "styled.csv"
    src.write_text("text,style\nKestrel Air shares slide,bold\nKestrel Air shares jump,social\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "streams.cli", "classify", "--device", "cpu", "--model", str(social),
                          str(src)], capture_output=True, text=True, check=False, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "style" not in out.stderr.replace("--style", "")  # no warning about a column nothing reads
    assert [json.loads(line)["style"] for line in out.stdout.splitlines()] == [None, None]
