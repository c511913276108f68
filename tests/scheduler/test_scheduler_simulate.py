import pytest

from scheduler.simulate import SimConfig, compare, gini


def test_gini_is_zero_when_even_and_grows_with_concentration():
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)
    assert gini([0, 0]) == 0.0


def test_one_day_compares_all_policies_on_the_same_arrivals():
    results = compare(SimConfig(seed=3, days=1))
    assert [m.policy for m in results] == ["optimal", "round_robin", "least_loaded"]
    assert len({(m.cases, m.auto_resolved) for m in results}) == 1 and results[0].cases > 100
    for m in results:
        assert m.unfinished <= 2 and 0 < m.utilisation < 1.2 and 0 <= m.breach_rate <= 1
