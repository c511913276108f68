from datetime import timedelta

from scheduler.assignment import FreeAnalyst, WaitingCase
from scheduler.config import Weights
from scheduler.optimizer import optimal
from scheduler.policies import least_loaded, round_robin


def case(cid, seq, priority=4.0, levels=None, target=3, avoid=(), age_s=0.0, slack_s=0.0):
    return WaitingCase(cid, seq, priority, age_s, levels or {"a": 3, "b": 3}, target, frozenset(avoid), slack_s)


def free(aid, load=0, capacity=2, last=0, stale=False):
    return FreeAnalyst(aid, load, capacity, last, stale)


W = Weights()


def test_optimal_serves_the_highest_priority_weighted_waiting_when_capacity_is_short():
    waiting = [case("old-warning", 1, 4.0, age_s=600), case("new-critical", 2, 16.0), case("warning", 3, 4.0)]
    got = optimal(waiting, [free("a", capacity=1, load=0), free("b", capacity=1)], W)
    assert {c for c, _ in got} == {"new-critical", "old-warning"}  # 16 and 4*(1+600/600) beat 4


def test_optimal_matches_rare_skills_globally():
    # Greedy first-come takes b for case 1; the optimiser keeps b for the case only b can do.
    waiting = [case("1", 1, levels={"a": 3, "b": 5}), case("2", 2, levels={"b": 3})]
    analysts = [free("a", capacity=1), free("b", capacity=1)]
    assert sorted(optimal(waiting, analysts, W)) == [("1", "a"), ("2", "b")]
    assert len(least_loaded(waiting, analysts)) == 2


def test_optimal_prefers_skill_then_balances_and_avoids():
    assert optimal([case("x", 1, levels={"a": 2, "b": 4})], [free("a"), free("b")], W) == [("x", "b")]
    even = optimal([case(str(i), i) for i in range(4)], [free("a", capacity=4), free("b", capacity=4)], W)
    assert sorted(a for _, a in even) == ["a", "a", "b", "b"]
    assert optimal([case("x", 1, avoid={"a"})], [free("a"), free("b", load=1)], W) == [("x", "b")]
    assert optimal([case("x", 1, avoid={"a"}, levels={"a": 3})], [free("a")], W) == [("x", "a")]  # only option
    assert optimal([case("x", 1)], [free("a", stale=True), free("b", load=1)], W) == [("x", "b")]


def test_optimal_never_exceeds_free_slots_or_skills():
    waiting = [case(str(i), i, levels={"a": 1}) for i in range(5)]
    got = optimal(waiting, [free("a", load=1, capacity=3), free("b", capacity=5)], W)
    assert len(got) == 2 and all(a == "a" for _, a in got)
    assert optimal([], [free("a")], W) == [] and optimal(waiting, [], W) == []


def test_round_robin_rotates_and_least_loaded_fills_the_emptiest():
    waiting = [case(str(i), i) for i in range(3)]
    assert round_robin(waiting, [free("a", last=5), free("b", last=2)]) == [("0", "b"), ("1", "a"), ("2", "b")]
    got = least_loaded(waiting, [free("a", load=1, capacity=2), free("b", load=0, capacity=4)])
    assert got == [("0", "b"), ("1", "b"), ("2", "a")]


def test_weights_wait_unit_is_what_turns_age_into_priority():
    slow = Weights(wait_unit=timedelta(hours=10))
    waiting = [case("old", 1, 4.0, age_s=600), case("new", 2, 5.0)]
    assert optimal(waiting, [free("a", capacity=1)], W) == [("old", "a")]
    assert optimal(waiting, [free("a", capacity=1)], slow) == [("new", "a")]


def test_optimal_serves_what_can_still_make_its_sla_before_what_already_missed_it():
    # The breached warning has waited an hour and been escalated (priority 8); the fresh one can
    # still be acknowledged in time, so with one slot it goes first. Without the rescue factor, age wins.
    waiting = [case("breached", 1, 8.0, age_s=3600, slack_s=-1800), case("fresh", 2, 4.0, slack_s=1700)]
    assert optimal(waiting, [free("a", capacity=1)], W) == [("fresh", "a")]
    assert optimal(waiting, [free("a", capacity=1)], Weights(rescue=1.0)) == [("breached", "a")]
    # With room for both, both are served: the factor orders cases, it never leaves capacity idle.
    assert len(optimal(waiting, [free("a", capacity=2)], W)) == 2
