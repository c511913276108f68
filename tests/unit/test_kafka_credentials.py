"""The worker's Kafka security settings reach Faust as the right credentials object, and the SASL
password comes from its file, never from the settings themselves."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from scheduler.roster import parse_roster
from scheduler.tokens import hash_token
from streams.app import faust_config
from streams.settings import Settings, SettingsError


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
    with pytest.raises(SettingsError) as error:
        Settings.load({"FINSENTRY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "FINSENTRY_KAFKA_SASL_MECHANISM": "PLAIN"})
    assert str(error.value) == ("kafka_security_protocol SASL_SSL needs FINSENTRY_KAFKA_SASL_MECHANISM "
                                "and FINSENTRY_KAFKA_SASL_USERNAME")


def test_cli_tools_get_the_same_security_settings_as_kafka_python_arguments(tmp_path: Path) -> None:
    secret, ca = tmp_path / "kafka-password", tmp_path / "ca.pem"
    secret.write_text("s3cret-from-file\n")
    settings = Settings.load({"FINSENTRY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                              "FINSENTRY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                              "FINSENTRY_KAFKA_SASL_USERNAME": "finsentry",
                              "FINSENTRY_KAFKA_SASL_PASSWORD_FILE": str(secret), "FINSENTRY_KAFKA_SSL_CAFILE": str(ca)})
    assert settings.kafka_python_options() == {
        "security_protocol": "SASL_SSL", "ssl_cafile": str(ca), "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "finsentry", "sasl_plain_password": "s3cret-from-file"}
    assert Settings.load({"FINSENTRY_KAFKA_SECURITY_PROTOCOL": "SSL"}).kafka_python_options() == {
        "security_protocol": "SSL"}
    assert Settings.load({}).kafka_python_options() == {}


def test_kafka_python_accepts_the_cli_options(tmp_path: Path) -> None:
    # kafka-python validates its keyword arguments before connecting: a misspelt option would raise here.
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    secret = tmp_path / "kafka-password"
    secret.write_text("pw")
    options = Settings.load({"FINSENTRY_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                             "FINSENTRY_KAFKA_SASL_MECHANISM": "PLAIN", "FINSENTRY_KAFKA_SASL_USERNAME": "u",
                             "FINSENTRY_KAFKA_SASL_PASSWORD_FILE": str(secret)}).kafka_python_options()
    with pytest.raises(KafkaError):  # nothing listens on port 9: the options were accepted, the broker is absent
        KafkaProducer(bootstrap_servers=["127.0.0.1:9"], bootstrap_timeout_ms=500, **options)


def test_a_token_that_is_not_utf8_is_a_mismatch_not_an_error() -> None:
    roster = parse_roster("analysts:\n  - id: ana\n    name: Ana\n    capacity: 1\n"
                          "    shifts: ['Mon-Sun 00:00-24:00 UTC']\n    skills: {topics: {Earnings: 1}}\n"
                          "    notify: http://127.0.0.1:9/ana\n    token_hash: " + hash_token("t" * 24, n=16) + "\n")
    assert roster.authenticate("tok\udcff") is None  # how aiohttp hands over byte 0xff
