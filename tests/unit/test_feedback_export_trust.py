"""`finsentry feedback export` writes a training file that can be trusted as a whole: a read that
stops short writes nothing and fails; every record it skips is named with why; a story whose
corrections disagree across cases is named with both sides; the output must be a name the trainer
reads as JSON lines; and `labels.feedback` is created to keep every correction.

The broker-facing parts run against the embedded Tansu broker (marked integration); a stalled read
cannot be made on a healthy broker, so that one test stands in a consumer whose records stop coming.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections import namedtuple
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import yaml

from models.data import LabelMaps, load_file
from scheduler import Scheduler, SchedulerPolicy, parse_roster
from scheduler.feedback import feedback_records
from scheduler.tokens import hash_token
from streams import cli
from streams.commands import feedback, topic_reader
from streams.commands.feedback import Record, decoded, export_rows, report
from streams.settings import Settings
from streams.topics import KEEP_FOREVER, ensure_topics, new_topics, topic_configs

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HEADLINE = "Contoso beats estimates, cuts guidance"
ROSTER = parse_roster(f"""\
analysts:
  - id: alice
    name: Alice
    capacity: 5
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Earnings: 5}}}}
    notify: https://hooks.example.com/alice
    token_hash: {hash_token("alice-secret", n=16)}
  - id: bob
    name: Bob
    capacity: 5
    shifts: ["Mon-Sun 00:00-24:00 UTC"]
    skills: {{topics: {{Macro: 5}}}}
    notify: https://hooks.example.com/bob
    token_hash: {hash_token("bob-secret", n=16)}
