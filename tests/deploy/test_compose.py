"""docker-compose.yml: the services, their images, health, volumes and the worker's settings.

No Docker engine is needed: the file is read as YAML (merge keys resolved), and the one script it
runs (kafka-init) is executed with bash against a stand-in for kafka-topics.sh.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import PurePosixPath

import pytest
import yaml

from streams import app
from streams.settings import ENV_PREFIX, Settings

from .paths import COMPOSE, PROMETHEUS_CONFIG, ROOT

# The worker's settings as environment variables (the contract in streams/settings.py). A compose
# key outside this set is silently ignored by the worker, so a typo would go unnoticed.
KNOWN_SETTINGS = frozenset({ENV_PREFIX + name.upper() for name in Settings.model_fields} | {ENV_PREFIX + "CONFIG"})
# Not settings, but read by name: receivers.example.yml's secret_env for the demo receiver.
SECRET_ENV = frozenset({"FINSENTRY_WEBHOOK_SECRET"})

SERVICES = {"kafka", "kafka-init", "worker", "worker-gpu", "prometheus", "grafana", "receiver"}
ONE_SHOT = {"kafka-init"}
WORKERS = ("worker", "worker-gpu")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, mode) for each short-syntax volume entry."""
    out = []
    for entry in service.get("volumes", []):
        parts = entry.split(":")
        out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"))
    return out


def test_every_service_is_there(services):
    assert SERVICES <= set(services), SERVICES - set(services)
    assert services["worker-gpu"].get("profiles") == ["gpu"]
    # Only the GPU worker is optional; the rest start with a plain `docker compose up`.
    assert [name for name, s in services.items() if s.get("profiles")] == ["worker-gpu"]


def test_every_image_is_pinned(services):
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: give every service an image name (built ones get a versioned tag)"
        _, sep, tag = image.rpartition(":")
        assert sep and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.match(r"v?\d+(\.\d+)+", tag), f"{name}: {image} is not pinned to a version"


def test_long_running_services_have_healthchecks(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart", "no") == "no", f"{name} must run once, not restart"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} should come back after a crash"


def test_named_volumes_are_declared_and_used(compose, services):
    declared = set(compose.get("volumes") or {})
    used = {src for s in services.values() for src, _, _ in _mounts(s) if not src.startswith((".", "/"))}
    assert used == declared, f"unused: {declared - used}, undeclared: {used - declared}"
    for role in ("kafka", "prometheus", "grafana", "worker"):
        assert any(role in v for v in declared), f"no named volume for {role}"


def test_bind_mounts_exist_and_are_read_only(services):
    for name, service in services.items():
        for src, target, mode in _mounts(service):
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name}: {src} does not exist"
                assert mode == "ro", f"{name}: {src} -> {target} should be mounted read-only"


def test_worker_environment_is_known_settings(services):
    for name in WORKERS:
        env = _env(services[name])
        unknown = set(env) - KNOWN_SETTINGS - SECRET_ENV
        assert not unknown, f"{name}: {sorted(unknown)} are not worker settings"
        assert env["FINSENTRY_BROKER"].startswith("kafka://kafka:9092")
        assert env["FINSENTRY_DATA_DIR"] == "/var/lib/finsentry"
        # Paths the worker is told about must be mounted into it.
        targets = {t for _, t, _ in _mounts(services[name])}
        for key in ("FINSENTRY_RECEIVERS", "FINSENTRY_ROSTER", "FINSENTRY_DATA_DIR"):
            assert env[key] in targets, f"{name}: {key}={env[key]} is not mounted"


def test_settings_constant_matches_the_settings_model():
    settings = pytest.importorskip("streams.settings", reason="streams.settings not importable")
    fields = {"FINSENTRY_" + f.upper() for f in settings.Settings.model_fields} | {"FINSENTRY_CONFIG"}
    assert KNOWN_SETTINGS <= fields, f"settings this test knows but the worker does not: {KNOWN_SETTINGS - fields}"


def test_worker_scales(services):
    worker = services["worker"]
    # A fixed name or host port lets only one replica start under --scale.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(worker["healthcheck"]["test"])


