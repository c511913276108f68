"""`finsentry feedback export FILE`: analysts' corrected labels as a training file.

Reads `labels.feedback` from the beginning up to the end offsets it finds at start (so it ends,
however busy the topic) and writes JSONL with `text`, `topic` and `sentiment`, the columns
`models.data.load_file` reads. An item corrected more than once keeps the latest correction of
each field: the analyst's last word on topic and on sentiment counts, as in the scheduler.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alerts.records import utf8_text
from streams.settings import ENV_PREFIX, Settings
from streams.usage import UsageError

POLL_MS = 500
IDLE_SECONDS = 10.0  # stop if the end offsets promise records that never come


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="analysts' label corrections (labels.feedback)")
    actions = p.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write the corrections as JSONL for `finsentry train`")
    export.add_argument("file", type=Path, help="output .jsonl file")
    export.add_argument("--broker", help="kafka://HOST:PORT (default: FINSENTRY_BROKER)")
    export.add_argument("--topic", help="feedback topic (default: FINSENTRY_TOPIC_FEEDBACK, labels.feedback)")
    export.set_defaults(handler=run)


def training_rows(records: Iterable[Any]) -> list[dict[str, str | None]]:
    """One row per item id, in first-seen order, merging its corrections field by field: a record
    carries only the fields that correction changed, so a later topic correction keeps an earlier
    sentiment one. Records without text or label, or with a label that is not a string, or text
    UTF-8 cannot write (a lone surrogate), are skipped."""
    rows: dict[str, dict[str, str | None]] = {}
    for record in records:
        if not isinstance(record, dict) or not utf8_text(record.get("text")) or not record["text"].strip():
            continue
        topic, sentiment = record.get("topic"), record.get("sentiment")
        if (topic is None and sentiment is None) or not all(v is None or utf8_text(v) for v in (topic, sentiment)):
            continue
        row = rows.setdefault(str(record.get("id") or record["text"]), {"text": "", "topic": None, "sentiment": None})
        row["text"] = record["text"]
        if topic is not None:
            row["topic"] = topic
        if sentiment is not None:
            row["sentiment"] = sentiment
    return list(rows.values())


def read_topic(bootstrap: list[str], topic: str, client_options: dict[str, Any]) -> list[Any]:
    """Every JSON value on the topic, up to the end offsets at start; undecodable values are skipped."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", **client_options)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise UsageError(f"topic {topic!r} does not exist on {','.join(bootstrap)}")
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        values: list[Any] = []
        last_progress = time.monotonic()
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() - last_progress > IDLE_SECONDS:
                print(f"finsentry: warning: {topic} stopped short of its end offsets; exporting what was read",
                      file=sys.stderr)
                break
            for messages in consumer.poll(timeout_ms=POLL_MS).values():
                last_progress = time.monotonic()
                for message in messages:
                    if message.offset < end[TopicPartition(message.topic, message.partition)]:
                        try:
                            values.append(json.loads(message.value))
                        except (TypeError, ValueError, RecursionError):
                            continue
        return values
    finally:
        consumer.close()


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ, **({ENV_PREFIX + "BROKER": args.broker} if args.broker else {}))
    settings = Settings.load(env)
    rows = training_rows(read_topic(settings.bootstrap_servers, args.topic or settings.topic_feedback,
                                 settings.kafka_python_options()))
    partial = args.file.with_name(args.file.name + ".partial")  # the last export stays whole until this one is
    with partial.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    partial.replace(args.file)
    print(f"wrote {len(rows)} labelled example(s) to {args.file}", file=sys.stderr)
    return 0