""")
Message = namedtuple("Message", "partition offset value")
Partition = namedtuple("Partition", "topic partition")


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def records(*values: Any, partition: int = 0) -> list[Record]:
    return [Record(partition, offset, value) for offset, value in enumerate(values)]


def correction(story: str, case: str, analyst: str, minute: int, **labels: str) -> dict[str, Any]:
    """A `labels.feedback` value as scheduler/feedback.py writes it."""
    return {"id": story, "text": f"headline of {story}", **labels, "case_id": case, "analyst": analyst,
            "at": (NOW + timedelta(minutes=minute)).isoformat()}


def labelled(sched: Scheduler, case: str, analyst: str, minute: int, **label: str) -> list[dict[str, Any]]:
    """The `label` action on one story of a case, and the feedback records it produces."""
    events = sched.on_action({"action": "label", "case_id": case, "analyst": analyst, "action_id": uuid.uuid4().hex,
                              "labels": [{"id": "fab-1", **label}]}, NOW + timedelta(minutes=minute))
    return [r for e in events if e["event"] == "labelled" for r in feedback_records(e, sched.case(e["case_id"]))]


def two_cases_of_one_story() -> Scheduler:
    """The monitor counts a story in its topic scope and its ticker scopes: one story, two cases."""
    sched = Scheduler(ROSTER, SchedulerPolicy())
    for aid, scope in (("a1", "topic:Earnings"), ("b1", "topic:Macro")):
        sched.on_anomaly({"anomaly_id": aid, "scope": scope, "severity": "warning", "kind": "negative_surge",
                          "sample_ids": ["fab-1"], "headlines": [HEADLINE]}, NOW)
    assert (sched.case("case-a1")["analyst"], sched.case("case-b1")["analyst"]) == ("alice", "bob")
    return sched


# --- disagreement across cases ---------------------------------------------------------------------

def test_two_cases_that_disagree_on_a_story_are_named_and_the_latest_is_exported(capsys) -> None:
    sched = two_cases_of_one_story()
    found = labelled(sched, "case-a1", "alice", 1, sentiment="negative") + \
        labelled(sched, "case-b1", "bob", 5, sentiment="positive")
    result = export_rows(records(*found))
    report(result, Path("feedback.jsonl"), len(found), topics_checked=False)
    assert result.rows == [{"text": HEADLINE, "topic": None, "sentiment": "positive"}]
    err = stderr_lines(capsys)
    [named] = [line for line in err if "corrections disagree" in line]
    assert "'fab-1'" in named and "case-a1/alice 'negative'" in named and "case-b1/bob 'positive'" in named
    assert "exported 'positive' (the latest)" in named
    assert any(line.startswith("finsentry: warning: 1 story id(s) with disagreeing corrections") for line in err)


def test_a_change_of_mind_in_the_same_case_is_silent(capsys) -> None:
    sched = two_cases_of_one_story()
    found = labelled(sched, "case-a1", "alice", 1, sentiment="negative") + \
        labelled(sched, "case-a1", "alice", 2, sentiment="positive")
    result = export_rows(records(*found))
    report(result, Path("feedback.jsonl"), len(found), topics_checked=False)
    assert result.rows == [{"text": HEADLINE, "topic": None, "sentiment": "positive"}]
    assert result.disagreements == []
    assert not any("disagree" in line for line in stderr_lines(capsys))


def test_one_analyst_changing_their_mind_across_two_cases_of_the_story_is_silent() -> None:
    # The story sits in its topic case and its ticker case; alice corrected it in one, then the other.
    changed = records(correction("s1", "case-a1", "alice", 1, sentiment="neutral"),
                      correction("s1", "case-b1", "alice", 2, sentiment="negative"))
    result = export_rows(changed)
    assert result.disagreements == [] and result.rows[0]["sentiment"] == "negative"
    # bob disagreeing with alice's last word is named, with the case each last said it in
    disputed = records(*[r.value for r in changed], correction("s1", "case-a1", "bob", 3, sentiment="positive"))
    [line] = export_rows(disputed).disagreements
    assert "sentiment: case-b1/alice 'negative', case-a1/bob 'positive'; exported 'positive'" in line


def test_cases_that_came_to_agree_are_silent_and_a_topic_dispute_names_only_the_topic() -> None:
    agreed = records(correction("s1", "case-a1", "alice", 1, sentiment="negative"),
                     correction("s1", "case-b1", "bob", 2, sentiment="positive"),
                     correction("s1", "case-a1", "alice", 3, sentiment="positive"))
    assert export_rows(agreed).disagreements == []
    split = records(correction("s2", "case-a1", "alice", 1, topic="Earnings", sentiment="negative"),
                    correction("s2", "case-b1", "bob", 2, topic="Macro", sentiment="negative"))
    [line] = export_rows(split).disagreements
    assert "topic: case-a1/alice 'Earnings', case-b1/bob 'Macro'; exported 'Macro'" in line
    assert "sentiment" not in line


def test_the_latest_correction_is_the_latest_in_time_not_in_read_order() -> None:
    # e.g. written by another producer without the story id as key: two partitions, read in any order
    later_first = [Record(1, 0, correction("s1", "case-b1", "bob", 9, sentiment="positive")),
                   Record(0, 0, correction("s1", "case-a1", "alice", 1, sentiment="negative"))]
    result = export_rows(later_first)
    assert result.rows[0]["sentiment"] == "positive"
    assert "exported 'positive'" in result.disagreements[0]


def test_many_disagreements_name_ten_stories_and_count_them_all(capsys) -> None:
    found = [c for n in range(12) for c in (correction(f"s{n}", "case-a1", "alice", 1, sentiment="negative"),
                                            correction(f"s{n}", "case-b1", "bob", 2, sentiment="neutral"))]
    report(export_rows(records(*found)), Path("feedback.jsonl"), len(found), topics_checked=False)
    err = stderr_lines(capsys)
    assert sum("corrections disagree on story" in line for line in err) == 10
    assert any("12 story id(s) with disagreeing corrections (2 not named above)" in line for line in err)


# --- records skipped, named with why ---------------------------------------------------------------

def test_every_skipped_record_is_counted_and_named_with_its_reason(tmp_path: Path, capsys) -> None:
    good = correction("ok-1", "case-a1", "alice", 1, topic="Earnings", sentiment="negative")
    values = [good,
              correction("meh-1", "case-a1", "alice", 1, sentiment="meh"),
              {**correction("blank-1", "case-a1", "alice", 1, sentiment="neutral"), "text": "   "},
              correction("crypto-1", "case-a1", "alice", 1, topic="Crypto", sentiment="positive"),
              correction("none-1", "case-a1", "alice", 1),
              "garbage"]
    found = records(*values, partition=2) + [decoded(Message(3, 40, b"{not json")), decoded(Message(3, 41, None))]
    result = export_rows(found, topics=frozenset({"Earnings", "Macro"}))
    report(result, Path("feedback.jsonl"), len(found), topics_checked=True)
    err = "\n".join(stderr_lines(capsys))
    for reason, place in (("sentiment not one of negative, neutral, positive", "'meh-1' (partition 2 offset 1)"),
                          ("no text, or a blank one", "'blank-1' (partition 2 offset 2)"),
                          ("topic not one of the --model's topics", "'crypto-1' (partition 2 offset 3)"),
                          ("neither topic nor sentiment", "'none-1' (partition 2 offset 4)"),
                          ("not a JSON object", "partition 2 offset 5"),
                          ("value is not JSON", "partition 3 offset 40"),
                          ("no value (a tombstone)", "partition 3 offset 41")):
        assert f"skipped 1 record(s), {reason}: {place}" in err, reason
    assert "wrote 1 labelled example(s) to feedback.jsonl from 8 record(s), 7 skipped" in err
    assert "topics not checked" not in err
    path = tmp_path / "feedback.jsonl"
    feedback.write_rows(result.rows, path)
    LabelMaps(topics=["Earnings", "Macro"]).check(load_file(path), str(path))  # what `train --init` checks


def test_a_reason_names_its_first_five_records_and_counts_the_rest(capsys) -> None:
    found = records(*(correction(f"meh-{n}", "case-a1", "alice", 1, sentiment="meh") for n in range(7)))
    report(export_rows(found), Path("feedback.jsonl"), len(found), topics_checked=False)
    err = stderr_lines(capsys)
    [line] = [line for line in err if "skipped" in line and "meh" in line]
    assert line.startswith("finsentry: warning: skipped 7 record(s), sentiment not one of")
    assert "'meh-4'" in line and "'meh-5'" not in line and line.endswith("and 2 more")
    assert err[-1].endswith("topics not checked against a model (give --model DIR)")


def test_model_topics_come_from_the_model_directory(tmp_path: Path, capsys) -> None:
    (tmp_path / "labels.json").write_text(json.dumps({"topic": ["Earnings", "Macro"], "sentiment": ["negative"]}))
    assert feedback.model_topics(tmp_path) == frozenset({"Earnings", "Macro"})
    missing = tmp_path / "nowhere"
    rc = cli.main(["feedback", "export", str(tmp_path / "feedback.jsonl"), "--broker", "kafka://127.0.0.1:1",
                   "--model", str(missing)])
    [line] = stderr_lines(capsys)
    assert rc == 2 and line.startswith(f"finsentry: error: --model {missing}: no readable labels.json")


# --- output name -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["feedback.csv", "feedback.json", "feedback"])
def test_an_output_the_trainer_would_not_read_as_json_lines_is_refused_before_reading(tmp_path: Path, capsys,
                                                                                      name: str) -> None:
    rc = cli.main(["feedback", "export", str(tmp_path / name), "--broker", "kafka://127.0.0.1:1"])
    [line] = stderr_lines(capsys)
    assert rc == 2
    assert line.startswith("finsentry: error: feedback export: ") and line.endswith("name the output feedback.jsonl")
    assert list(tmp_path.iterdir()) == []


# --- a read that stops short -----------------------------------------------------------------------

class ScriptedConsumer:
    """A consumer whose partitions start at `starts`, end at `ends`, and deliver `batches` in turn,
    then nothing: what a broker that is slow or moving a partition's leader looks like to the export."""

    starts: ClassVar[dict[int, int]] = {}
    ends: ClassVar[dict[int, int]] = {}
    batches: ClassVar[list[dict[int, list[Any]]]] = []

    def __init__(self, **_: Any) -> None:
        self.at = dict(self.starts)
        self.pending: Iterator[dict[int, list[Any]]] = iter(self.batches)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.ends)

    def assign(self, partitions: list[Any]) -> None:
        pass

    def seek_to_beginning(self, *partitions: Any) -> None:
        pass

    def pause(self, *partitions: Any) -> None:
        pass

    def resume(self, *partitions: Any) -> None:
        pass

    def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return {tp: self.ends[tp.partition] for tp in partitions}

    def position(self, tp: Any) -> int:
        return self.at[tp.partition]

    def poll(self, timeout_ms: int) -> dict[Any, list[Any]]:
        batch = next(self.pending, {})
        out = {}
        for p, values in batch.items():
            out[Partition("labels.feedback", p)] = [Message(p, self.at[p] + n, v) for n, v in enumerate(values)]
            self.at[p] += len(values)
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedConsumer]:
    class Consumer(ScriptedConsumer):
        pass

    monkeypatch.setitem(sys.modules, "kafka", SimpleNamespace(KafkaConsumer=Consumer, TopicPartition=Partition))
    monkeypatch.setattr(topic_reader, "IDLE_SECONDS", 0.2)
    monkeypatch.setattr(topic_reader, "POLL_MS", 10)
    return Consumer


