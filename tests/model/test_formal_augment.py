"""The template augmentation (scripts/formal_augment.py): a training source that covers every topic
with both outcomes, reads as English, and never repeats a row of the formal dev or test part."""

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from scripts.formal_augment import agree

ROOT = Path(__file__).resolve().parents[2]
FORMAL = ROOT / "models" / "data" / "formal"


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("augment") / "aug.csv"
    subprocess.run([sys.executable, "scripts/formal_augment.py", "--count", "4000", "--seed", "3", "--out", str(out)],
                   check=True, cwd=ROOT, timeout=120)
    return rows(out)


@pytest.mark.parametrize("subject, verb, expected", [
    ("retail sales", "beats", "beat"), ("net income", "beats", "beats"), ("jobless claims", "falls short of", "fall short of"),
    ("earnings", "surpasses", "surpass"), ("input costs", "eases", "ease"), ("consumer prices", "slumps", "slump"),
    ("inflation", "rises", "rises"), ("layoffs", "flies", "fly"), ("German exports", "jumps", "jump"),
    ("factory orders", "rises", "rise"),
])
def test_verbs_agree_with_plural_subjects(subject, verb, expected):
    assert agree(subject, verb) == expected


def test_every_topic_of_the_formal_set_with_both_outcomes(generated):
    topics = {r["topic"] for r in rows(FORMAL / "train.csv")}
    by_topic = Counter((r["topic"], r["sentiment"]) for r in generated)
    for topic in topics:
        assert by_topic[(topic, "positive")] > 0 and by_topic[(topic, "negative")] > 0, topic
    assert {r["topic"] for r in generated} <= topics


def test_no_row_of_the_formal_dev_or_test_part_is_generated(generated):
    texts = {r["text"].lower() for r in generated}
    for part in ("dev", "test"):
        assert not texts & {r["text"].lower() for r in rows(FORMAL / f"{part}.csv")}, part


def test_rows_are_unique_and_the_seed_fixes_them(generated, tmp_path):
    assert len({r["text"].lower() for r in generated}) == len(generated) == 4000
    again = tmp_path / "again.csv"
    subprocess.run([sys.executable, "scripts/formal_augment.py", "--count", "4000", "--seed", "3", "--out", str(again)],
                   check=True, cwd=ROOT, timeout=120)
    assert rows(again) == generated
    assert not any("s's " in r["text"] or " the the " in r["text"] for r in generated)
