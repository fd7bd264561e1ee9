"""compose.yaml is a Compose file both Compose implementations accept (v1.29 and v2)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.containers


def compose_config(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "drlab", "DRLAB_TIME_SCALE": "0.05"},
    )


def test_docker_compose_v1_accepts_the_file_with_host_networking_and_healthchecks() -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose (v1) is not installed")
    result = compose_config(["docker-compose"])
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert len(services) == 13
    for name, body in services.items():
        assert body["network_mode"] == "host", name
        assert body["image"] == "drlab:latest", name
        assert body["environment"]["DRLAB_TIME_SCALE"] == "0.05", name
        assert body["healthcheck"]["test"][:4] == ["CMD", "python", "-m", "emulator.common.probe"]


def test_docker_compose_v2_accepts_the_file() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if version.returncode != 0:
        pytest.skip("the docker compose (v2) plugin is not installed")
    result = compose_config(["docker", "compose"])
    assert result.returncode == 0, result.stderr
