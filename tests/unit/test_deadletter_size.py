"""A dead letter always fits the broker: an original over 256 KiB is cut, and keeps its size and hash."""

from __future__ import annotations

import base64
import hashlib
import json

from streams.deadletter import MAX_ORIGINAL_BYTES, dead_letter


def test_a_two_megabyte_original_is_cut_with_its_size_and_sha256() -> None:
    raw = b'{"headline": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    record = dead_letter("ingest", "oversized", "too big", raw, "news.raw", 0, 7).to_json()
    assert len(json.dumps(record).encode()) < 1024 * 1024
    assert record["original_truncated"] is True
    assert record["original_bytes"] == len(raw)
    assert record["original_sha256"] == hashlib.sha256(raw).hexdigest()
    assert record["original"].encode() == raw[:MAX_ORIGINAL_BYTES]


def test_a_cut_never_splits_a_character_and_binary_stays_base64() -> None:
    raw = ("é" * MAX_ORIGINAL_BYTES).encode()  # two bytes each: the cut lands mid-character
    record = dead_letter("ingest", "oversized", "too big", raw, "news.raw", 0, 1).to_json()
    assert record["original_encoding"] == "utf-8" and record["original_truncated"] is True
    assert raw.startswith(record["original"].encode())
    binary = b"\xff\xfe" * MAX_ORIGINAL_BYTES
    record = dead_letter("ingest", "invalid_utf8", "bad", binary, "news.raw", 0, 2).to_json()
    assert record["original_encoding"] == "base64"
    assert base64.b64decode(record["original"]) == binary[:MAX_ORIGINAL_BYTES]


def test_a_small_original_is_whole() -> None:
    record = dead_letter("ingest", "invalid_json", "bad", b"{nope", "news.raw", 1, 3).to_json()
    assert (record["original"], record["original_truncated"], record["original_bytes"]) == ("{nope", False, 5)
