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


# The shipped default gets four of the five right; the narrowing loss it still reads as negative
# (issue 14 is open; docs/MODEL.md). strict: once a default that reads it right ships, the XPASS
# fails and the marker must go.
STILL_WRONG = {ISSUE_TABLE[0][0]: "issue 14: the shipped default reads a narrowing loss as negative"}


@pytest.mark.parametrize("headline, topic, sentiment", [
    pytest.param(h, t, s, id=h[:40], marks=[pytest.mark.xfail(strict=True, reason=STILL_WRONG[h])] if h in STILL_WRONG else [])
    for h, t, s in ISSUE_TABLE])
def test_shipped_model_labels_issue_table(predictions, headline, topic, sentiment):
    got = predictions[headline]
    if topic is not None:
        assert got["topic"] == topic, got
    if sentiment is not None:
        assert got["sentiment"] == sentiment, got
