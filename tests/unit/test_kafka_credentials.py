"""The worker's Kafka security settings reach Faust as the right credentials object, and the SASL
password comes from its file, never from the settings themselves."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from scheduler.roster import parse_roster
from streams.app import faust_config
from streams.settings import Settings


def credentials(**settings: object) -> object:
    return faust_config(Settings(**settings)).get("broker_credentials")


def test_plaintext_has_no_credentials() -> None:
    assert credentials() is None


def test_ssl_gets_an_ssl_context() -> None:
    creds = credentials(kafka_security_protocol="SSL")
    assert isinstance(creds, faust.SSLCredentials) and creds.context is not None


@pytest.mark.parametrize(("protocol", "mechanism", "with_tls"), [
    ("SASL_PLAINTEXT", "PLAIN", False), ("SASL_SSL", "PLAIN", True),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256", False), ("SASL_SSL", "SCRAM-SHA-512", True)])
def test_sasl_password_is_read_from_its_file(tmp_path: Path, protocol: str, mechanism: str, with_tls: bool) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("s3cret-from-file\n")
    settings = Settings(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism,
                        kafka_sasl_username="finsentry", kafka_sasl_password_file=secret)
    creds = faust_config(settings)["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password) == ("finsentry", "s3cret-from-file")
    assert creds.mechanism.value == mechanism
    assert (creds.ssl_context is not None) == with_tls
    assert "s3cret" not in repr(settings.model_dump())  # only the path is a setting


def test_sasl_without_username_is_a_one_line_error() -> None:
    with pytest.raises(SystemExit, match="FINSENTRY_KAFKA_SASL_USERNAME"):
        credentials(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN")


def test_a_token_that_is_not_utf8_is_a_mismatch_not_an_error() -> None:
    roster = parse_roster("analysts:\n  - id: ana\n    name: Ana\n    capacity: 1\n"
                          "    shifts: ['Mon-Sun 00:00-24:00 UTC']\n    skills: {topics: {Earnings: 1}}\n"
                          "    notify: http://127.0.0.1:9/ana\n    token_sha256: " + "0" * 64 + "\n")
    assert roster.analysts["ana"].verify_token("tok\udcff") is False  # how aiohttp hands over byte 0xff
