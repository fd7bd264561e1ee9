"""The mutation matrix, run for real: each rule the verdicts rely on is broken in turn (a
service's fault-injection knob), and exactly the outcomes that depend on it fail, with a detail
that names what was seen. A mutant that is missed — its outcomes pass with the rule broken —
fails this test and ``drlab scenario mutants`` exits 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emulator.lab.scenarios.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(900)


def test_every_mutant_is_caught_by_exactly_the_outcomes_that_depend_on_its_rule(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "emulator.lab", "--state-dir", str(tmp_path / "state")),
            *("scenario", "mutants", "--quiet", "--time-scale", "0.05"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=880,
    )
    output = result.stdout + result.stderr
    assert f"{len(MUTANTS)}/{len(MUTANTS)} mutants caught" in output, output
    assert result.returncode == 0, output
    for mutant in MUTANTS:
        assert f"-- mutant {mutant.name}:" in output
        # The detail names the failed outcomes of each run.
        assert f"failed {' '.join(sorted(mutant.fails))}" in output, (mutant.name, output)


def test_an_unknown_mutant_is_refused_with_the_valid_names(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator.lab", "scenario", "mutants", "--only", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown mutant 'nope'; valid: move-delay" in result.stderr
