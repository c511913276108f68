"""Consumer lag arithmetic and the lifecycle of its series, on a stand-in consumer.

The live tests (tests/integration/test_observability.py) see lag only once it has drained to 0,
because a small stream is processed within one refresh; these pin down the non-zero cases.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.types import TP
from prometheus_client import REGISTRY

from streams import health

RAW = "unit.news.raw"
CHANGELOG = "unit-seen-ids-changelog"


class StandInConsumer:
    """The parts of Faust's consumer that streams.health reads."""

    def __init__(self, ends: dict[TP, int | None], committed: dict[TP, int], earliest: dict[TP, int],
                 unacked: list[tuple[TP, int]] = (), acked: dict[TP, list[int]] | None = None,
                 positions: dict[TP, int | None] | None = None, handed: dict[TP, int] | None = None) -> None:
        self.ends, self._committed_offset, self.earliest = ends, committed, earliest
        self._unacked_messages = [SimpleNamespace(tp=tp, offset=offset) for tp, offset in unacked]
        self._acked = acked or {}
        self.positions = positions or {}
        self._handed = handed or {}
        self.asked: list[TP] = []
        self.broker_away = False

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int | None:
        return self.ends[tp]

    def fetch_position(self, tp: TP) -> int | None:
        return self.positions.get(tp)

    def handed(self, tp: TP) -> int | None:
        return self._handed.get(tp)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        self.asked.extend(tps)
        if self.broker_away:
            raise KafkaTimeoutError()
        return {tp: self.earliest[tp] for tp in tps}


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(health, "_reported", set())
    monkeypatch.setattr(health, "_progress", {})
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
    spans = asyncio.run(health.offsets(health.assigned_partitions()))
    assert {tp: span.lag for tp, span in spans.items()} == {p[0]: 6, p[1]: 4, p[2]: 0}
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


