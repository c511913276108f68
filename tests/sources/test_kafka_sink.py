from __future__ import annotations

import socket
import time

import pytest

from streams.cli import main
from streams.settings import bootstrap_servers
from streams.sources import kafka_sink
from streams.sources.kafka_sink import KafkaSink, SinkError, encode_value


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("kafka://h1:9092,kafka://h2:9092", ["h1:9092", "h2:9092"]),
        ("h1:9092, h2:9093", ["h1:9092", "h2:9093"]),
        ("KAFKA://broker.internal:19092", ["broker.internal:19092"]),
        ("kafka://[::1]:9092", ["[::1]:9092"]),
    ],
)
def test_bootstrap_servers_accepts_both_forms(url: str, servers: list[str]) -> None:
    assert bootstrap_servers(url) == servers


@pytest.mark.parametrize(
    "url", ["", "kafka://", "h1", "h1:", ":9092", "h1:port", "h1:0", "h1:70000", "http://h1:9092", "kafka://h1:9092/x"]
)
def test_bootstrap_servers_rejects_anything_else(url: str) -> None:
    with pytest.raises(ValueError, match="use host:port or kafka://host:port"):
        bootstrap_servers(url)


def test_values_are_compact_utf8_json_and_bytes_pass_through() -> None:
    assert encode_value({"headline": "Café sales up", "n": [1, 2]}) == '{"headline":"Café sales up","n":[1,2]}'.encode()
    assert encode_value(b"\xff not json") == b"\xff not json"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_broker_is_a_quick_one_line_sink_error() -> None:
    url = f"kafka://127.0.0.1:{closed_port()}"
    began = time.monotonic()
    with pytest.raises(SinkError) as error:
        KafkaSink(url, "news.raw", {"bootstrap_timeout_ms": 500})
    # Quick: the 500 ms asked for, not the default wait (any slack short of it, for a busy machine).
    assert time.monotonic() - began < kafka_sink.PRODUCER_DEFAULTS["bootstrap_timeout_ms"] / 1000
    message = str(error.value)
    assert url in message and "FINSENTRY_BROKER" in message and "\n" not in message


def test_generate_cli_reports_unreachable_broker_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(kafka_sink.PRODUCER_DEFAULTS, "bootstrap_timeout_ms", 500)
    url = f"kafka://127.0.0.1:{closed_port()}"
    # An unreachable broker is a configuration error: exit status 2 and one line, as in every subcommand.
    assert main(["generate", "--count", "5", "--to-kafka", "--broker", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("finsentry: error: cannot deliver") and url in err[0]
