"""`finsentry tail TOPIC`: a topic's records as JSON lines, against the embedded Tansu broker.

The last N over all partitions oldest first, --from-beginning (and its first N), --follow until
Ctrl-C (exit 130), values that are not JSON shown with why, and one-line errors for a
topic the broker lacks, and no broker. Each test reads its own topic, so none sees another's records.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections import namedtuple
from pathlib import Path

import pytest

from streams import broker, cli
from streams.commands.tail import record_line, value_field
from streams.commands.topic_reader import BUFFERED
from streams.settings import Settings
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
Message = namedtuple("Message", "topic partition offset timestamp key value")


def fresh_topic(embedded_broker: broker.EmbeddedBroker, partitions: int = 3) -> str:
    topic = f"tail.{uuid.uuid4().hex[:8]}"
    broker.create_topics(embedded_broker.bootstrap, {topic: partitions})
    return topic


def send(bootstrap: str, topic: str, records: list[tuple[int, int, bytes | None, bytes | None]],
         batch_bytes: int = 16384) -> None:
    """(partition, seconds after BASE_MS, key, value) each; the timestamps say the order to expect.
    `batch_bytes=1`: one record per batch, as the worker writes on Tansu (streams/app.py)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", batch_size=batch_bytes)
    for partition, second, key, value in records:
        producer.send(topic, value, key=key, partition=partition, timestamp_ms=BASE_MS + second * 1000)
    producer.flush()
    producer.close()


def story(n: int, body: str = "") -> bytes:
    return json.dumps({"id": f"contoso-{n}", "headline": f"Contoso update {n}", "body": body}).encode()


