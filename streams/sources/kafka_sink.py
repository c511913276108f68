"""The one way finsentry's command-line tools put JSON records on a Kafka topic.

A CLI run must either deliver every record or say, in one line, why it could not: sends are
acknowledged by all in-sync replicas, a failed delivery is remembered and raised at the next
`send`/`flush`, and an unreachable broker becomes a `SinkError` naming the URL and the setting to
change instead of a kafka-python traceback after a long hang.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

from kafka import KafkaProducer
from kafka.errors import KafkaError

from streams.settings import BROKER_ENV, bootstrap_servers

# Defaults for a command-line producer; `client_options` override any of them.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 5,
    "retries": 5,
    "bootstrap_timeout_ms": 10_000,  # kafka-python waits 30 s by default before admitting defeat
    "max_block_ms": 10_000,
}


class SinkError(RuntimeError):
    """Records could not be delivered; the message is one line a user can act on."""


def encode_value(value: dict[str, Any] | bytes) -> bytes:
    """Compact UTF-8 JSON; bytes pass through untouched so hostile test inputs reach the topic as-is."""
    if isinstance(value, bytes):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class KafkaSink:
    """A producer bound to one topic. The record's `id` is the key unless a key is given."""

    def __init__(self, broker_url: str, topic: str, client_options: dict[str, Any] | None = None) -> None:
        self.broker_url = broker_url
        self.topic = topic
        self._failure: BaseException | None = None
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers(broker_url), **{**PRODUCER_DEFAULTS, **(client_options or {})}
            )
        except KafkaError as exc:
            raise SinkError(self._describe(exc)) from None

    def send(self, value: dict[str, Any] | bytes, key: str | None = None) -> None:
        self._raise_failure()
        if key is None and isinstance(value, dict) and value.get("id") is not None:
            key = str(value["id"])
        try:
            future = self._producer.send(
                self.topic, value=encode_value(value), key=None if key is None else key.encode("utf-8")
            )
        except KafkaError as exc:
            raise SinkError(self._describe(exc)) from None
        future.add_errback(self._remember)

    def flush(self, timeout: float | None = None) -> None:
        try:
            self._producer.flush(timeout)
        except KafkaError as exc:
            raise SinkError(self._describe(exc)) from None
        self._raise_failure()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _remember(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise SinkError(self._describe(self._failure))

    def _describe(self, exc: BaseException) -> str:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return (
            f"cannot deliver to Kafka topic {self.topic!r} at {self.broker_url}: {detail}; "
            f"check the broker is running, or point {BROKER_ENV} (or --broker) at one that is"
        )
