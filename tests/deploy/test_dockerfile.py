"""deploy/Dockerfile and .dockerignore, read as text (no Docker engine here to build them)."""

from __future__ import annotations

import json
import re
import tomllib

from .paths import DOCKERFILE, ROOT

TEXT = DOCKERFILE.read_text()
ARGS = dict(re.findall(r"^ARG (\w+)=(\S+)", TEXT, re.MULTILINE))
STAGES = re.findall(r"^FROM (\S+) AS (\S+)", TEXT, re.MULTILINE)


def _stage(name: str) -> str:
    """The instructions of one stage, up to the next FROM."""
    start = TEXT.index(f" AS {name}\n")
    end = TEXT.find("\nFROM ", start)
    return TEXT[start: end if end != -1 else None]


def test_base_images_are_pinned():
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", ARGS["BASE_IMAGE"])
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d\d\.\d\d", ARGS["CUDA_IMAGE"])
    stage_names = {name for _, name in STAGES}
    for image, _ in STAGES:
        ref = ARGS.get(image.strip("${}"), image)
        assert ref in stage_names or re.search(r":v?\d+(\.\d+)+[\w.-]*$", ref), f"FROM {image} is not pinned"


def test_cpu_is_the_default_target_and_gpu_a_named_one():
    # `docker build` without --target builds the last stage.
    assert STAGES[-1] == ("${BASE_IMAGE}", "cpu")
    assert ("${CUDA_IMAGE}", "gpu") in STAGES


def test_runtime_stages_run_the_worker_as_a_non_root_user_with_a_healthcheck():
    for stage in ("cpu", "gpu"):
        body = _stage(stage)
        user = re.findall(r"^USER (\S+)", body, re.MULTILINE)
        assert user and user[-1] not in ("root", "0"), stage
        assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", body, re.MULTILINE), stage
        entry = re.search(r"^ENTRYPOINT (.+)$", body, re.MULTILINE).group(1)
        cmd = re.search(r"^CMD (.+)$", body, re.MULTILINE).group(1)
        assert json.loads(entry) == ["finsentry"]
        assert json.loads(cmd) == ["worker", "-l", "info", "--web-port", "6066"]
        # No compilers or torch in what ships.
        assert "torch" not in body and "build-essential" not in body


def test_dockerignore_keeps_local_state_out_and_the_package_in():
    lines = [l for l in (ROOT / ".dockerignore").read_text().splitlines() if l and not l.startswith("#")]
    assert lines[0] == "*", "an allow-list starts by excluding everything"
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    # Everything `pip install .` reads (pyproject, its readme, its packages) and nothing else.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert allowed == {"pyproject.toml", project["project"]["readme"], *packages}
    for line in re.findall(r"^COPY (?!--from)(.+)$", TEXT, re.MULTILINE):
        for source in line.split()[:-1]:
            assert source in allowed, f"COPY {source} but .dockerignore leaves it out of the context"
