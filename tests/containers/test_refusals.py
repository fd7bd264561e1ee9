"""``drlab --engine compose up`` refuses what it cannot run, saying what to do, and never leaves a
half-started lab: no Docker engine, the image missing, a port already taken, a service that does
not come up; containers left stopped by an earlier run are removed."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers.test_lab_in_containers import PORTS_FREE_WAIT, docker_ps, lab_ports_free
from tests.support import eventually_sync

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.containers, pytest.mark.timeout(600)]


def drlab_up(
    state_dir: Path, file: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "emulator.lab", "--engine", "compose"]
    command += ["--state-dir", str(state_dir), "--file", str(file or ROOT / "compose.yaml")]
    return subprocess.run(
        [*command, "up", "-d", "--time-scale", "0.05"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )


@contextlib.contextmanager
def hold_port_8080() -> Iterator[None]:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 8080))
        holder.listen()
        yield


@pytest.fixture
def free_ports(docker_engine: None) -> Iterator[None]:
    eventually_sync(
        lab_ports_free,
        PORTS_FREE_WAIT,
        "the lab's ports (another lab is running here)",
        interval=0.1,
    )
    yield
    assert docker_ps() == [], "a refused up left containers behind"


def test_no_docker_engine_says_how_to_get_one(tmp_path: Path) -> None:
    result = drlab_up(tmp_path, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 1
    assert "docker-engine up" in result.stderr and "install Docker" in result.stderr
    for args in (["status"], ["down"], ["kill", "gws1"], ["scenario", "run", "s2-gws-sip-link"]):
        other = subprocess.run(
            [
                sys.executable,
                "-m",
                "emulator.lab",
                "--engine",
                "compose",
                "--state-dir",
                str(tmp_path),
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"},
        )
        assert other.returncode == 1 and "docker-engine up" in other.stderr, other.stderr


def test_a_missing_image_says_how_to_build_it(free_ports: None, tmp_path: Path) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text((ROOT / "compose.yaml").read_text().replace("drlab:latest", "drlab:absent"))
    result = drlab_up(tmp_path / "state", file)
    assert result.returncode == 1
    assert "image drlab:absent is missing; build it" in result.stderr


def test_a_taken_port_is_named_and_nothing_starts(free_ports: None, tmp_path: Path) -> None:
    with hold_port_8080():
        result = drlab_up(tmp_path)
    assert result.returncode == 1
    assert "127.0.0.1:8080 (proxy-dc1)" in result.stderr and "already in use" in result.stderr


def test_a_service_that_does_not_come_up_stops_the_whole_lab(
    free_ports: None, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    broken = (
        (ROOT / "compose.yaml").read_text().replace("gws1, --dc", "gws1, --no-such-option, --dc")
    )
    file.write_text(broken)
    result = drlab_up(tmp_path / "state", file)
    assert result.returncode == 1
    assert "gws1 stopped (Exited (2)) before it was ready" in result.stderr
    assert "stopping what was started" in result.stdout
    assert "removed" in result.stdout


def test_stopped_containers_of_an_earlier_run_are_removed(free_ports: None, tmp_path: Path) -> None:
    labels = ["--label", "com.docker.compose.project=drlab"]
    labels += ["--label", "com.docker.compose.service=sip1"]
    create = ["docker", "create", *labels, "drlab:latest", "true"]
    stale = subprocess.run(create, check=True, capture_output=True, text=True, timeout=60)
    try:
        with hold_port_8080():  # refused after the cleanup: no lab to take down
            result = drlab_up(tmp_path)
    finally:
        subprocess.run(["docker", "rm", "-f", stale.stdout.strip()], capture_output=True)
    assert "removed 1 stopped containers left by an earlier run" in result.stdout
    assert result.returncode == 1 and "already in use" in result.stderr
