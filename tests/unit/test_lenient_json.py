"""The codec of every JSON value and of news.by-scope's keys (streams/lenient_json.py): Faust's JSON,
except that bytes it cannot decode come back as bytes, for the agent to dead-letter, instead of an
error that Faust acknowledges and logs (and that ends the classify or monitor agent's batch reader)."""

from __future__ import annotations

import inspect
import re

import pytest
from faust.serializers import codecs

from streams.lenient_json import NAME


@pytest.mark.parametrize("value", [{"id": "a", "headline": "Contoso beats estimates"}, [1, 2], "text", 3])
def test_encodes_and_decodes_as_faust_json(value: object) -> None:
    assert codecs.dumps(NAME, value) == codecs.dumps("json", value)
    assert codecs.loads(NAME, codecs.dumps("json", value)) == value


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"", b"[" * 100_000])
def test_undecodable_bytes_come_back_as_they_were(raw: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):  # what Faust's own codec does with them
        codecs.loads("json", raw)
    assert codecs.loads(NAME, raw) == raw


# Faust's batch readers: each fills its buffer in a task that ends on a decode error (faust/streams.py).
BATCH_READ = re.compile(r"\.(?:take|take_events|take_with_timestamp|noack_take)\(")


def test_every_agent_that_reads_micro_batches_reads_with_this_codec() -> None:
    """The codec is set per topic, so a new agent on `take_events` could miss it; this test says which."""
    import streams.worker  # noqa: F401  registers every agent, as `faust -A streams.worker worker` does
    from streams.app import app

    batched = {name: agent.channel for name, agent in app.agents.items()
               if BATCH_READ.search(inspect.getsource(agent.fun))}
    assert {"classify", "monitor"} <= set(batched)  # the check still finds the agents it is for
    for name, topic in batched.items():
        value = topic.value_serializer or app.conf.value_serializer
        key = topic.key_serializer or app.conf.key_serializer
        assert value == NAME and key in (NAME, "raw"), f"agent {name!r} reads {topic} with key {key}, value {value}"
