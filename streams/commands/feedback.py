"""`finsentry feedback export FILE`: analysts' corrected labels as a training file.

Reads `labels.feedback` from the beginning up to the end offsets it finds at start (so it ends,
however busy the topic) and writes JSONL with `text`, `topic` and `sentiment`, and `style: social` for
a story that arrived as a social post (others train in the style of the file), the columns
`models.data.load_file` reads. An item corrected more than once keeps the latest correction of
each field: the analyst's last word on topic and on sentiment counts, as in the scheduler.

A training file is trusted as a whole, so nothing is dropped or decided quietly:
- a read that stops short of those end offsets writes nothing and exits 1 (the last export stays);
- every record skipped is counted and named with its reason (not JSON, blank text, a sentiment the
  model does not have, with `--model` a topic it does not have, ...);
- a story whose corrections disagree (one story sits in several cases: a topic scope and ticker
  scopes) is named with each case, analyst and value; its latest correction is exported.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.records import utf8_text
from models.labels import SENTIMENTS
from models.text import STYLES, style_name
from streams.commands.topic_reader import IDLE_SECONDS, broker_settings, group_less_consumer, unreadable, until_end
from streams.usage import UsageError

SUFFIX = ".jsonl"  # `finsentry train` picks its reader by suffix: JSON lines under .csv read as "no rows"
SHOWN = 5  # records named per skip reason
SHOWN_STORIES = 10  # disagreeing stories named one per line
LABELS = ("topic", "sentiment")
Row = dict[str, str | None]


@dataclass(frozen=True, slots=True)
class Record:
    """One value read from the topic and where it was, so a skipped or disputed one can be found.
    `problem` is set when the value could not be decoded (then `value` is None)."""

    partition: int
    offset: int
    value: Any
    problem: str | None = None

    def place(self) -> str:
        story = self.value.get("id") if isinstance(self.value, dict) else None
        where = f"partition {self.partition} offset {self.offset}"
        return f"{shown(story)} ({where})" if story is not None else where


def shown(value: Any, limit: int = 80) -> str:
    """A value as the report quotes it: repr, cut short (a foreign writer's id or topic can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(slots=True)
class Export:
    """What an export writes and what it must say about it."""

    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, list[Record]] = field(default_factory=dict)  # reason -> records, in topic order
    disagreements: list[str] = field(default_factory=list)  # one line per story id


