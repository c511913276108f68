"""A lone surrogate escape in news.raw costs one character, never the story or its batch-mates."""

from __future__ import annotations

import json

from models.runtime import Classifier, default_model_dir
from streams.validation import Story, validate


def test_a_lone_surrogate_is_replaced_and_the_story_kept() -> None:
    raw = b'{"id": "s1", "headline": "Contoso \\ud800 shares rise", "body": "half \\udfff pair", "tickers": ["CTSO"]}'
    story = validate(raw, 1_700_000_000.0)
    assert isinstance(story, Story)
    assert story.headline == "Contoso \ufffd shares rise" and story.body == "half \ufffd pair"
    json.dumps(story.to_json(), ensure_ascii=False).encode("utf-8")  # encodable end to end
    assert story.tickers == ["CTSO"]


def test_a_proper_surrogate_pair_is_the_character_it_spells() -> None:
    story = validate(b'{"headline": "Rocket \\ud83d\\ude80 maker lists"}', 1_700_000_000.0)
    assert isinstance(story, Story) and story.headline == "Rocket \U0001F680 maker lists"


def test_the_model_scores_the_scrubbed_story_with_its_batch() -> None:
    model = Classifier.load(default_model_dir(), "cpu", "int8")
    story = validate(b'{"headline": "Fabrikam \\ud800 profit falls"}', 1_700_000_000.0)
    assert isinstance(story, Story)
    predictions = model.predict(["Contoso opens a plant", story.headline, "Woodgrove Bank cuts jobs"])
    assert len(predictions) == 3
