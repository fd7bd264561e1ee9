"""The container test group: runs only where a Docker engine answers and the image is built.

``scripts/test.sh`` brings up an engine (``scripts/docker-engine.sh``, or the shared tool on drlab
machines) and builds ``drlab:latest`` first, so in CI they run; only where no engine can run do
they skip, with the reason (no docker CLI, no engine, no image). Run only this group with
``pytest -m containers tests/containers``.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

IMAGE = "drlab:latest"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "containers: needs a Docker engine and the drlab image")


def docker_missing() -> str | None:
    """Why the container tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI (scripts/docker-engine.sh up installs and starts one)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return f"no Docker engine answers: {' '.join(info.stderr.strip().splitlines()[-1:]) or '?'}"
    image = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=30)
    if image.returncode != 0:
        return f"image {IMAGE} is not built (docker build -t {IMAGE} .)"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    reason = docker_missing()
    if reason is not None:
        pytest.skip(reason)
