"""A dead letter always fits the broker: an original over 256 KiB is cut, and keeps its size and hash."""

from __future__ import annotations

import base64
import hashlib
import json

from streams.deadletter import MAX_ERROR_CHARS, MAX_ORIGINAL_BYTES, dead_letter, dead_letter_key


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


def sent_size(record: dict) -> int:
    """The value's bytes as the dead-letter topic's codec (Faust's JSON, ensure_ascii) writes them."""
    from faust.utils import json as faust_json

    return len(faust_json.dumps(record).encode())


def test_an_original_whose_escaped_json_would_not_fit_is_kept_as_base64() -> None:
    """The review's finding: 256 KiB of control characters (or of emoji) is valid UTF-8, and Faust's
    JSON writes each as a six-byte escape: a 1.5 MB dead letter the producer refuses, so the worker
    stopped on the same record after every restart."""
    raw = b"\x01" * (1024 * 1024)
    record = dead_letter("ingest", "invalid_json", "not JSON", raw, "news.raw", 0, 5).to_json()
    assert sent_size(record) < 1_000_000
    assert record["original_encoding"] == "base64" and record["original_truncated"] is True
    assert base64.b64decode(record["original"]) == raw[:MAX_ORIGINAL_BYTES]
    emoji = ("\U0001F4C8" * 300_000).encode()  # 12 bytes escaped for 4: 256 KiB of them still fits as text
    record = dead_letter("ingest", "invalid_json", "not JSON", emoji, "news.raw", 0, 6).to_json()
    assert record["original_encoding"] == "utf-8" and emoji.startswith(record["original"].encode())
    assert sent_size(record) < 1_000_000


def test_a_huge_error_is_cut_and_says_how_long_it_was() -> None:
    """The review's finding: a rejection quoting an 800,000-character field made the dead letter
    itself too large to send."""
    error = "sentiment: not one of negative, neutral, positive: " + "x" * 800_000
    record = dead_letter("monitor", "wrong_type", error, b"{}", "news.scored", 2, 9).to_json()
    assert sent_size(record) < 60_000
    assert record["error"].startswith(error[:MAX_ERROR_CHARS]) and record["error"].endswith(
        f"... (cut: {len(error)} characters)")


def test_a_key_too_large_to_send_back_becomes_its_digest() -> None:
    """The review's finding: the original and the error were bounded but the key was sent back as it
    came, so a 740 KB key beside a large value made a dead letter the producer refused."""
    key = b"k" * 740_000
    assert dead_letter_key(key) == b"sha256:" + hashlib.sha256(key).hexdigest().encode()
    assert dead_letter_key(b"story-17") == b"story-17" and dead_letter_key(None) is None
    # the largest text original kept as text (escaped just under its bound), the longest error, a key at its bound
    worst = dead_letter("ingest", "invalid_json", "\x01" * 900_000, b"\x01" * 133_000, "news.raw", 0, 1).to_json()
    assert worst["original_encoding"] == "utf-8"
    assert sent_size(worst) + len(dead_letter_key(b"k" * 4096)) < 1_000_000 - 1024
