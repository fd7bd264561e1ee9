"""``drlab up -d``, ``status --json`` and ``down`` with the real compose.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.lab.embedded import process_state

ROOT = Path(__file__).resolve().parents[2]


def drlab(state_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.lab", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "lab"
    drlab(tmp_path / "lab", "down")


def test_up_status_down_leaves_no_process(state_dir: Path) -> None:
    started = drlab(state_dir, "up", "-d", "--time-scale", "0.1")
    assert started.returncode == 0, started.stderr + started.stdout
    assert "lab is up" in started.stdout
    report = json.loads(drlab(state_dir, "status", "--json").stdout)
    services = {service["name"]: service for service in report["services"]}
    assert {"sip1", "sip2", "sip3", "sip4"} <= set(services)
    for name in ("sip1", "sip2", "sip3", "sip4"):
        assert services[name]["state"] == "running"
        assert services[name]["kind"] == "sipcluster"
        assert set(services[name]["endpoints"]) >= {"tlib", "tc", "control"}
    assert services["sip3"]["dc"] == "DC2"
    pids = [service["pid"] for service in services.values() if service["pid"]]
    stopped = drlab(state_dir, "down")
    assert stopped.returncode == 0
    assert all(process_state(pid) == "stopped" for pid in pids)


def test_unknown_service_is_a_usage_error_listing_valid_ones(state_dir: Path) -> None:
    result = drlab(state_dir, "kill", "sip9")
    assert result.returncode == 2
    assert "unknown service 'sip9'" in result.stderr
    assert "sip1, sip2, sip3, sip4" in result.stderr


def test_bad_time_scale_is_a_usage_error(state_dir: Path) -> None:
    result = drlab(state_dir, "up", "-d", "--time-scale", "-1")
    assert result.returncode == 2
    assert "--time-scale" in result.stderr


def test_a_broken_topology_file_is_named_in_the_error(state_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  sip1:\n    image: drlab\n")
    result = drlab(state_dir, "--file", str(broken), "status")
    assert result.returncode == 2
    assert "service sip1: 'command' must be a non-empty list of strings" in result.stderr
