"""Consumer lag arithmetic and the lifecycle of its series, on a stand-in consumer.

The live tests (tests/integration/test_observability.py) see lag only once it has drained to 0,
because a small stream is processed within one refresh; these pin down the non-zero cases.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP
from prometheus_client import REGISTRY

from streams import health

RAW = "unit.news.raw"
CHANGELOG = "unit-seen-ids-changelog"


class StandInConsumer:
    """The parts of Faust's consumer that streams.health reads."""

    def __init__(self, ends: dict[TP, int | None], committed: dict[TP, int], earliest: dict[TP, int]) -> None:
        self.ends, self._committed_offset, self.earliest = ends, committed, earliest
        self.asked: list[TP] = []

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int | None:
        return self.ends[tp]

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        self.asked.extend(tps)
        return {tp: self.earliest[tp] for tp in tps}


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(health, "_reported", set())
    monkeypatch.setattr(health, "classifier", lambda: object())
    monkeypatch.setattr(health, "tables_recovered", lambda: True)

    def install(consumer: StandInConsumer) -> StandInConsumer:
        agents = {"ingest": SimpleNamespace(channel=SimpleNamespace(topics=(RAW,)))}
        monkeypatch.setattr(health, "app", SimpleNamespace(agents=agents, consumer=consumer))
        return consumer

    yield install
    install(StandInConsumer({}, {}, {}))
    asyncio.run(health.refresh())  # drop this test's series from the process-wide registry


def lag(partition: int) -> float | None:
    return REGISTRY.get_sample_value("finsentry_consumer_lag_records", {"topic": RAW, "partition": str(partition)})


def test_lag_counts_from_the_committed_offset_or_else_the_earliest(use):
    p = [TP(RAW, n) for n in range(4)]
    consumer = use(StandInConsumer(
        ends={p[0]: 10, p[1]: 7, p[2]: 0, p[3]: None, TP(CHANGELOG, 0): 50},
        committed={p[0]: 4}, earliest={p[1]: 3, p[2]: 0}))
    assert health.assigned_partitions() == set(p)  # the changelog partition is not an agent's
    assert asyncio.run(health.consumer_lag(health.assigned_partitions())) == {p[0]: 6, p[1]: 4, p[2]: 0}
    assert consumer.asked == [p[1]]  # an empty partition needs no broker round trip


def test_refresh_sets_gauges_and_drops_revoked_partitions(use):
    p0, p1 = TP(RAW, 0), TP(RAW, 1)
    use(StandInConsumer(ends={p0: 5, p1: 9}, committed={p0: 5, p1: 1}, earliest={}))
    asyncio.run(health.refresh())
    assert (lag(0), lag(1)) == (0, 8)
    assert REGISTRY.get_sample_value("finsentry_assigned_partitions") == 2
    assert REGISTRY.get_sample_value("finsentry_ready") == 1

    use(StandInConsumer(ends={p0: 6}, committed={p0: 5}, earliest={}))  # p1 revoked
    asyncio.run(health.refresh())
    assert (lag(0), lag(1)) == (1, None)
    assert REGISTRY.get_sample_value("finsentry_assigned_partitions") == 1

    use(StandInConsumer({}, {}, {}))  # all revoked: no partitions, not ready
    asyncio.run(health.refresh())
    assert lag(0) is None
    assert REGISTRY.get_sample_value("finsentry_ready") == 0