def test_a_read_that_stops_short_fails_and_leaves_the_last_export_whole(tmp_path: Path, scripted, capsys) -> None:
    value = json.dumps(correction("s1", "case-a1", "alice", 1, sentiment="negative")).encode()
    scripted.starts, scripted.ends, scripted.batches = {0: 0, 1: 0}, {0: 5, 1: 3}, [{0: [value, value]}]
    out = tmp_path / "feedback.jsonl"
    out.write_text('{"text": "Northwind last month", "topic": "Earnings", "sentiment": null}\n' * 1000)
    before = out.read_bytes()
    rc = cli.main(["feedback", "export", str(out), "--broker", "kafka://127.0.0.1:1"])
    [line] = stderr_lines(capsys)
    assert rc == 1
    assert out.read_bytes() == before and sorted(tmp_path.iterdir()) == [out]
    assert line.startswith("finsentry: error: labels.feedback stopped short: read 2 of 8 record(s)")
    assert "partition 0 at offset 2 of 5, partition 1 at offset 0 of 3" in line
    assert "rerun" in line and "127.0.0.1:1" in line


def test_a_topic_that_no_longer_starts_at_offset_0_is_named(tmp_path: Path, scripted, capsys) -> None:
    value = json.dumps(correction("s1", "case-a1", "alice", 1, sentiment="negative")).encode()
    scripted.starts, scripted.ends, scripted.batches = {0: 4, 1: 0}, {0: 5, 1: 0}, [{0: [value]}]
    rc = cli.main(["feedback", "export", str(tmp_path / "feedback.jsonl"), "--broker", "kafka://127.0.0.1:1"])
    err = stderr_lines(capsys)
    assert rc == 0
    assert any("labels.feedback no longer starts at offset 0 (partition 0 at offset 4)" in line
               and "retention.ms=-1" in line for line in err)
    assert [e.sentiment for e in load_file(tmp_path / "feedback.jsonl")] == ["negative"]


