"""Every scenario file run for real on the lab at time scale 0.05, and a lab that breaks a rule.

The lab has fixed loopback addresses (one at a time), so each test runs ``drlab scenario run``
once for many scenarios. Every outcome is observed (media from the PSTN gateway's and the
softphone's call reports, the softphone's own registrations) and must pass, except the known lab
gaps below; an outcome the lab could not observe would fail as "not observable: ...", never pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = "0.05"
ALL_IDS = (
    {"B.1", "B.2", "B.3", "G.1", "G.2", "G.3"}
    | {f"S1.{i}" for i in range(1, 17)}
    | {f"S2.{i}" for i in range(1, 11)}
    | {f"S3.{i}" for i in range(1, 14)}
    | {f"S4.{i}" for i in range(1, 8)}
)
NOT_OBSERVABLE_YET: set[str] = set()
# The lab does not do what the guide says here (yet): nothing makes agent2's WWE give up in S4.
KNOWN_LAB_GAPS: set[str] = set()

pytestmark = pytest.mark.timeout(480)


def run_scenarios(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "emulator.lab", "--state-dir", str(tmp_path / "state")),
            *("scenario", "run", *args, "--time-scale", TIME_SCALE, "--report", str(report)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=470,
    )
    output = result.stdout + result.stderr
    assert report.exists(), output
    return result.returncode, json.loads(report.read_text()), output


def outcomes_of(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (scenario["name"], outcome["id"]): outcome
        for scenario in report["scenarios"]
        for outcome in scenario["outcomes"]
    }


def test_every_scenario_checks_every_outcome_and_the_observable_ones_pass(tmp_path: Path) -> None:
    code, report, output = run_scenarios(tmp_path, "--all")
    outcomes = outcomes_of(report)
    assert {oid for _, oid in outcomes} == ALL_IDS, output
    unexpected = []
    for (scenario, oid), outcome in outcomes.items():
        if oid in NOT_OBSERVABLE_YET:
            assert outcome["status"] == "fail", (scenario, outcome)
            assert "not observable: " in outcome["detail"], (scenario, outcome)
        elif oid in KNOWN_LAB_GAPS:
            assert outcome["status"] == "fail", f"{oid} passes now: remove it from the gaps"
        elif outcome["status"] != "pass":
            unexpected.append(f"{scenario} {oid}: {outcome['detail']}")
    assert not unexpected, "\n".join(unexpected) + "\n" + output
    assert code == (1 if NOT_OBSERVABLE_YET | KNOWN_LAB_GAPS else 0), output
    for scenario in report["scenarios"]:
        assert scenario["timeline"], scenario["name"]
        assert any(
            e.get("event", "").startswith("fault.") or e.get("event", "").startswith("service.")
            for e in scenario["timeline"]
        )
    assert "outcomes passed" in output and "--- timeline of s1-wwe-reconnect ---" in output
