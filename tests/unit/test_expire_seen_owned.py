"""classify's `expire_seen` forgets only the ids of partitions this worker owns.

It deleted every expired id in its copy of the table, standby copies of other workers' partitions
included: a standby copy may be behind its owner (an id seen again after its TTL), and the deletion
was written into the owner's changelog, so after the next recovery the id was gone and its repeat
scored again."""

from __future__ import annotations

import asyncio
import time

import pytest

from streams.agents import classify
from streams.failures import TIMERS
from streams.ownership import key_partition


class SeenCopy(dict):
    """The parts of the seen-ids table `expire_seen` uses, with both active and standby keys."""

    changelog_topic = classify.seen.changelog_topic


def test_only_expired_ids_of_owned_partitions_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    old, fresh = time.time() - classify.settings.dedupe_ttl - 60, time.time()
    keys = [f"story-{n}".encode() for n in range(40)]
    table = SeenCopy({key: old for key in keys} | {b"story-fresh": fresh})
    monkeypatch.setattr(classify, "seen", table)
    partition = {key: key_partition(key) for key in keys}
    mine = {p for p in partition.values() if p % 2 == 0}
    monkeypatch.setattr(classify, "owns", lambda topic, p: topic == classify.clean_topic.get_topic_name() and p in mine)
    assert {p % 2 for p in partition.values()} == {0, 1}, "the ids must fall in owned and standby partitions"

    asyncio.run(TIMERS["classify-expire-seen"]())  # the body: the @app.timer wrapper loops

    assert set(table) == {key for key in keys if partition[key] not in mine} | {b"story-fresh"}
