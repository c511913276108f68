"""Choosing which int8 predictions to re-check, and how far from fp32 the result may stay."""

import numpy as np
import pytest

from models.recheck import agreement_after_recheck, choose_margin, top2_margin, uncertain


def test_top2_margin_is_best_minus_runner_up_per_row():
    logits = np.array([[0.0, 3.0, 1.0], [2.0, 2.0, -1.0], [-5.0, -4.5, -9.0]])
    assert top2_margin(logits).tolist() == pytest.approx([2.0, 0.0, 0.5])


def test_a_row_is_uncertain_when_either_head_is_close():
    topic = np.array([[5.0, 0.0], [5.0, 0.0], [0.1, 0.0]])
    sentiment = np.array([[3.0, 0.0, 0.0], [0.2, 0.0, 0.0], [3.0, 0.0, 0.0]])
    assert uncertain(topic, sentiment, 0.5).tolist() == [False, True, True]
    assert not uncertain(topic, sentiment, 0.0).any()


def _pair(n: int, seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """fp32 logits and an int8-like copy perturbed by up to 0.4 per logit."""
    rng = np.random.default_rng(seed)
    ref = (rng.normal(0, 1.5, (n, 6)), rng.normal(0, 1.5, (n, 3)))
    noisy = tuple(r + rng.uniform(-0.4, 0.4, r.shape) for r in ref)
    return noisy, ref  # type: ignore[return-value]


def test_rechecking_every_close_call_restores_full_agreement():
    int8, ref = _pair(4000, 1)
    bare_topic, bare_sentiment, none = agreement_after_recheck(int8, ref, 0.0)
    assert none == 0.0 and min(bare_topic, bare_sentiment) < 0.99  # the perturbation does flip labels
    # a flip needs the int8 margin below twice the largest perturbation
    topic, sentiment, share = agreement_after_recheck(int8, ref, 0.8)
    assert topic == sentiment == 1.0 and 0 < share < 1


def test_the_chosen_margin_is_the_smallest_that_meets_the_target():
    int8, ref = _pair(4000, 2)
    grid = (0.05, 0.1, 0.2, 0.4, 0.8)
    margin = choose_margin(int8, ref, grid, target=0.995)
    assert min(agreement_after_recheck(int8, ref, margin)[:2]) >= 0.995
    smaller = [g for g in grid if g < margin]
    assert all(min(agreement_after_recheck(int8, ref, g)[:2]) < 0.995 for g in smaller)


def test_an_unreachable_target_falls_back_to_the_widest_margin():
    int8, ref = _pair(500, 3)
    assert choose_margin(int8, ref, (0.01, 0.02), target=1.0) == 0.02