class ShortRead(Exception):
    """The read stopped before the end offsets captured at start: exporting it would replace a whole
    training file with part of one, and nothing downstream could tell."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="analysts' label corrections (labels.feedback)")
    actions = p.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write the corrections as JSONL for `finsentry train`")
    export.add_argument("file", type=Path, help="output file; must end in .jsonl (the trainer reads by suffix)")
    export.add_argument("--broker", help="kafka://HOST:PORT (default: FINSENTRY_BROKER)")
    export.add_argument("--topic", help="feedback topic (default: FINSENTRY_TOPIC_FEEDBACK, labels.feedback)")
    export.add_argument("--model", type=Path, metavar="DIR", help="model or checkpoint directory whose labels.json "
                        "topics the corrections must name (default: topics are not checked)")
    export.set_defaults(handler=run)


def training_rows(records: Iterable[Any]) -> list[Row]:
    """The rows `export_rows` keeps for values as they are on the topic, in this order (topics unchecked);
    for callers that have the values but not where they were."""
    return export_rows([Record(0, n, value) for n, value in enumerate(records)]).rows


def export_rows(records: Sequence[Record], topics: frozenset[str] | None = None) -> Export:
    """One row per story id, in first-seen order, merging its corrections field by field: a record
    carries only the fields that correction changed, so a later topic correction keeps an earlier
    sentiment one. Records that cannot be training data are skipped with their reason; `topics`
    (the model's) also rejects a topic that would become a new class (None: not checked)."""
    result = Export()
    by_story: dict[str, list[Record]] = {}
    for record in records:
        problem = record.problem or record_problem(record.value, topics)
        if problem:
            result.skipped.setdefault(problem, []).append(record)
        else:
            by_story.setdefault(str(record.value.get("id") or record.value["text"]), []).append(record)
    for story, corrections in by_story.items():
        ordered = sorted(corrections, key=_when)
        result.rows.append(merged(ordered))
        disagreement = disagreement_line(story, ordered)
        if disagreement:
            result.disagreements.append(disagreement)
    return result


def record_problem(value: Any, topics: frozenset[str] | None) -> str | None:
    """Why a value cannot become a training row, or None. The scheduler writes only good records;
    this guards against any other writer of the topic and against a model with other labels."""
    if not isinstance(value, dict):
        return "not a JSON object"
    text, topic, sentiment = value.get("text"), value.get("topic"), value.get("sentiment")
    if not isinstance(text, str) or not text.strip():
        return "no text, or a blank one"
    if not utf8_text(text):
        return "text UTF-8 cannot write (a lone surrogate)"
    if topic is None and sentiment is None:
        return "neither topic nor sentiment"
    if topic is not None and not (utf8_text(topic) and topic.strip()):
        return "topic not a non-empty string"
    if sentiment is not None and sentiment not in SENTIMENTS:
        return f"sentiment not one of {', '.join(SENTIMENTS)}"
    if topic is not None and topics is not None and topic not in topics:
        return "topic not one of the --model's topics"
    style = value.get("style")
    if style is not None and not (isinstance(style, str) and style_name(style) in (*STYLES, "")):
        return f"style not one of {', '.join(STYLES)}"
    return None


def record_style(value: dict) -> str | None:
    """A record's style as the training file says it (any case, as everywhere else), None for none."""
    style = value.get("style")
    return style_name(style) or None if isinstance(style, str) else None


def _when(record: Record) -> tuple[bool, datetime]:
    """Sort key: the record's `at` (when the scheduler decided it); a record without a readable one
    counts as older than any with one. `sorted` is stable, so ties keep topic order, which for one
    story (one key, one partition, one writer) is the order the scheduler decided them in."""
    at = record.value.get("at")
    try:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        moment = None
    if moment is None:
        return False, datetime.min.replace(tzinfo=UTC)
    return True, moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def merged(corrections: Sequence[Record]) -> Row:
    """The row for one story: its latest text, its latest correction of each label, and the latest
    style its corrections named (none: the key is left out, and the row trains in its file's style)."""
    row: Row = {"text": corrections[-1].value["text"], "topic": None, "sentiment": None}
    for record in corrections:
        for label in LABELS:
            if record.value.get(label) is not None:
                row[label] = record.value[label]
        if (style := record_style(record.value)) is not None:
            row["style"] = style
    return row


def disagreement_line(story: str, corrections: Sequence[Record]) -> str | None:
    """One line naming each label on which different analysts last said different things, or None.
    A later correction by the same analyst, in the same case or in another case of the same story
    (its topic case, then its ticker case), is a change of mind, not a disagreement: only each
    analyst's last word counts, named with the case it was said in."""
    parts = []
    for label in LABELS:
        last_word: dict[str, tuple[str, str]] = {}  # analyst -> ("case/analyst", value), first-said order
        for record in corrections:
            if record.value.get(label) is not None:
                last_word[who(record.value)] = (voice(record.value), record.value[label])
        if len({value for _, value in last_word.values()}) > 1:
            said = ", ".join(f"{where} {shown(value)}" for where, value in last_word.values())
            latest = next(r.value[label] for r in reversed(corrections) if r.value.get(label) is not None)
            parts.append(f"{label}: {said}; exported {shown(latest)} (the latest)")
    return f"story {shown(story)}: " + "; ".join(parts) if parts else None


def who(value: Mapping[str, Any]) -> str:
    """The analyst whose word a correction is; a record naming none stands for its case alone."""
    analyst = value.get("analyst")
    return f"analyst {analyst}" if isinstance(analyst, str) and analyst else f"case {voice(value)}"


def voice(value: Mapping[str, Any]) -> str:
    """Who said it: "case/analyst" ("?" for a part the record lacks)."""
    return f"{str(value.get('case_id') or '?')[:80]}/{str(value.get('analyst') or '?')[:80]}"


def model_topics(directory: Path) -> frozenset[str]:
    """The topics of a model or checkpoint directory (its labels.json), as training would see them."""
    from models.runtime import model_labels

    try:
        return frozenset(model_labels(directory)["topic"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--model {directory}: no readable labels.json ({type(exc).__name__}); "
                         "give a model directory (finsentry export) or a checkpoint (finsentry train)") from None


def read_topic(bootstrap: list[str], topic: str, client_options: dict[str, Any]) -> list[Record]:
    """Every record on the topic up to the end offsets at start, decoded, or with the reason it could not be.

    Raises ShortRead when the records stop coming before those offsets. Warns when a partition no
    longer starts at offset 0: retention or a deletion removed corrections the export cannot see."""
    from kafka import TopicPartition

    consumer = group_less_consumer(bootstrap, client_options)
    try:
        partitions = {p: TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())}
        if not partitions:
            raise UsageError(f"topic {topic!r} does not exist on {','.join(bootstrap)}")
        consumer.assign(list(partitions.values()))
        consumer.seek_to_beginning(*partitions.values())
        ends = consumer.end_offsets(list(partitions.values()))
        start = {p: consumer.position(tp) for p, tp in partitions.items()}
        warn_trimmed(topic, start)
        stalled: dict[int, int] = {}
        records = [decoded(m) for m in until_end(consumer, ends, lambda tp, at, _: stalled.setdefault(tp.partition, at))]
        if stalled:
            end = {p: ends[tp] for p, tp in partitions.items()}
            position = {p: stalled.get(p, end[p]) for p in partitions}
            raise ShortRead(short_read_message(topic, bootstrap, start, end, position))
        return records
    finally:
        consumer.close()


def decoded(message: Any) -> Record:
    """The record's JSON value, or the reason there is none (a tombstone, bytes that are not JSON)."""
    if message.value is None:
        return Record(message.partition, message.offset, None, "no value (a tombstone)")
    try:
        return Record(message.partition, message.offset, json.loads(message.value))
    except (TypeError, ValueError, RecursionError):
        return Record(message.partition, message.offset, None, "value is not JSON")


def warn_trimmed(topic: str, start: Mapping[int, int]) -> None:
    """Corrections deleted from the topic are missing from every export from now on: say so."""
    trimmed = {p: offset for p, offset in sorted(start.items()) if offset > 0}
    if trimmed:
        where = ", ".join(f"partition {p} at offset {o}" for p, o in trimmed.items())
        print(f"finsentry: warning: {topic} no longer starts at offset 0 ({where}): retention or a deletion "
              f"removed {sum(trimmed.values())} earlier record(s), which this export cannot contain; "
              f"keep the topic with retention.ms=-1 (docs/OPERATIONS.md)", file=sys.stderr)


def short_read_message(topic: str, bootstrap: list[str], start: Mapping[int, int], end: Mapping[int, int],
                       position: Mapping[int, int]) -> str:
    """The one line for a read that stopped: how far it got, where, and what to do."""
    read = sum(min(position[p], end[p]) - start[p] for p in start)
    expected = sum(end[p] - start[p] for p in start)
    behind = ", ".join(f"partition {p} at offset {position[p]} of {end[p]}" for p in start if position[p] < end[p])
    return (f"{topic} stopped short: read {read} of {expected} record(s) ({behind}; nothing for "
            f"{IDLE_SECONDS:g} s), so nothing was written (an earlier export stays as it was); rerun, "
            f"and if it stops again check the broker {','.join(bootstrap)} and those partitions' leaders")


def checked_output(path: Path) -> Path:
    """The output path, refused before any read when the trainer could not read it back."""
    if path.suffix.lower() != SUFFIX:
        raise UsageError(f"feedback export: {path} does not end in {SUFFIX}, and `finsentry train` reads a file "
                         f"by its suffix (JSON lines under {path.suffix or 'no suffix'} would not load); "
                         f"name the output {path.with_suffix(SUFFIX).name}")
    if not path.parent.is_dir():
        raise UsageError(f"feedback export: no directory {path.parent}; create it or write elsewhere")
    return path


def report(result: Export, path: Path, read: int, topics_checked: bool) -> None:
    """Say what was written, every skipped record (count, reason, the first few) and every disagreement."""
    for reason, records in result.skipped.items():
        more = f" and {len(records) - SHOWN} more" if len(records) > SHOWN else ""
        print(f"finsentry: warning: skipped {len(records)} record(s), {reason}: "
              f"{', '.join(r.place() for r in records[:SHOWN])}{more}", file=sys.stderr)
    for line in result.disagreements[:SHOWN_STORIES]:
        print(f"finsentry: warning: corrections disagree on {line}", file=sys.stderr)
    if result.disagreements:
        unnamed = len(result.disagreements) - SHOWN_STORIES
        print(f"finsentry: warning: {len(result.disagreements)} story id(s) with disagreeing corrections"
              f"{f' ({unnamed} not named above)' if unnamed > 0 else ''}; each exports its latest correction: "
              "settle them in the cases named", file=sys.stderr)
    skipped = sum(len(r) for r in result.skipped.values())
    print(f"wrote {len(result.rows)} labelled example(s) to {path} from {read} record(s), {skipped} skipped"
          f"{'' if topics_checked else '; topics not checked against a model (give --model DIR)'}", file=sys.stderr)


def write_rows(rows: Iterable[Row], path: Path) -> None:
    """JSON lines, in place of `path` only once complete: a failed write leaves the last export whole."""
    partial = path.with_name(path.name + ".partial")  # the last export stays whole until this one is
    with partial.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    partial.replace(path)


def run(args: argparse.Namespace) -> int:
    """0: the whole topic was read and written; 1: the read stopped short, nothing written; 2: usage."""
    path = checked_output(args.file)
    topics = model_topics(args.model) if getattr(args, "model", None) else None
    settings = broker_settings(args.broker)
    from kafka.errors import KafkaError

    topic = args.topic or settings.topic_feedback
    try:
        records = read_topic(settings.bootstrap_servers, topic, settings.kafka_python_options())
    except ShortRead as exc:
        print(f"finsentry: error: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:  # no broker answers, or one refuses the client (a traceback before)
        raise unreadable(topic, settings.bootstrap_servers, exc) from None
    result = export_rows(records, topics)
    write_rows(result.rows, path)
    report(result, path, len(records), topics is not None)
    return 0
