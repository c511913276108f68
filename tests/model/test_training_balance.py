"""Source-balanced sampling and the early-stopping score (issue 14): pure functions, no model."""

import random

import pytest

from models.train import balanced_epoch, combined_score, source_shares


def test_source_shares_temperature():
    assert source_shares([900, 100], 1.0) == pytest.approx([0.9, 0.1])
    assert source_shares([900, 100], 0.0) == pytest.approx([0.5, 0.5])
    assert source_shares([900, 100], 0.5) == pytest.approx([0.75, 0.25])


def test_balanced_epoch_sizes_and_full_passes():
    big, small = list(range(900)), list(range(900, 1000))
    epoch = balanced_epoch([big, small], 0.5, random.Random(1))
    assert len(epoch) == 1000
    from_small = [i for i in epoch if i >= 900]
    assert len(from_small) == 250
    # the small source is cycled in whole passes: every row twice, half of them a third time
    counts = {i: from_small.count(i) for i in small}
    assert set(counts.values()) <= {2, 3} and sum(counts.values()) == 250
    from_big = [i for i in epoch if i < 900]
    assert len(from_big) == 750 and len(set(from_big)) == 750  # sub-sampled without replacement


def test_combined_score_weighs_each_dev_file_equally():
    per_file = {
        "tweets_topic.csv": {"topic": {"macro_f1": 0.9}},
        "tweets_sentiment.csv": {"sentiment": {"macro_f1": 0.8}},
        "formal_dev.csv": {"topic": {"macro_f1": 0.6}, "sentiment": {"macro_f1": 0.4}},
    }
    assert combined_score(per_file) == pytest.approx((0.9 + 0.8 + 0.5) / 3)
    assert combined_score(per_file, [1, 1, 2]) == pytest.approx((0.9 + 0.8 + 1.0) / 4)