def test_gpu_worker_reserves_a_gpu(services):
    gpu = services["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] and d.get("count") for d in devices)
    assert _env(gpu)["FINSENTRY_DEVICE"] == "cuda"
    assert gpu["build"]["target"] == "gpu"
    assert _env(services["worker"])["FINSENTRY_DEVICE"] in ("cpu", "auto")


def test_kafka_is_kraft_with_a_persistent_log_dir(services):
    kafka = services["kafka"]
    env = _env(kafka)
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert env["KAFKA_LOG_DIRS"] in {t for _, t, _ in _mounts(kafka)}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is needed to run the kafka-init script")
def test_kafka_init_creates_every_worker_topic_with_the_worker_partitions(services, tmp_path):
    init, worker = services["kafka-init"], services["worker"]
    worker_env, init_env = _env(worker), _env(init)
    # Both read the same compose variable, so they cannot disagree.
    assert init_env["PARTITIONS"] == worker_env["FINSENTRY_PARTITIONS"]

    fake = tmp_path / "kafka-topics.sh"
    log = tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    script = init["command"][0].replace("$$", "$").replace("/opt/kafka/bin/kafka-topics.sh", str(fake))
    # The image's user cannot write a new named volume (root's): the script must run as root.
    assert str(init.get("user")) == "0"
    env = {**init_env, "PARTITIONS": "7", "PATH": os.environ["PATH"], "SECRETS_DIR": str(tmp_path)}
    result = subprocess.run([*init["entrypoint"], script], env=env,
                            capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    # The workers' case-action secret: made once, random, kept by the next `up`.
    secret = tmp_path / "case-actions.secret"
    made = secret.read_text()
    assert len(made) >= 32 and (tmp_path / "case-actions.secret").stat().st_mode & 0o777 == 0o644
    subprocess.run([*init["entrypoint"], script], env=env, capture_output=True, timeout=20, check=True)
    assert secret.read_text() == made
    mounts = {t: s for s, t, _ in _mounts(worker)}
    assert PurePosixPath(worker_env["FINSENTRY_CASE_ACTION_SECRET_FILE"]).parent.as_posix() in mounts
    # The analysts' case notifications are signed with the secret the demo receiver checks with: the
    # roster sends them there, and without a secret the worker notified no analyst by webhook.
    hooks = PurePosixPath(worker_env["FINSENTRY_CASE_WEBHOOK_SECRET_FILE"])
    assert hooks.parent == PurePosixPath(worker_env["FINSENTRY_CASE_ACTION_SECRET_FILE"]).parent
    receiver_secret = _env(services["receiver"])["FINSENTRY_WEBHOOK_SECRET"]
    assert (tmp_path / hooks.name).read_text() == init_env["FINSENTRY_WEBHOOK_SECRET"] == receiver_secret

    created = {}
    for line in log.read_text().splitlines():
        args = line.split()
        if "--create" in args:
            created[args[args.index("--topic") + 1]] = args[args.index("--partitions") + 1]
    topics = {v for k, v in worker_env.items() if k.startswith("FINSENTRY_TOPIC_")}
    assert len(topics) == 9
    # and the workers' internal topics, which workers allowed to create only finsentry-* cannot make
    internal = {app.BY_SCOPE_TOPIC: "7", app.NOTIFY_TOPIC: "1", app.INBOX_TOPIC: "1"}
    assert created == {**dict.fromkeys(topics, "7"), **internal}


def test_prometheus_discovers_the_compose_workers(services):
    prom = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    mounts = {t: s for s, t, _ in _mounts(services["prometheus"])}
    assert mounts.get("/etc/prometheus") == "./deploy/prometheus"
    discovered = {}
    for job in prom["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for host in sd["names"]:
                discovered[host] = sd["port"]
    for name in WORKERS:
        assert discovered.get(name) == int(_env(services[name])["FINSENTRY_WEB_PORT"]), name


def test_example_configs_load_with_the_real_parsers(services):
    # The worker refuses to start on a bad receivers or roster file, so the demo's must parse.
    receivers = pytest.importorskip("alerts.receivers", reason="alerts.receivers not importable")
    roster = pytest.importorskip("scheduler.roster", reason="scheduler.roster not importable")
    env = _env(services["worker"])
    mounts = {t: s for s, t, _ in _mounts(services["worker"])}
    config = receivers.load_config(ROOT / mounts[env["FINSENTRY_RECEIVERS"]], env=env)
    assert [r.url for r in config.receivers] == ["http://receiver:9000/"]
    # Signed with the secret the demo receiver checks.
    assert config.receivers[0].secret.decode() == _env(services["receiver"])["FINSENTRY_WEBHOOK_SECRET"]
    analysts = roster.load_roster(ROOT / mounts[env["FINSENTRY_ROSTER"]]).analysts
    assert len(analysts) >= 2
