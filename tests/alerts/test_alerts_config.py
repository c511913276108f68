"""Receivers YAML: a valid file loads; each mistake is one ConfigError naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.receivers import ConfigError, load_config

VALID = """
external_url: https://finsentry.example
receivers:
  - name: ops
    url: https://hooks.example/ops
    secret_env: OPS_SECRET
    severities: [warning, critical]
    scopes: ["ticker:*"]
    group_by: [scope, alertname]
    group_wait: 10s
    group_interval: 5m
    repeat_interval: 4h
    timeout: 5s
    max_attempts: 4
  - name: desk
    url: http://127.0.0.1:9000/hook
    secret_file: desk.secret
silences:
  - matchers: [{name: scope, value: "ticker:T.*", is_regex: true}]
    ends_at: 2000000000
    comment: maintenance
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "receivers.yaml"
    path.write_text(text)
    return path


def test_valid_config_loads(tmp_path: Path) -> None:
    (tmp_path / "desk.secret").write_text("s3cret\n")
    config = load_config(write(tmp_path, VALID), env={"OPS_SECRET": "abc"})
    ops, desk = config.receivers
    assert ops.secret == b"abc" and desk.secret == b"s3cret"
    assert (ops.group_wait, ops.group_interval, ops.repeat_interval, ops.timeout) == (10, 300, 14400, 5)
    assert ops.wants({"severity": "critical", "scope": "ticker:AAPL"})
    assert not ops.wants({"severity": "info", "scope": "ticker:AAPL"})
    assert not ops.wants({"severity": "critical", "scope": "topic:Earnings"})
    assert desk.group_by == ("scope",) and "s3cret" not in repr(desk)
    assert ops.type == desk.type == "webhook"  # the default receiver type
    assert config.silences[0].matchers[0].matches({"scope": "ticker:T01"})
    assert config.external_url == "https://finsentry.example"


@pytest.mark.parametrize(
    ("edit", "env", "expected"),
    [
        (("secret_env: OPS_SECRET", "secret: inline"), {}, r"receivers\[0\]\.secret: inline secrets are not allowed"),
        (("", ""), {}, r"receivers\[0\]\.secret_env: environment variable OPS_SECRET is unset"),
        (("group_wait: 10s", "group_wait: soon"), {"OPS_SECRET": "x"}, r"receivers\[0\]\.group_wait: expected a duration"),
        (("[warning, critical]", "[warning, urgent]"), {"OPS_SECRET": "x"}, r"severities: unknown urgent"),
        (("max_attempts: 4", "max_attempts: 0"), {"OPS_SECRET": "x"}, r"max_attempts: expected an integer >= 1"),
        (("url: https://hooks.example/ops", "url: hooks.example"), {"OPS_SECRET": "x"}, r"url: .* must start with http"),
        # a port no request can be made to: once found out at every send, the group stuck behind it
        (("url: https://hooks.example/ops", "url: https://hooks.example:99999/ops"), {"OPS_SECRET": "x"},
         r"url: .* port from 1 to 65535"),
        (("timeout: 5s", "timout: 5s"), {"OPS_SECRET": "x"}, r"receivers\[0\]: unknown field\(s\) timout"),
        (("name: desk", "name: ops"), {"OPS_SECRET": "x"}, r"name 'ops' is used twice"),
        (("- name: ops", "- type: pager\n    name: ops"), {"OPS_SECRET": "x"}, r"receivers\[0\]\.type: unknown 'pager'"),
        (("comment: maintenance", "comment: x\n  - {matchers: [{name: a, value: '(', is_regex: true}], ends_at: 1}"),
         {"OPS_SECRET": "x"}, r"silences\[1\]: .*invalid regex"),
    ],
)
def test_bad_config_names_file_field_and_fix(tmp_path: Path, edit: tuple[str, str], env: dict, expected: str) -> None:
    (tmp_path / "desk.secret").write_text("s3cret")
    path = write(tmp_path, VALID.replace(*edit))
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(path, env=env)
    assert str(path) in str(info.value)


def test_missing_secret_file_and_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    with pytest.raises(ConfigError, match=r"receivers\[1\]\.secret_file: cannot read .*desk.secret"):
        load_config(path, env={"OPS_SECRET": "x"})
    with pytest.raises(ConfigError, match=r"not valid YAML"):
        load_config(write(tmp_path, "receivers: [name: x\n"), env={})
    with pytest.raises(ConfigError, match=r"receivers: required"):
        load_config(write(tmp_path, "external_url: x\n"), env={})
