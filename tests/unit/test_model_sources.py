"""The model card's data attribution (models/sources.py): FinEntity's ODC-BY licence requires it."""

from models.sources import attributions


def test_each_known_source_once_with_its_licence_and_unknown_files_named():
    got = attributions(["../shared/data/finentity-sentences/train.csv", "/data/finentity-sentences/train.csv",
                        "shared/data/twitter-financial-news-sentiment/train.csv", "runs/formal_augment3.csv",
                        "models/data/formal/train.csv", "exports/feedback.jsonl"])
    assert [g["licence"] for g in got] == ["ODC-BY 1.0", "MIT", "Apache-2.0", "Apache-2.0", "unknown"]
    assert "Tang et al." in got[0]["attribution"] and "FinEntity" in got[0]["name"]
    assert got[-1]["name"] == "exports/feedback.jsonl"


def test_look_alike_files_are_not_given_a_licence():
    got = attributions(["mydata/formal_augment_from_scraped_wires.csv", "feedback/twitter-financial-news-topic-relabelled.csv",
                        "models/data/formal/../../../private/x.csv", "../shared/data/finentity-sentences/extra.csv"])
    assert [g["licence"] for g in got] == ["unknown"] * 4
