"""``drlab --engine compose scenario run``: the seed's scenarios on the lab in containers.

S2 (the gws1-sip1 T-Lib link cut in the relay container) must pass outcome by outcome, as with
the embedded engine; S1's gws1-killed variant kills the gws1 container for real (``docker kill``)
from the scenario runner. The timeline comes from the containers' own logs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulator.lab.scenarios.schema import load_scenario
from tests.containers.test_lab_in_containers import PORTS_FREE_WAIT, docker_ps, lab_ports_free
from tests.support import ROOT, drlab, eventually_sync

TIME_SCALE = "0.05"
S2 = "s2-gws-sip-link"
S1_KILLED = "s1-gws-killed"
BASELINE = {"B.1", "B.2", "B.3"}
S2_OUTCOMES = BASELINE | set(load_scenario(ROOT / "scenarios" / f"{S2}.yaml").outcome_ids())

pytestmark = [pytest.mark.containers, pytest.mark.timeout(600)]


def run_in_containers(state_dir: Path, report: Path, *names: str) -> tuple[int, str]:
    command = ("--engine", "compose", "scenario", "run", *names)
    options = ("--time-scale", TIME_SCALE, "--report", str(report))
    result = drlab(state_dir, *command, *options, timeout=580)
    return result.returncode, result.stdout + result.stderr


def scenario_of(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in report["scenarios"] if item["name"] == name)  # type: ignore[no-any-return]


def test_s2_and_a_killed_gws_container_pass_outcome_by_outcome(
    docker_engine: None, tmp_path: Path
) -> None:
    eventually_sync(
        lab_ports_free,
        PORTS_FREE_WAIT,
        "the lab's ports (another lab is running here)",
        interval=0.1,
    )
    report_path = tmp_path / "report.json"
    code, output = run_in_containers(tmp_path / "state", report_path, S2, S1_KILLED)
    assert report_path.exists(), output
    report = json.loads(report_path.read_text())

    s2 = scenario_of(report, S2)
    verdicts = {outcome["id"]: outcome["status"] for outcome in s2["outcomes"]}
    assert verdicts == dict.fromkeys(S2_OUTCOMES, "pass"), output
    assert f"{S2} PASSED" in output and "compose engine" in output
    assert scenario_of(report, S1_KILLED)["passed"], output
    assert code == 0, output

    # Every service ran in a container (softphone2 is left out: agent2 is a PSTN agent in S2),
    # the cut went to the relay container and its effect is in that container's log.
    timeline = s2["timeline"]
    starts = [e for e in timeline if e.get("event") == "service.start"]
    assert len(starts) == 12 and all(e.get("container") for e in starts), starts
    assert any(e.get("event") == "fault.cut" and e.get("links") == ["gws1-sip1"] for e in timeline)
    assert any(e.get("event") == "link.cut" and e.get("service") == "links" for e in timeline)
    assert any(e.get("event") == "agent.logout" and e.get("service") == "sip1" for e in timeline)

    # The runner's kill is a docker kill of gws1's container.
    killed = scenario_of(report, S1_KILLED)["timeline"]
    kill = next(e for e in killed if e.get("event") == "service.kill")
    assert kill["target"] == "gws1" and kill["signal"] == "SIGKILL" and kill["container"]

    assert docker_ps() == [], "a scenario run left containers behind"
