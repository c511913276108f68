"""`finsentry tail TOPIC`: a topic's records as JSON lines, for people and for jq.

The embedded broker ships no kafka-console-consumer; this reads any topic with the CLI tools'
settings (`--broker`, FINSENTRY_KAFKA_* security) and no consumer group, so it moves nobody's offsets.

- default: the last `--count` records (10) over all partitions, oldest first by timestamp;
- `--from-beginning`: every record, or with `--count` the first N, oldest first (partitions merged);
- `--follow`: then every new record as it arrives, until Ctrl-C (exit status 130).

Both read up to the end offsets found at start (streams/commands/topic_reader.py), so they end however
busy the topic; the batch that holds the end is printed whole, as Tansu reports ends inside batches.

Each line is {"topic", "partition", "offset", "timestamp" (ISO 8601 UTC, or null), "key" (text, or
null), "value"}: the value parsed when it is JSON, else {"undecodable": why, "base64": the bytes, and
"text" when they are UTF-8}; a key that is not UTF-8 is shown the same way.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from alerts.records import iso_utc
from streams.commands.topic_reader import (
    IDLE_SECONDS,
    POLL_MS,
    broker_settings,
    group_less_consumer,
    order,
    unreadable,
    until_end,
)
from streams.settings import Settings
from streams.usage import UsageError, positive

DEFAULT_COUNT = 10
SHOWN_TOPICS = 30  # topics named when the one asked for is not there
TOMBSTONE = {"undecodable": "no value (a tombstone)", "base64": None}


def project_topics() -> list[str]:
    """The topics the project uses, by their default names (FINSENTRY_TOPIC_* renames them)."""
    return [str(f.default) for name, f in Settings.model_fields.items() if name.startswith("topic_")]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tail", help="print a topic's records as JSON lines (last 10; --from-beginning, --follow)",
        description="Print a topic's records as JSON lines (topic, partition, offset, timestamp, key, value), "
                    "oldest first, reading with no consumer group.",
        epilog=f"The project's topics (defaults; FINSENTRY_TOPIC_* renames them): {', '.join(project_topics())}. "
               "E.g. `finsentry tail news.scored --follow`, `finsentry tail news.deadletter --count 20 | jq .value`.")
    p.add_argument("topic", nargs="?", metavar="TOPIC", help="the topic to read (none: list the broker's topics)")
    p.add_argument("--broker", metavar="URL", help="kafka://HOST:PORT (default: FINSENTRY_BROKER)")
    p.add_argument("--count", type=positive(int), metavar="N",
                   help=f"the last N records (default {DEFAULT_COUNT}); with --from-beginning the first N")
    p.add_argument("--from-beginning", action="store_true", help="every record from the start of each partition")
    p.add_argument("--follow", "-f", action="store_true",
                   help="then keep printing new records as they arrive, until Ctrl-C")
    p.set_defaults(handler=run)


def undecodable(why: str, raw: bytes, text: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {"undecodable": why, "base64": base64.b64encode(raw).decode("ascii")}
    if text is not None:
        shown["text"] = text
    return shown


def key_field(raw: bytes | None) -> Any:
    """A key as text, null when there is none, or its bytes with why they are not text."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return undecodable(f"not UTF-8 (byte {exc.start})", raw)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def value_field(raw: bytes | None) -> Any:
    """A value as its parsed JSON, or its bytes with why they are not JSON (`undecodable`). NaN and
    Infinity, which Python reads but JSON has not, count as not JSON: jq would refuse the line."""
    if raw is None:
        return dict(TOMBSTONE)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return undecodable(f"not UTF-8 (byte {exc.start})", raw)
    try:
        return json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        return undecodable(f"not JSON ({exc.msg}: line {exc.lineno} column {exc.colno})", raw, text)
    except ValueError as exc:
        return undecodable(f"not JSON ({exc})", raw, text)
    except RecursionError:
        return undecodable("not JSON this reader can take (nested too deep)", raw, text)


def record_line(message: Any, encoding: str = "utf-8") -> str:
    """One record as one JSON line. Text stays as it is where `encoding` can write it (a lone
    surrogate in a JSON string, or a terminal's narrower encoding, gets \\u escapes instead)."""
    timestamp = getattr(message, "timestamp", None)
    fields = {"topic": message.topic, "partition": message.partition, "offset": message.offset,
              "timestamp": iso_utc(timestamp / 1000) if isinstance(timestamp, int) and timestamp >= 0 else None,
              "key": key_field(message.key), "value": value_field(message.value)}
    line = json.dumps(fields, ensure_ascii=False)
    try:
        line.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        line = json.dumps(fields)
    return line