def tail(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    status = cli.main(["tail", *args])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def ids(lines: list[dict]) -> list[str]:
    return [line["value"]["id"] for line in lines]


@pytest.fixture
def seven(embedded_broker: broker.EmbeddedBroker) -> str:
    """A three-partition topic with contoso-0..6 written round the partitions, one second apart."""
    topic = fresh_topic(embedded_broker)
    send(embedded_broker.bootstrap, topic, [(n % 3, n, f"k{n}".encode(), story(n)) for n in range(7)])
    return topic


# --- values, without a broker ---------------------------------------------------------------------

def test_value_json_is_parsed_and_anything_else_says_why():
    assert value_field(b'{"id": "fabrikam-1", "score": 0.5}') == {"id": "fabrikam-1", "score": 0.5}
    assert value_field(b"null") is None  # JSON null, unlike a tombstone
    assert value_field(None) == {"undecodable": "no value (a tombstone)", "base64": None}
    assert value_field(b"\xff\xfe") == {"undecodable": "not UTF-8 (byte 0)", "base64": "//4="}
    plain = value_field(b"Fabrikam halts trading")
    assert plain["undecodable"].startswith("not JSON (") and plain["text"] == "Fabrikam halts trading"
    assert value_field(b'{"score": NaN}')["undecodable"] == "not JSON (NaN is not JSON)"
    assert "nested too deep" in value_field(b"[" * 100_000 + b"]" * 100_000)["undecodable"]


def test_record_line_is_one_json_object_jq_can_read():
    message = Message("news.scored", 2, 41, BASE_MS, b"fabrikam-7", '{"headline": "Fabrikam à Paris"}'.encode())
    assert json.loads(record_line(message)) == {
        "topic": "news.scored", "partition": 2, "offset": 41, "timestamp": "2026-01-01T00:00:00.000Z",
        "key": "fabrikam-7", "value": {"headline": "Fabrikam à Paris"}}
    assert "à" in record_line(message)
    assert "\\u00e0" in record_line(message, "ascii")  # a narrower terminal gets escapes, not an error
    lone = record_line(message._replace(key=b"\xff", value=b'"\\ud800"', timestamp=-1))
    lone.encode("utf-8")  # a lone surrogate in a JSON string would fail any UTF-8 write: escaped instead
    assert json.loads(lone)["key"] == {"undecodable": "not UTF-8 (byte 0)", "base64": "/w=="}
    assert json.loads(lone)["timestamp"] is None


# --- against the broker ---------------------------------------------------------------------------

def test_default_is_the_last_records_over_all_partitions_oldest_first(embedded_broker, seven, capsys):
    status, lines, err = tail(capsys, seven, "--broker", embedded_broker.url, "--count", "4")
    assert status == 0, err
    assert ids(lines) == ["contoso-3", "contoso-4", "contoso-5", "contoso-6"]
    assert [(line["partition"], line["offset"]) for line in lines] == [(0, 1), (1, 1), (2, 1), (0, 2)]
    assert lines[0]["topic"] == seven and lines[0]["key"] == "k3"
    assert lines[0]["timestamp"] == "2026-01-01T00:00:03.000Z"

    status, lines, _ = tail(capsys, seven, "--broker", embedded_broker.url)  # default count 10: all 7
    assert status == 0 and ids(lines) == [f"contoso-{n}" for n in range(7)]


def test_from_beginning_reads_everything_or_the_first_n(embedded_broker, seven, capsys):
    status, lines, _ = tail(capsys, seven, "--broker", embedded_broker.url, "--from-beginning")
    assert status == 0 and ids(lines) == [f"contoso-{n}" for n in range(7)]
    status, lines, _ = tail(capsys, seven, "--broker", embedded_broker.url, "--from-beginning", "--count", "2")
    assert status == 0 and ids(lines) == ["contoso-0", "contoso-1"]


def test_from_beginning_reads_partitions_longer_than_it_buffers(embedded_broker, capsys):
    # Two partitions, each longer than what the merge holds of one (BUFFERED), written one record per
    # batch as the worker writes on Tansu (streams/app.py), so a fetch brings more than a poll takes:
    # one partition is paused with records of its fetch still in line. Every record is still shown,
    # once, oldest first; tail used to stop at offset 2000 of such a partition (kafka-python read it
    # no further: streams/commands/topic_reader.py MAX_POLL_RECORDS).
    topic = fresh_topic(embedded_broker, partitions=2)
    total = 4 * BUFFERED
    body = "Contoso said the review of its northern refinery would finish next quarter. " * 3
    send(embedded_broker.bootstrap, topic, [(n % 2, n, None, story(n, body)) for n in range(total)], batch_bytes=1)
    status, lines, err = tail(capsys, topic, "--broker", embedded_broker.url, "--from-beginning")
    assert status == 0 and err == "", err
    assert ids(lines) == [f"contoso-{n}" for n in range(total)]


def test_broker_from_the_environment_and_records_sent_in_one_batch(embedded_broker, kafka, capsys, monkeypatch):
    # Tansu's end offset counts the last batch's first record only: the whole batch is still shown.
    topic = fresh_topic(embedded_broker, partitions=1)
    kafka.produce(embedded_broker.bootstrap, topic, [{"id": f"fabrikam-{n}"} for n in range(5)])
    monkeypatch.setenv("FINSENTRY_BROKER", embedded_broker.url)
    status, lines, err = tail(capsys, topic, "--count", "3")
    assert status == 0, err
    assert ids(lines) == ["fabrikam-2", "fabrikam-3", "fabrikam-4"]


def test_records_that_are_not_json_are_shown_with_why(embedded_broker, capsys):
    topic = fresh_topic(embedded_broker, partitions=1)
    send(embedded_broker.bootstrap, topic, [(0, 0, None, b"Contoso: not json"), (0, 1, b"\xff", b"\xc3"),
                                            (0, 2, b"contoso-9", None)])
    status, lines, _ = tail(capsys, topic, "--broker", embedded_broker.url)
    assert status == 0
    assert [line["key"] for line in lines] == [None, {"undecodable": "not UTF-8 (byte 0)", "base64": "/w=="},
                                              "contoso-9"]
    assert lines[0]["value"]["text"] == "Contoso: not json" and lines[0]["value"]["undecodable"].startswith("not JSON")
    assert lines[1]["value"] == {"undecodable": "not UTF-8 (byte 0)", "base64": "ww=="}
    assert lines[2]["value"] == {"undecodable": "no value (a tombstone)", "base64": None}


def test_an_empty_project_topic_prints_nothing_and_says_so(embedded_broker, capsys):
    topic = Settings().topic_deadletter  # created by the fixture, written by nobody here
    status, lines, err = tail(capsys, topic, "--broker", embedded_broker.url, "--count", "20")
    assert status == 0 and lines == []
    assert f"no records on {topic}" in err and "--follow" in err


def test_a_missing_topic_is_one_line_naming_the_topics_there_and_no_topic_lists_them(embedded_broker, seven, capsys):
    status, lines, err = tail(capsys, "news.scord", "--broker", embedded_broker.url)
    assert status == 2 and lines == [] and err.count("\n") == 1
    assert err.startswith("finsentry: error: topic 'news.scord' does not exist on " + embedded_broker.bootstrap)
    assert "news.scored" in err and seven in err

    # No topic: the topics there, one a line on stdout, exit 0 (it was a usage error, exit 2)
    status = cli.main(["tail", "--broker", embedded_broker.url])
    out, err = capsys.readouterr()
    names = out.splitlines()
    assert status == 0 and err == ""
    assert "news.deadletter" in names and seven in names and names == sorted(names)


def test_follow_with_a_count_from_the_beginning_is_refused(capsys):
    status, _, err = tail(capsys, "news.scored", "--from-beginning", "--count", "3", "--follow")
    assert status == 2 and "drop --count" in err


def test_no_broker_is_one_line():
    out = subprocess.run([sys.executable, "-m", "streams.cli", "tail", "news.scored", "--broker",
                          f"kafka://127.0.0.1:{broker.free_port()}"], capture_output=True, text=True, check=False,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("finsentry: error: cannot read Kafka topic 'news.scored'")
    assert "--broker" in out.stderr


def test_follow_prints_new_records_until_ctrl_c(embedded_broker, seven):
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "tail", seven, "--broker", embedded_broker.url,
                                "--count", "2", "--follow"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[dict] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(json.loads(line)) for line in process.stdout], daemon=True).start()
    seen: list[dict] = []

    def shown(n: int) -> bool:
        while not lines.empty():
            seen.append(lines.get())
        assert process.poll() is None, process.stderr.read()
        return len(seen) >= n

    try:
        wait_for(lambda: shown(2), 120, "the last two records")
        assert ids(seen) == ["contoso-5", "contoso-6"]
        send(embedded_broker.bootstrap, seven, [(1, 20, b"k20", story(20))])
        wait_for(lambda: shown(3), 120, "the record sent while following")
        assert ids(seen) == ["contoso-5", "contoso-6", "contoso-20"]
        assert seen[2]["partition"] == 1 and seen[2]["offset"] == 2
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130
    assert "Traceback" not in process.stderr.read()
