"""The reports: JSON shaped as issue 7 says, JUnit with one testcase per outcome."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from emulator.lab.scenarios.report import to_json, to_junit, verdict_table
from emulator.lab.scenarios.runner import OutcomeResult, ScenarioResult


def sample() -> ScenarioResult:
    result = ScenarioResult("s9", "a sample", 0.05)
    result.outcomes = [
        OutcomeResult("S9.1", "holds", "pass", 1.5, "seen"),
        OutcomeResult("S9.2", "does not", "fail", None, "not observable: no phone"),
    ]
    result.timeline = [{"ts": 1.0, "service": "lab", "event": "fault.cut", "links": ["a-b"]}]
    return result


def test_json_report_has_scenarios_with_outcomes_and_timeline() -> None:
    report = json.loads(to_json([sample()]))
    scenario = report["scenarios"][0]
    assert scenario["name"] == "s9" and scenario["passed"] is False
    assert scenario["outcomes"][0] == {
        "id": "S9.1",
        "title": "holds",
        "status": "pass",
        "observed_at": 1.5,
        "detail": "seen",
    }
    assert scenario["timeline"][0]["event"] == "fault.cut"


def test_junit_report_has_one_testcase_per_outcome_and_failures_with_detail() -> None:
    root = ET.fromstring(to_junit([sample()]))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == ["S9.1 holds", "S9.2 does not"]
    failure = cases[1].find("failure")
    assert failure is not None and failure.text == "not observable: no phone"


def test_verdict_table_shows_each_outcome_and_the_detail_of_a_failure() -> None:
    lines = verdict_table([sample()])
    assert any("S9.1" in line and "PASS" in line for line in lines)
    assert any("not observable: no phone" in line for line in lines)
    assert lines[-1].startswith("1/2 outcomes passed")
