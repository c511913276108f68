"""A JSON codec that hands bytes it cannot decode to the agent, for topics read in micro-batches.

Faust raises a value it cannot decode into the stream. `Stream.take_events` reads the stream in a
background task, which forwards that error to a channel nobody reads and ends, so an agent reading
micro-batches waits for a batch that never comes: no crash, no dead letter, still ready
(docs/RELIABILITY.md). With this codec the agent receives the original bytes, and dead-letters
them as it does any value that is not a record. Encoding is Faust's JSON, byte for byte.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

NAME = "json-or-bytes"


class LenientJSON(codecs.json):
    def _loads(self, s: bytes) -> Any:
        try:
            return super()._loads(s)
        except (ValueError, RecursionError):  # not JSON, not UTF-8 (a ValueError too), or nested too deep
            return bytes(s)


codecs.register(NAME, LenientJSON())
