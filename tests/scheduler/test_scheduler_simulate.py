from datetime import timedelta

import pytest

from scheduler import SchedulerPolicy
from scheduler.simulate import SimConfig, compare, gini


def test_gini_is_zero_when_even_and_grows_with_concentration():
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)
    assert gini([0, 0]) == 0.0


def test_one_day_compares_all_policies_on_the_same_arrivals():
    # A short retention makes the engine forget machine-closed cases mid-run: the count must not move.
    results = compare(SimConfig(seed=3, days=1), SchedulerPolicy(retain_closed=timedelta(hours=1)))
    assert [m.policy for m in results] == ["optimal", "round_robin", "least_loaded"]
    assert len({(m.cases, m.auto_resolved) for m in results}) == 1 and results[0].cases > 100
    assert results[0].auto_resolved > 50
    for m in results:
        assert m.still_open <= 2 and 0 < m.utilisation < 1.2 and 0 <= m.breach_rate <= 1
