"""Silence matchers run on RE2: a pattern from any silence author can't stall the worker."""

from __future__ import annotations

import pytest

from alerts.silences import MAX_REGEX_LENGTH, Matcher


def test_a_catastrophic_backtracking_pattern_matches_in_linear_time() -> None:
    # Python's re needs minutes for one of these (nested stars, then a failing tail); RE2 never
    # backtracks. If this ran on a backtracking engine, pytest-timeout would end the test.
    matcher = Matcher("scope", "(?:.*){15}Z", is_regex=True)
    for n in range(200):
        assert not matcher.matches({"scope": "a" * 5000 + str(n)})
    assert matcher.matches({"scope": "a" * 5000 + "Z"})


def test_backreferences_are_refused_as_RE2_has_none() -> None:
    with pytest.raises(ValueError, match="invalid regex"):
        Matcher("scope", r"(a)\1", is_regex=True)


def test_an_over_long_pattern_is_refused_with_the_limit() -> None:
    with pytest.raises(ValueError, match=f"the limit is {MAX_REGEX_LENGTH}"):
        Matcher("scope", "a" * (MAX_REGEX_LENGTH + 1), is_regex=True)
