"""Worker settings: environment variables first, an optional YAML file second, defaults last.

Every setting has one name: the field below, `FINSENTRY_<FIELD>` in the environment and `<field>`
in the file named by FINSENTRY_CONFIG. A bad value fails start-up with one line naming the setting
and what it accepts, because a worker that starts half-configured loses data later.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.records import Severity
from models.tickers import is_ticker, normalise_ticker
from models.variants import VARIANTS, Device
from scheduler.config import PolicyName

ENV_PREFIX = "FINSENTRY_"
# FINSENTRY_* variables that are not settings but are read elsewhere (the config file's name, the
# Tansu binary, ONNX Runtime threads, benches); names with these words hold secrets a roster or
# receivers file points at, and are the user's to choose.
OTHER_VARIABLES = frozenset({"CONFIG", "TANSU", "ORT_THREADS", "BENCH_CHECKPOINT", "WEBHOOK_SECRET"})
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")
BROKER_ENV = ENV_PREFIX + "BROKER"
DEFAULT_BROKER = "kafka://127.0.0.1:9092"
_warned: set[str] = set()


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and the fix."""


def bootstrap_servers(broker_url: str) -> list[str]:
    """`kafka://h1:9092,kafka://h2:9092` or `h1:9092,h2:9092` -> `["h1:9092", "h2:9092"]`: the one
    reader of a broker URL, for the worker's setting and the command-line tools' --broker alike."""
    servers = []
    for part in broker_url.split(","):
        address = part.strip()
        if address.lower().startswith("kafka://"):
            address = address[len("kafka://") :]
        host, sep, port = address.rpartition(":")
        if "://" in address or "/" in address or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"bad broker address {part.strip()!r} in {broker_url!r}: "
                "use host:port or kafka://host:port, comma-separated for several brokers"
            )
        servers.append(address)
    return servers


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str = DEFAULT_BROKER
    # How long `finsentry worker` waits for a broker to accept connections before giving up; Faust
    # itself exits at once when it cannot bootstrap, so a worker started before Kafka would die.
    broker_wait_seconds: float = Field(300.0, ge=0)
    # Tansu's workarounds (streams/app.py TANSU_WORKAROUNDS): true forces them, false refuses them,
    # unset applies them when the broker identifies itself as Tansu.
    embedded: bool | None = None
    app_id: str = "finsentry"
    partitions: int = Field(4, ge=1, le=1024)
    replication: int = Field(1, ge=1, le=16)
    web_port: int = Field(6066, ge=1, le=65535)
    # The interface the web port listens on: loopback unless deliberately exposed (compose sets
    # 0.0.0.0 inside its network); docs/SECURITY.md lists what the port serves.
    web_bind: str = "127.0.0.1"
    # The host name in this worker's own URLs (Faust's canonical_url, alert links without an external_url).
    web_host: str = "127.0.0.1"
    data_dir: Path = Path("/var/tmp/finsentry")
    # Faust table store: memory:// rebuilds tables from their changelog on start; rocksdb:// keeps
    # them on disk (needs faust-streaming[rocksdb]).
    store: str = "memory://"
    # Kafka's fetch.max.wait.ms: how long the broker may hold a fetch that found no record. Apache
    # Kafka answers as soon as a record arrives, so there it only paces idle polling; Tansu answers
    # later the longer this allows, even when records arrive, which adds to every hop's latency.
    # Unset: Faust's own 1500 ms, or 100 ms when Tansu's workarounds are on (streams/app.py).
    consumer_fetch_max_wait_ms: int | None = Field(None, ge=0, le=60_000)

    topic_raw: str = "news.raw"
    topic_clean: str = "news.clean"
    topic_scored: str = "news.scored"
    topic_deadletter: str = "news.deadletter"
    topic_anomalies: str = "alerts.anomalies"
    topic_alerts_deadletter: str = "alerts.deadletter"
    topic_case_events: str = "cases.events"
    topic_case_actions: str = "cases.actions"
    topic_feedback: str = "labels.feedback"

    model_dir: Path | None = None
    device: Device = "auto"
    # A name in models/variants.py VARIANTS. None: fp16 on CUDA, int8 with the fp16 re-check on a
    # CPU (models/recheck.py); "int8" trades about 2% of labels that differ from fp32 for 10-20%
    # more headlines per second.
    model_variant: str | None = None
    batch_max: int = Field(64, ge=1, le=4096)
    batch_linger: float = Field(0.02, gt=0, le=10)
    # Micro-batches the classify agent has in flight at once (Faust agent concurrency): with 2, one
    # batch runs the model while the event loop sends and acknowledges the previous one. Offsets are
    # still committed only up to the first unacknowledged record of each partition.
    classify_concurrency: int = Field(2, ge=1, le=8)
    dedupe_ttl: float = Field(86_400.0, gt=0)
    # After an agent crashes, how long the worker stays up reporting not-ready (so a Prometheus
    # scrape sees the crash) before it stops with exit status 1 (streams/failures.py). Twice the
    # deployment's 15 s scrape interval: at 15 s the one scrape could land just after the exit.
    crash_exit_delay_seconds: float = Field(30.0, ge=0, le=600)
    # A model call (one micro-batch through ONNX Runtime) that has run this long is hung: the worker
    # takes the crash path above, since a thread stuck in native code cannot be cancelled, and its
    # supervisor starts one whose model answers. A batch of 64 takes well under a second on a CPU.
    model_stall_seconds: float = Field(120.0, gt=0, le=3600)
    # A partition with work this worker has not finished (streams/health.py `Span.unfinished`), with
    # its committed offset still for this long, is stalled (streams/health.py): /readyz says so and
    # FinsentryConsumerStalled fires. Longer than two rounds of one webhook's default max_elapsed
    # (600 s): a case event queued behind a resolve's retry to a dead analyst receiver waits for both.
    consumer_stall_seconds: float = Field(1800.0, gt=0, le=86_400)
    # Test hook, off by default: "AGENT:N" makes AGENT raise once after N records; "model-call:N" hangs
    # a model call and "fetch:N" stops Faust taking a partition instead (streams/failures.py).
    fault_injection: str | None = Field(None, pattern=r"^[a-z-]+:[0-9]+$")

    # Detection overrides; unset means alerts.config.MonitorConfig's tuned default.
    monitor_window_seconds: float | None = Field(None, gt=0)
    monitor_allowed_lateness: float | None = Field(None, ge=0)
    monitor_warmup_windows: int | None = Field(None, ge=0)

    receivers: Path | None = None
    # Optional Alertmanager (base URL, e.g. http://alertmanager:9093) that also gets every alert.
    alertmanager_url: str | None = None
    roster: Path | None = None
    # An operator's bearer token for the silences API (/api/v2/silences), read from this file, beside
    # the roster's `operators` (hashed tokens); with neither, the API refuses every request (403).
    operator_token_file: Path | None = None
    # Scheduler policy knobs (scheduler.SchedulerPolicy); "none" sends every case to people.
    scheduler_assignment: PolicyName = "optimal"
    scheduler_auto_resolve_below: Literal[Severity, "none"] = "warning"
    scheduler_tick_seconds: float = Field(10.0, gt=0, le=3600)
    # Closed cases kept (the most recently closed), besides the two-day age limit.
    scheduler_retain_closed_count: int = Field(1000, ge=1, le=1_000_000)
    # Shared HMAC secret that signs case notifications to analysts' `notify` webhooks (an analyst's
    # roster `notify_secret_file` takes its place for that analyst).
    case_webhook_secret_file: Path | None = None
    # HMAC secret that signs what the API and console write to `cases.actions`; the scheduler drops
    # actions without a valid signature. Unset: a random one per worker (one worker only).
    case_action_secret_file: Path | None = None
    watchlist: frozenset[str] = frozenset()
    console_session_seconds: float = Field(8 * 3600.0, gt=0, le=7 * 86_400)  # console sign-in lifetime
    # Addresses of the reverse proxies in front of the web port (comma-separated). A request from one
    # is counted by sign-in throttling under the client X-Forwarded-For names (streams/views/http.py
    # `client_address`), so one guesser behind the proxy does not throttle the whole desk.
    trusted_proxies: frozenset[str] = frozenset()

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        """Faust needs the scheme on every address, which the command-line tools' --broker may leave out."""
        try:
            usable = bool(bootstrap_servers(value)) and all(p.strip().startswith("kafka://") for p in value.split(","))
        except ValueError:
            usable = False
        if not usable:
            raise ValueError("expected kafka://HOST:PORT[,kafka://HOST:PORT...]")
        return value

    @field_validator("model_variant")
    @classmethod
    def _known_variant(cls, value: str | None) -> str | None:
        if value is not None and value not in VARIANTS:
            raise ValueError(f"use one of {', '.join(VARIANTS)}")
        return value

    @field_validator("watchlist", mode="before")
    @classmethod
    def _tickers(cls, value: object) -> object:
        """Read as ingest keeps a story's tickers (models/tickers.py), so `BRK/B` or `LON:VOD` names the
        label the story's ticker gets; a name no story could carry is refused (ValueError names it)."""
        if isinstance(value, str):
            tickers = {t: normalise_ticker(t) for t in value.split(",") if t.strip()}
            if wrong := [t.strip() for t, ticker in tickers.items() if not is_ticker(ticker)]:
                raise ValueError(f"{', '.join(map(repr, wrong))}: no ticker as stories carry them (e.g. AAPL, "
                                 "BRK.B, VOD.L; docs/INPUTS.md)")
            return frozenset(tickers.values())
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        names = [a.strip() for a in value.split(",") if a.strip()] if isinstance(value, str) else value
        if isinstance(names, list | set | frozenset | tuple):
            addresses = [ipaddress.ip_address(name) for name in names]  # ValueError names the one that is not
            # canonical, as streams/views/http.py `canonical_ip` writes a peer: `::1`, IPv4-mapped as IPv4
            return frozenset(str(getattr(a, "ipv4_mapped", None) or a) for a in addresses)
        return value

    @property
    def bootstrap_servers(self) -> list[str]:
        return bootstrap_servers(self.broker)

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (self.kafka_sasl_mechanism and self.kafka_sasl_username):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs "
                             "FINSENTRY_KAFKA_SASL_MECHANISM and FINSENTRY_KAFKA_SASL_USERNAME")
        return self

    def kafka_python_options(self) -> dict[str, Any]:
        """The worker's Kafka security settings as kafka-python arguments, for the CLI tools that
        produce to or read from the same cluster."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_ssl_cafile is not None:
            options["ssl_cafile"] = str(self.kafka_ssl_cafile)
        if self.kafka_security_protocol.startswith("SASL_"):
            options.update(sasl_mechanism=self.kafka_sasl_mechanism, sasl_plain_username=self.kafka_sasl_username,
                           sasl_plain_password=self.kafka_password() or "")
        return options

    def kafka_password(self) -> str | None:
        """Read the SASL password from its file on demand, so it never sits in settings dumps."""
        if self.kafka_sasl_password_file is None:
            return None
        return self.kafka_sasl_password_file.read_text().strip()

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        config = env.get(ENV_PREFIX + "CONFIG")
        if config:
            values.update(_read_file(Path(config)))
        fields = set(cls.model_fields)
        for key, raw in env.items():
            if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
                continue
            name = key.removeprefix(ENV_PREFIX).lower()
            if name in fields:
                values[name] = raw if raw != "" else None
            else:
                warn_unknown(key, fields)
        values = {k: v for k, v in values.items() if v is not None}
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            if not err["loc"]:  # a rule across settings (a model validator): its message names them
                raise SettingsError(str(err["msg"]).removeprefix("Value error, ")) from None
            name = str(err["loc"][0])
            raise SettingsError(
                f"setting {name} (env {ENV_PREFIX}{name.upper()}): {str(err['msg']).removeprefix('Value error, ')}"
                + (f", got {err.get('input')!r}" if "input" in err and name in fields else "")
            ) from None


def unknown_variable_warning(key: str, fields: set[str]) -> str | None:
    """The warning for a FINSENTRY_* variable that is not a setting, or None when it is read elsewhere."""
    rest = key.removeprefix(ENV_PREFIX)
    if rest in OTHER_VARIABLES or any(word in rest for word in SECRET_WORDS):
        return None
    known = sorted(ENV_PREFIX + f.upper() for f in fields) + [ENV_PREFIX + v for v in sorted(OTHER_VARIABLES)]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else "; the settings are the fields of streams/settings.py"
    return f"finsentry: warning: {key} is not a setting and is ignored{hint}"


def warn_unknown(key: str, fields: set[str]) -> None:
    """Warn once per process about a FINSENTRY_* variable that is not a setting (a typo is otherwise silent)."""
    if key in _warned:
        return
    _warned.add(key)
    message = unknown_variable_warning(key, fields)
    if message:
        print(message, file=sys.stderr, flush=True)


def _read_file(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror}; fix FINSENTRY_CONFIG") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: expected a mapping of setting: value")
    unknown = set(data) - set(Settings.model_fields)
    if unknown:
        raise SettingsError(f"config file {path}: unknown setting(s) {sorted(unknown)}")
    return data