# --- retention of labels.feedback ------------------------------------------------------------------

def test_the_feedback_topic_is_created_to_keep_every_correction_and_not_compacted() -> None:
    settings = Settings()
    requests = {t.name: t for t in new_topics({settings.topic_feedback: 4, settings.topic_raw: 4, "old": 4},
                                              {"old"}, 1, topic_configs(settings))}
    assert set(requests) == {settings.topic_feedback, settings.topic_raw}  # an existing topic is left as it is
    assert requests[settings.topic_feedback].topic_configs == {"retention.ms": "-1"}
    assert requests[settings.topic_raw].topic_configs == {}
    renamed = Settings(topic_feedback="contoso.corrections")
    assert topic_configs(renamed) == {"contoso.corrections": KEEP_FOREVER}


def test_kafka_init_creates_labels_feedback_to_keep_every_correction(tmp_path: Path) -> None:
    init = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka-init"]
    fake, calls = tmp_path / "kafka-topics.sh", tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    script = init["command"][0].replace("$$", "$").replace("/opt/kafka/bin/kafka-topics.sh", str(fake))
    env = {**{k: str(v) for k, v in init["environment"].items()}, "PARTITIONS": "4", "PATH": os.environ["PATH"],
           "SECRETS_DIR": str(tmp_path)}
    subprocess.run([*init["entrypoint"], script], env=env, capture_output=True, timeout=20, check=True)
    created = {}
    for args in (line.split() for line in calls.read_text().splitlines() if "--create" in line):
        created[args[args.index("--topic") + 1]] = [args[i + 1] for i, a in enumerate(args) if a == "--config"]
    assert created.pop(env["FINSENTRY_TOPIC_FEEDBACK"]) == ["retention.ms=-1"]
    assert len(created) == 8 + 3 and all(configs == [] for configs in created.values())  # + the 3 internal topics