def missing_topic(topic: str, bootstrap: Sequence[str], existing: set[str]) -> UsageError:
    """The one line for a TOPIC the broker does not have: the topics it has instead."""
    names = sorted(existing)
    more = f" and {len(names) - SHOWN_TOPICS} more" if len(names) > SHOWN_TOPICS else ""
    where = ",".join(bootstrap)
    there = (f"topics on {where}: {', '.join(names[:SHOWN_TOPICS])}{more}" if names
             else f"{where} has no topics yet (the worker creates them when it starts)")
    return UsageError(f"topic {topic!r} does not exist on {where}; {there}")


def follow(consumer: Any, emit: Callable[[Any], None]) -> None:
    """New records as they arrive, each poll's oldest first, until interrupted."""
    consumer.resume(*consumer.assignment())
    while True:
        for message in sorted((m for ms in consumer.poll(timeout_ms=POLL_MS).values() for m in ms), key=order):
            emit(message)


def tail(args: argparse.Namespace, settings: Settings, emit: Callable[[Any], None]) -> int:
    """Read and emit as `args` asks; 0, or 1 when a partition stopped short of its end offset."""
    from kafka import TopicPartition

    bootstrap = settings.bootstrap_servers
    stalled: list[str] = []
    shown = 0

    def show(message: Any) -> None:
        nonlocal shown
        emit(message)
        shown += 1

    def warn(tp: Any, position: int, end: int) -> None:
        line = (f"{tp.topic} partition {tp.partition} stopped at offset {position} of {end} (nothing for "
                f"{IDLE_SECONDS:g} s); its later records are not shown")
        stalled.append(line)
        print(f"finsentry: warning: tail: {line}", file=sys.stderr, flush=True)

    consumer = group_less_consumer(bootstrap, settings.kafka_python_options())
    try:
        if not args.topic:  # the listing asked for: one topic a line, for the reader or a script
            for name in sorted(consumer.topics()):
                print(name)
            return 0
        numbers = sorted(consumer.partitions_for_topic(args.topic) or ())
        if not numbers:
            raise missing_topic(args.topic, bootstrap, consumer.topics())
        partitions = [TopicPartition(args.topic, p) for p in numbers]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        if args.from_beginning:
            consumer.seek_to_beginning(*partitions)
            for message in islice(until_end(consumer, ends, warn), args.count):
                show(message)
        else:
            count = args.count or DEFAULT_COUNT
            begins = consumer.beginning_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, max(begins[tp], ends[tp] - count))
            for message in sorted(until_end(consumer, ends, warn), key=order)[-count:]:
                show(message)
        if args.follow:
            print(f"finsentry: tail: following {args.topic} on {','.join(bootstrap)} (Ctrl-C stops)",
                  file=sys.stderr, flush=True)
            follow(consumer, emit)
        if not shown:
            print(f"finsentry: tail: no records on {args.topic} ({len(partitions)} partition(s)) on "
                  f"{','.join(bootstrap)}; --follow waits for new ones", file=sys.stderr)
        return 1 if stalled else 0
    finally:
        consumer.close()


def run(args: argparse.Namespace) -> int:
    """0: printed what was asked; 1: a partition stopped short of its end offset; 2: usage; 130: Ctrl-C."""
    if args.follow and args.from_beginning and args.count is not None:
        raise UsageError("tail: --follow with --from-beginning --count N would skip the records between the first N "
                         "and the new ones; drop --count, or --follow")
    settings = broker_settings(args.broker)
    if args.follow and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # started with `&`: Ctrl-C must still stop it
    encoding = sys.stdout.encoding or "utf-8"

    def emit(message: Any) -> None:
        print(record_line(message, encoding), flush=args.follow)

    from kafka.errors import KafkaError

    try:
        return tail(args, settings, emit)
    except KafkaError as exc:  # no broker answers, or one refuses the client
        if not args.topic:
            raise UsageError(f"tail: cannot list the topics on {','.join(settings.bootstrap_servers)} "
                             f"({type(exc).__name__}); check the broker is running, or point FINSENTRY_BROKER (or "
                             f"--broker) at one; the project's topics: {', '.join(project_topics())}") from None
        raise unreadable(args.topic, settings.bootstrap_servers, exc) from None
    except BrokenPipeError:  # `finsentry tail ... | head`: the reader has what it wanted
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0