def stalled_for(partition: int) -> float | None:
    return REGISTRY.get_sample_value("finsentry_consumer_stalled_seconds", {"topic": RAW, "partition": str(partition)})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(health, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_an_agent_stuck_on_a_record_is_stalled_and_not_ready_until_its_offset_moves(use, clock):
    """The review's finding: a stream that stopped consuming froze its partition's end offset, so lag
    stayed flat and /readyz stayed ready. Records read and not committed, with the committed offset
    still, is the stall; moving again clears it."""
    p0 = TP(RAW, 0)
    consumer = use(StandInConsumer(ends={p0: 50}, committed={p0: 10}, earliest={}, unacked=[(p0, 10), (p0, 11)]))
    limit = health.settings.consumer_stall_seconds
    asyncio.run(health.refresh())
    assert stalled_for(0) == 0 and health.readiness()["partitions_progressing"]
    clock[0] += limit / 2
    asyncio.run(health.refresh())
    assert stalled_for(0) == limit / 2 and REGISTRY.get_sample_value("finsentry_ready") == 1
    clock[0] += limit / 2 + 1
    asyncio.run(health.refresh())
    assert stalled_for(0) == limit + 1
    assert REGISTRY.get_sample_value("finsentry_ready") == 0
    assert health.readiness()["partitions_progressing"] is False and list(health.stalled()) == [p0]

    consumer._committed_offset[p0] = 11  # one more record finished
    asyncio.run(health.refresh())
    assert stalled_for(0) == 0 and REGISTRY.get_sample_value("finsentry_ready") == 1


def test_lag_with_nothing_left_to_read_or_to_finish_is_not_a_stall(use, clock):
    """Offsets that hold no record keep a commit below them until a record follows: p0 ends in two
    transactions' commit markers (the consumer has read past them, the last record it handed on is
    committed); retention trimmed p1 past its committed offset and the consumer reset to the new
    start; p2's only message in hand is below the committed offset (a weak set the consumer has not
    dropped yet). None has work left, however long it sits idle."""
    p0, p1, p2 = TP(RAW, 0), TP(RAW, 1), TP(RAW, 2)
    use(StandInConsumer(ends={p0: 52, p1: 900, p2: 60}, committed={p0: 50, p1: 10, p2: 59}, earliest={},
                        unacked=[(p2, 49)], acked={p1: []}, positions={p0: 52, p1: 900, p2: 60},
                        handed={p0: 50, p2: 59}))
    for _ in range(3):
        asyncio.run(health.refresh())
        clock[0] += health.settings.consumer_stall_seconds
    assert (lag(0), lag(1), lag(2)) == (2, 890, 1)
    assert (stalled_for(0), stalled_for(1), stalled_for(2)) == (0, 0, 0)
    assert REGISTRY.get_sample_value("finsentry_ready") == 1


@pytest.mark.parametrize(("read", "handed", "why"), [
    (10, None, "fetched and never handed on: a partition Faust no longer takes records from"),
    (160, 160, "handed on past the committed offset and held by no stream: dropped on the way"),
])
def test_lag_nobody_is_working_on_stalls_a_partition(use, clock, read, handed, why):
    """CI saw it: a restarted worker left two news.clean partitions at lag ~150 for 13 minutes with
    nothing in hand, while /readyz said ready and the stall gauge read 0. A look at which the
    consumer's position is being reset neither starts nor stops the clock."""
    p0 = TP(RAW, 0)
    consumer = use(StandInConsumer(ends={p0: 160}, committed={p0: 10}, earliest={}, positions={p0: read},
                                   handed={p0: handed} if handed is not None else {}))
    limit = health.settings.consumer_stall_seconds
    asyncio.run(health.refresh())
    clock[0] += limit / 2
    consumer.positions[p0] = None
    asyncio.run(health.refresh())
    assert stalled_for(0) == limit / 2, why
    consumer.positions[p0] = read
    clock[0] += limit / 2 + 1
    asyncio.run(health.refresh())
    assert stalled_for(0) == limit + 1, why
    assert REGISTRY.get_sample_value("finsentry_ready") == 0 and list(health.stalled()) == [p0]

    consumer._committed_offset[p0] = 60  # it moves again: the clock restarts
    asyncio.run(health.refresh())
    assert stalled_for(0) == 0 and REGISTRY.get_sample_value("finsentry_ready") == 1


def test_a_look_the_broker_fails_keeps_the_clock_of_a_partition_never_committed(use, clock):
    """Its start offset comes from the broker each look; a look that cannot read it dropped the
    partition's clock, so a fresh group's stall (the likeliest kind) restarted at every hiccup."""
    p0 = TP(RAW, 0)
    consumer = use(StandInConsumer(ends={p0: 50}, committed={}, earliest={p0: 0}, positions={p0: 0}))
    limit = health.settings.consumer_stall_seconds
    asyncio.run(health.refresh())
    clock[0] += limit / 2
    consumer.broker_away = True
    asyncio.run(health.refresh())
    assert lag(0) == 50  # as of the last look that could tell
    consumer.broker_away = False
    clock[0] += limit / 2 + 1
    asyncio.run(health.refresh())
    assert stalled_for(0) == limit + 1 and list(health.stalled()) == [p0]


def test_a_partition_not_fetched_since_a_rebalance_kept_it_loses_its_clock(use, clock):
    """A rebalance that keeps a partition on this worker forgets its high-water mark until the first
    fetch: it cannot be judged, so it is dropped, not kept running towards a stall it does not owe."""
    p0 = TP(RAW, 0)
    consumer = use(StandInConsumer(ends={p0: 50}, committed={p0: 10}, earliest={}, positions={p0: 10}))
    asyncio.run(health.refresh())
    consumer.ends[p0] = None
    clock[0] += health.settings.consumer_stall_seconds + 1
    asyncio.run(health.refresh())
    assert stalled_for(0) is None and not health.stalled() and REGISTRY.get_sample_value("finsentry_ready") == 1


def test_partitions_waiting_behind_a_stuck_agent_are_not_named_while_it_is(use, clock):
    """Faust delivers every topic through one loop: a stuck agent's full stream blocks it, and the
    records of every other partition wait fetched or handed on. /readyz names the partition whose
    records are held; the gauge still shows how long each has waited."""
    p0, p1 = TP(RAW, 0), TP(RAW, 1)
    use(StandInConsumer(ends={p0: 50, p1: 80}, committed={p0: 10, p1: 20}, earliest={}, unacked=[(p0, 10)],
                        positions={p1: 30}, handed={p1: 30}))
    asyncio.run(health.refresh())
    clock[0] += health.settings.consumer_stall_seconds + 1
    asyncio.run(health.refresh())
    assert stalled_for(0) == stalled_for(1) == health.settings.consumer_stall_seconds + 1
    assert list(health.stalled()) == [p0]


def test_the_position_is_read_from_aiokafkas_own_subscription_state():
    """`position_of` reaches into aiokafka's private state: this pins the path against the installed
    aiokafka, so a rename fails here rather than switching the stall check off."""
    from aiokafka.consumer.subscription_state import SubscriptionState
    from aiokafka.structs import TopicPartition

    from streams.consumer import position_of

    async def positions() -> list[int | None]:  # aiokafka's state makes futures: it needs a running loop
        kafka = SimpleNamespace(_subscription=SubscriptionState())
        seen = [position_of(kafka, TP(RAW, 0))]  # nothing assigned yet
        kafka._subscription.assign_from_user({TopicPartition(RAW, 0)})
        seen.append(position_of(kafka, TP(RAW, 0)))  # assigned, position not known yet
        kafka._subscription.seek(TopicPartition(RAW, 0), 42)
        return [*seen, position_of(kafka, TP(RAW, 0)), position_of(kafka, TP(RAW, 1))]

    # Faust's TP finds aiokafka's TopicPartition; partition 1 is not assigned
    assert asyncio.run(positions()) == [None, None, 42, None]


def test_no_partition_stalls_while_tables_recover_and_a_revoked_ones_series_go(use, clock, monkeypatch):
    p0 = TP(RAW, 0)
    use(StandInConsumer(ends={p0: 50}, committed={p0: 10}, earliest={}, acked={p0: [12, 13]}))
    monkeypatch.setattr(health, "tables_recovered", lambda: False)
    for _ in range(3):
        asyncio.run(health.refresh())
        clock[0] += health.settings.consumer_stall_seconds
    assert stalled_for(0) == 0
    use(StandInConsumer({}, {}, {}))
    asyncio.run(health.refresh())
    assert stalled_for(0) is None and health._progress == {}