@pytest.mark.integration
def test_the_worker_creates_the_feedback_topic_with_its_retention_on_the_embedded_broker(embedded_broker) -> None:
    # Tansu accepts topic configs on creation (it does not report them back: DescribeConfigs is empty)
    name = f"contoso.feedback-{uuid.uuid4().hex[:8]}"
    ensure_topics([embedded_broker.bootstrap], {name: 2}, configs={name: KEEP_FOREVER})
    ensure_topics([embedded_broker.bootstrap], {name: 2}, configs={name: KEEP_FOREVER})  # exists: checked only
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=[embedded_broker.bootstrap])
    try:
        assert consumer.partitions_for_topic(name) == {0, 1}
    finally:
        consumer.close()


# --- the whole export against a real broker --------------------------------------------------------

def produce_one_per_batch(bootstrap: str, topic: str, items: list[tuple[str | None, bytes | dict]]) -> None:
    """Each record in a batch of its own, as the workers write on Tansu (tests/conftest.py `read`)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in items:
            raw = value if isinstance(value, bytes) else json.dumps(value).encode()
            producer.send(topic, raw, key=key.encode() if key else None, partition=0 if key is None else None)
            producer.flush()
    finally:
        producer.close()


@pytest.mark.integration
def test_export_from_the_broker_names_what_it_skips_and_where_analysts_disagree(embedded_broker, tmp_path: Path,
                                                                               capsys) -> None:
    topic = f"fabrikam.feedback-{uuid.uuid4().hex[:8]}"
    ensure_topics([embedded_broker.bootstrap], {topic: 2}, configs={topic: KEEP_FOREVER})
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "labels.json").write_text(json.dumps({"topic": ["Earnings", "Macro"],
                                                                "sentiment": ["negative", "neutral", "positive"]}))
    items = [("fab-1", correction("fab-1", "case-a1", "alice", 1, sentiment="negative")),
             ("fab-1", correction("fab-1", "case-b1", "bob", 2, sentiment="positive")),
             ("nw-1", correction("nw-1", "case-a1", "alice", 1, topic="Macro")),
             ("nw-1", correction("nw-1", "case-a1", "alice", 2, topic="Earnings")),  # a change of mind
             ("nw-2", correction("nw-2", "case-a1", "alice", 1, sentiment="meh")),
             ("nw-3", correction("nw-3", "case-a1", "alice", 1, topic="Crypto")),
             (None, b"{not json")]
    produce_one_per_batch(embedded_broker.bootstrap, topic, items)
    out = tmp_path / "feedback.jsonl"
    rc = cli.main(["feedback", "export", str(out), "--broker", embedded_broker.url, "--topic", topic,
                   "--model", str(tmp_path / "model")])
    err = "\n".join(stderr_lines(capsys))
    assert rc == 0, err
    assert sorted((e.text, e.topic, e.sentiment) for e in load_file(out)) == [
        ("headline of fab-1", None, "positive"), ("headline of nw-1", "Earnings", None)]
    assert re.search(r"skipped 1 record\(s\), value is not JSON: partition 0 offset \d+$", err, re.MULTILINE)
    assert re.search(r"skipped 1 record\(s\), sentiment not one of .*: 'nw-2' \(partition \d offset \d+\)$", err, re.MULTILINE)
    assert re.search(r"skipped 1 record\(s\), topic not one of the --model's topics: 'nw-3'", err, re.MULTILINE)
    [disagree] = [line for line in err.splitlines() if "corrections disagree" in line]
    assert "'fab-1'" in disagree and "case-a1/alice 'negative', case-b1/bob 'positive'" in disagree
    assert "wrote 2 labelled example(s)" in err and "from 7 record(s), 3 skipped" in err


@pytest.mark.integration
def test_export_reads_partitions_longer_than_the_merge_buffers(embedded_broker, tmp_path: Path, capsys) -> None:
    # Two partitions each longer than the merge holds of one (topic_reader.BUFFERED), one record per batch
    # as the workers write on Tansu: kafka-python read a partition paused mid-fetch no further, and the
    # export failed at offset 2000 (tests/integration/test_tail_command.py shows the same for tail).
    from kafka import KafkaProducer

    topic = f"fabrikam.feedback-{uuid.uuid4().hex[:8]}"
    ensure_topics([embedded_broker.bootstrap], {topic: 2}, configs={topic: KEEP_FOREVER})
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "labels.json").write_text(json.dumps({"topic": ["Earnings", "Macro"],
                                                                "sentiment": ["negative", "neutral", "positive"]}))
    total = 4 * topic_reader.BUFFERED
    producer = KafkaProducer(bootstrap_servers=embedded_broker.bootstrap, acks="all", batch_size=1)
    body = "Fabrikam said the review of its northern refinery would finish next quarter. " * 3
    for n in range(total):  # a wire story's length: shorter records did not bring the pause mid-fetch
        value = {**correction(f"fab-{n}", f"case-{n}", "alice", n % 600, sentiment="negative"), "text": f"{n} {body}"}
        producer.send(topic, json.dumps(value).encode(), key=f"fab-{n}".encode(), partition=n % 2)
    producer.flush()
    producer.close()
    out = tmp_path / "feedback.jsonl"
    rc = cli.main(["feedback", "export", str(out), "--broker", embedded_broker.url, "--topic", topic,
                   "--model", str(tmp_path / "model")])
    err = "\n".join(stderr_lines(capsys))
    assert rc == 0, err
    assert len(load_file(out)) == total and f"wrote {total} labelled example(s)" in err


def test_no_broker_is_one_line_naming_the_broker_and_the_fix(tmp_path: Path, capsys) -> None:
    # It was a 30-line kafka-python traceback (KafkaTimeoutError) and exit status 1.
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "labels.jsonl"
    code = cli.main(["feedback", "export", str(out), "--broker", f"kafka://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and err.startswith("finsentry: error: cannot read Kafka topic 'labels.feedback'")
    assert f"127.0.0.1:{port}" in err and "check the broker is running" in err
