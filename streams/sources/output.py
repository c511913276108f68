"""Where a source's records go: a Kafka topic or a JSON-lines file, chosen the same way by every source CLI."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

from streams.settings import BROKER_ENV, DEFAULT_BROKER, ENV_PREFIX, Settings, bootstrap_servers
from streams.sources.kafka_sink import KafkaSink, SinkError, encode_value

TOPIC_ENV = ENV_PREFIX + "TOPIC_RAW"
DEFAULT_TOPIC: str = Settings.model_fields["topic_raw"].default


class JsonlSink:
    """One encoded record per line: the same bytes the Kafka sink would send, so files replay exactly."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._flush_each = path == "-"  # whoever reads a pipe wants each record as it comes
        # Open for the sink's lifetime; close() ends it.
        self._stream: BinaryIO = sys.stdout.buffer if path == "-" else Path(path).open("wb")  # noqa: SIM115

    def send(self, value: dict[str, Any] | bytes, key: str | None = None) -> None:
        try:
            self._stream.write(encode_value(value) + b"\n")
            if self._flush_each:
                self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        """Hand everything written to the operating system; SinkError naming the file when it refuses
        (a full disk): buffered, a write fails only here."""
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> SinkError:
        where = "stdout" if self.path == "-" else self.path
        return SinkError(f"cannot write {where}: {exc.strerror or exc}")

    def close(self) -> None:
        self.flush()
        if self._stream is not sys.stdout.buffer:
            self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _broker(value: str) -> str:
    try:
        bootstrap_servers(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (set it with --broker or {BROKER_ENV})") from None
    return value


def add_output_arguments(parser: argparse.ArgumentParser, *, kafka_by_default: bool) -> None:
    """`-o FILE` or Kafka (`--topic`, `--broker`); without `kafka_by_default` the user must pick with `--to-kafka`."""
    where = parser.add_mutually_exclusive_group(required=not kafka_by_default)
    where.add_argument("-o", "--output", metavar="FILE.jsonl", help="write JSON lines to FILE ('-' for stdout)")
    if not kafka_by_default:
        where.add_argument("--to-kafka", action="store_true", help="send to the Kafka topic given by --topic")
    parser.add_argument(
        "--topic",
        default=os.environ.get(TOPIC_ENV, DEFAULT_TOPIC),
        help=f"Kafka topic (default: ${TOPIC_ENV} or {DEFAULT_TOPIC})",
    )
    parser.add_argument(
        "--broker",
        type=_broker,
        default=os.environ.get(BROKER_ENV, DEFAULT_BROKER),
        help=f"Kafka bootstrap servers, kafka://host:port[,...] (default: ${BROKER_ENV} or {DEFAULT_BROKER})",
    )


def open_sink(args: argparse.Namespace) -> KafkaSink | JsonlSink:
    """Raises SinkError when Kafka cannot be reached and OSError when the file cannot be written."""
    if args.output is not None:
        return JsonlSink(args.output)
    return KafkaSink(args.broker, args.topic, Settings.load().kafka_python_options())
