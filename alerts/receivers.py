"""Webhook receivers from YAML; every mistake is a `ConfigError` naming file, field and fix.

Secrets are never inline: `secret_env: VAR` or `secret_file: PATH` (relative to the config file).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from alerts.records import SEVERITIES
from alerts.silences import Silence

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Receiver types: each has its delivery in alerts/delivery.py DELIVERERS (the receiver contract, `Deliver`).
RECEIVER_TYPES = ("webhook",)
_RECEIVER_KEYS = {
    "type", "name", "url", "secret_env", "secret_file", "severities", "scopes", "group_by", "group_wait", "group_interval",
    "repeat_interval", "timeout", "max_attempts", "max_elapsed", "backoff_initial", "backoff_max",
}


class ConfigError(ValueError):
    """A bad alerting config; the message says where and how to fix it."""


def webhook_url(text: str) -> bool:
    """Whether a webhook can be POSTed to `text`, as httpx will read it: http(s), a host, a port in
    range. A receiver or an analyst's `notify` with a typo (`http://desk:80x/hook`) is refused when
    its file loads, not found out at every send."""
    try:
        url = httpx.URL(text)
        host = url.host  # decodes a punycode host: `xn--a.example` raises here, as it would at send
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return False
    return url.scheme in ("http", "https") and bool(host) and (url.port is None or 0 < url.port < 65536)


@dataclass(frozen=True)
class Receiver:
    name: str
    url: str
    secret: bytes = field(repr=False)
    severities: frozenset[str] = frozenset(SEVERITIES)
    scopes: tuple[str, ...] = ("*",)
    group_by: tuple[str, ...] = ("scope",)
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    timeout: float = 10.0
    max_attempts: int = 8
    max_elapsed: float = 600.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    type: str = "webhook"  # one of RECEIVER_TYPES: how alerts reach it

    def wants(self, labels: dict[str, str]) -> bool:
        """Severity and scope-glob filters: does this receiver get an alert with these labels?"""
        return labels.get("severity") in self.severities and any(
            fnmatch.fnmatchcase(labels.get("scope", ""), glob) for glob in self.scopes
        )


@dataclass(frozen=True)
class AlertingConfig:
    receivers: tuple[Receiver, ...]
    silences: tuple[Silence, ...] = ()
    external_url: str = ""


def parse_duration(value: object, where: str) -> float:
    """Seconds from a number or an Alertmanager-style string ('30s', '5m', '4h')."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration like 30s, 5m or 4h, got {value!r}")
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ConfigError(f"{where}: expected a duration like 30s, 5m or 4h, got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _secret(raw: dict, where: str, base: Path, env: dict[str, str]) -> bytes:
    if "secret" in raw:
        raise ConfigError(f"{where}.secret: inline secrets are not allowed; use secret_env: VAR or secret_file: PATH")
    if ("secret_env" in raw) == ("secret_file" in raw):
        raise ConfigError(f"{where}: give exactly one of secret_env (an environment variable) or secret_file (a path)")
    if "secret_env" in raw:
        value = env.get(str(raw["secret_env"]), "")
        if not value:
            raise ConfigError(f"{where}.secret_env: environment variable {raw['secret_env']} is unset or empty; "
                              "export it before starting the worker")
        return value.encode()
    path = base / str(raw["secret_file"])
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{where}.secret_file: cannot read {path} ({exc.strerror}); create it or fix the path") from exc
    if not value:
        raise ConfigError(f"{where}.secret_file: {path} is empty; put the shared secret in it")
    return value.encode()


def _str_list(raw: dict, key: str, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(key, list(default))
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key}: expected a list of strings, e.g. [{', '.join(default) or 'scope'}]")
    return tuple(value)


def _receiver(raw: object, where: str, base: Path, env: dict[str, str]) -> Receiver:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with at least name and url")
    unknown = sorted(set(raw) - _RECEIVER_KEYS - {"secret"})
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_RECEIVER_KEYS))}")
    for key in ("name", "url"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}.{key}: required, a non-empty string")
    kind = raw.get("type", "webhook")
    if kind not in RECEIVER_TYPES:
        raise ConfigError(f"{where}.type: unknown {kind!r}; use one of {', '.join(RECEIVER_TYPES)}")
    if not webhook_url(raw["url"]):
        raise ConfigError(f"{where}.url: {raw['url']!r} must start with http:// or https:// and name a host and a "
                          "port from 1 to 65535")
    severities = _str_list(raw, "severities", where, SEVERITIES)
    bad = sorted(set(severities) - set(SEVERITIES))
    if bad:
        raise ConfigError(f"{where}.severities: unknown {', '.join(bad)}; use any of {', '.join(SEVERITIES)}")
    durations = {k: parse_duration(raw[k], f"{where}.{k}") for k in
                 ("group_wait", "group_interval", "repeat_interval", "timeout", "max_elapsed", "backoff_initial",
                  "backoff_max") if k in raw}
    attempts = raw.get("max_attempts", Receiver.max_attempts)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise ConfigError(f"{where}.max_attempts: expected an integer >= 1, got {attempts!r}")
    return Receiver(
        name=raw["name"], url=raw["url"], secret=_secret(raw, where, base, env), severities=frozenset(severities),
        scopes=_str_list(raw, "scopes", where, ("*",)), group_by=_str_list(raw, "group_by", where, ("scope",)),
        max_attempts=attempts, type=kind, **durations,
    )


def _silence(raw: object, where: str) -> Silence:
    if not isinstance(raw, dict) or "matchers" not in raw or "ends_at" not in raw:
        raise ConfigError(f"{where}: expected matchers: [{{name, value, is_regex?}}] and ends_at (epoch seconds)")
    try:
        return Silence.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> AlertingConfig:
    """Read and validate the receivers file; `env` defaults to os.environ (injectable for tests)."""
    source = Path(path)
    env = dict(os.environ) if env is None else env
    try:
        data = yaml.safe_load(source.read_text())
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror}); pass the path of the receivers YAML") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc}); fix the syntax at the position shown") from exc
    if not isinstance(data, dict) or not isinstance(data.get("receivers"), list) or not data["receivers"]:
        raise ConfigError(f"{source}: receivers: required, a non-empty list of receivers (name, url, secret_env)")
    receivers = tuple(
        _receiver(raw, f"{source}: receivers[{i}]", source.parent, env) for i, raw in enumerate(data["receivers"])
    )
    names = [r.name for r in receivers]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"{source}: receivers: name {duplicate!r} is used twice; receiver names must be unique")
    silences = tuple(_silence(raw, f"{source}: silences[{i}]") for i, raw in enumerate(data.get("silences") or []))
    external_url = data.get("external_url", "")
    if not isinstance(external_url, str):
        raise ConfigError(f"{source}: external_url: expected a string URL")
    return AlertingConfig(receivers, silences, external_url)
