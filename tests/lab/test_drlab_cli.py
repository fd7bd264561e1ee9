"""``drlab`` misuse, without a running lab: exit 2 with the valid names, nothing applied.

The commands on a running lab are in ``test_lab.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emulator.lab.engine.processes import process_state

ROOT = Path(__file__).resolve().parents[2]
LINKS = "gws1-sip1, gws2-sip1, gws3-sip3, gws4-sip3, proxy-dc1-gws1"


def drlab(state_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.lab", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "lab"


def test_unknown_service_is_a_usage_error_listing_valid_ones(state_dir: Path) -> None:
    result = drlab(state_dir, "kill", "sip9")
    assert result.returncode == 2
    assert "unknown service 'sip9'" in result.stderr
    assert "links, sip1, sip2, sip3, sip4, gws1, gws2, gws3, gws4, proxy-dc1, proxy-dc2" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cut", "gws9-sip1"], f"unknown link 'gws9-sip1'; valid links: {LINKS}"),
        (["heal", "sip1-sip9"], "unknown link 'sip1-sip9'; valid links: gws1-sip1"),
        (["cut", "gws1-sip1", "--mode", "drop"], "'drop' is not one of 'reset', 'blackhole'"),
        (["cut", "gws1-sip1", "--ttl", "-1"], "Invalid value for '--ttl': -1.0 is not in the"),
        (["cut", "gws1-sip1", "--ttl", "0"], "Invalid value for '--ttl'"),
        (["heal"], "give the links to heal, or --all"),
        (["partition", "DC1", "DC9"], "unknown DC 'DC9'; valid DCs: DC1, DC2"),
        (["partition", "DC1", "DC1"], "a partition needs two different DCs"),
        (["partition", "DC1", "DC2", "--ttl", "-3"], "Invalid value for '--ttl'"),
        (
            ["toxic", "add", "gws1-sip1", "--type", "latency", "--attr", "latncy=100"],
            "unknown attribute 'latncy' for a latency toxic (valid: latency, jitter)",
        ),
        (
            ["toxic", "add", "gws1-sip1", "--type", "latency", "--attr", "latency=-5"],
            "attribute 'latency' of a latency toxic must be >= 0, got -5",
        ),
        (
            ["toxic", "add", "gws1-sip1", "--type", "latency", "--attr", "latency=fast"],
            "'latency=fast' is not NAME=INTEGER",
        ),
        (
            ["toxic", "add", "gws1-sip1", "--type", "latency"],
            "missing required field: attribute 'latency' of a latency toxic",
        ),
        (["toxic", "add", "gws1-sip1", "--type", "lag"], "'lag' is not one of 'latency'"),
        (
            ["toxic", "add", "nope", "--type", "latency", "--attr", "latency=1"],
            "unknown link 'nope'",
        ),
        (["toxic", "add", "gws1-sip1", "--type", "bandwidth", "--attr", "rate=0"], "at least 1"),
        (["timeline", "--service", "sip7"], "unknown service 'sip7'"),
        (["logs", "sip7"], "unknown service 'sip7'"),
        (["chaos", "--seed", "1", "--faults", "0"], "0 is not in the range 1<=x<=1000"),
        (["chaos", "--seed", "1", "--faults", "3", "--duration", "-5"], "--duration"),
    ],
)
def test_bad_input_exits_2_with_a_precise_message(
    state_dir: Path, args: list[str], message: str
) -> None:
    result = drlab(state_dir, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr


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


def test_chaos_dry_run_prints_the_sequence_without_a_lab(state_dir: Path) -> None:
    first = drlab(state_dir, "chaos", "--seed", "7", "--faults", "5", "--dry-run")
    again = drlab(state_dir, "chaos", "--seed", "7", "--faults", "5", "--dry-run")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout
    assert first.stdout.count("\n  #") == 5


def test_chaos_without_a_running_lab_says_so(state_dir: Path) -> None:
    result = drlab(state_dir, "chaos", "--seed", "7", "--faults", "2")
    assert result.returncode == 1
    assert "the lab is not running; 'drlab up -d' first" in result.stderr


def test_drlab_wwe_is_the_wwe_desktop(state_dir: Path) -> None:
    result = drlab(state_dir, "wwe", "--help")
    assert result.returncode == 0
    assert "login" in result.stdout


READY = (
    "import json, time; print(json.dumps({'event': 'ready', 'endpoints': {}}), flush=True); "
    "time.sleep(60)"
)
FAILING = {
    "services": {
        "first": {"command": ["python", "-c", READY], "labels": {"drlab.kind": "test"}},
        "broken": {
            "command": ["python", "-c", "print('cannot bind 127.0.0.1:1: denied'); exit(3)"],
            "labels": {"drlab.kind": "test"},
            "depends_on": ["first"],
        },
    }
}


def test_a_service_that_fails_to_start_is_reported_with_its_log_and_the_rest_stopped(
    state_dir: Path, tmp_path: Path
) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(yaml.safe_dump(FAILING))
    result = drlab(state_dir, "--file", str(compose), "up", "-d")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "first      ready" in result.stdout
    assert "broken exited with code 3 before it was ready; last log lines" in result.stderr
    assert "cannot bind 127.0.0.1:1: denied" in result.stderr
    timeline = [json.loads(line) for line in (state_dir / "lab.jsonl").read_text().splitlines()]
    first = next(e for e in timeline if e["event"] == "service.start" and e["target"] == "first")
    assert process_state(first["pid"]) == "stopped"
    assert [e["event"] for e in timeline][-2:] == ["service.stop", "lab.down"]


def test_the_relay_launcher_refuses_a_broken_topology_and_a_second_link_source(
    tmp_path: Path,
) -> None:
    def linkrelay(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "emulator.lab.linkrelay", *args]
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)

    missing = linkrelay("--file", str(tmp_path / "none.yaml"), "--api", "127.0.0.1:0")
    assert missing.returncode == 2
    assert "none.yaml: No such file or directory" in missing.stderr
    twice = linkrelay("--api", "127.0.0.1:0", "--config", "links.json")
    assert twice.returncode == 2
    assert "the links come from the topology file; drop --config" in twice.stderr
