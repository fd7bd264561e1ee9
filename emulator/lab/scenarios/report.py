"""What a run reports: the merged timeline, the per-outcome verdict table, JSON and JUnit XML.

JSON: ``{"scenarios": [{"name", "passed", "outcomes": [{"id", "title", "status",
"observed_at", "detail"}], "timeline": [...]}]}`` (plus the time scale, duration, error and
best-practice findings of each run). JUnit: one ``testsuite`` per scenario, one ``testcase``
per outcome (``classname`` the scenario, ``name`` "ID title"), a ``failure`` carrying the detail.
HTML: one self-contained page (``emulator.ui.report``) with the verdicts and a swimlane timeline.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from emulator.lab.scenarios.runner import ScenarioResult
from emulator.lab.timeline import format_entry
from emulator.ui.report import scenario_report

TITLE_WIDTH = 70


def timeline_text(result: ScenarioResult) -> list[str]:
    return [format_entry(entry) for entry in result.timeline]


def verdict_table(results: Sequence[ScenarioResult]) -> list[str]:
    lines = [f"{'scenario':<20} {'outcome':<7} {'status':<6} {'at (s)':>7}  title"]
    for result in results:
        for outcome in result.outcomes:
            at = f"{outcome.observed_at:7.2f}" if outcome.observed_at is not None else "      -"
            title = outcome.title
            if len(title) > TITLE_WIDTH:
                title = title[: TITLE_WIDTH - 3] + "..."
            lines.append(
                f"{result.name:<20} {outcome.id:<7} {outcome.status.upper():<6} {at}  {title}"
            )
            if outcome.status != "pass":
                lines.append(f"{'':<36}-> {outcome.detail}")
    passed = sum(o.status == "pass" for r in results for o in r.outcomes)
    total = sum(len(r.outcomes) for r in results)
    lines.append(f"{passed}/{total} outcomes passed in {len(results)} scenario run(s)")
    return lines


def to_json(results: Sequence[ScenarioResult]) -> str:
    return json.dumps({"scenarios": [r.to_json() for r in results]}, indent=2, default=str)


def to_junit(results: Sequence[ScenarioResult]) -> str:
    suites = ET.Element("testsuites", name="drlab scenarios")
    for result in results:
        failures = sum(o.status != "pass" for o in result.outcomes)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=result.name,
            tests=str(len(result.outcomes)),
            failures=str(failures),
            errors="1" if result.error else "0",
            time=f"{result.duration:.3f}",
        )
        for outcome in result.outcomes:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=result.name,
                name=f"{outcome.id} {outcome.title}",
                time=f"{outcome.observed_at or 0.0:.3f}",
            )
            if outcome.status != "pass":
                failure = ET.SubElement(case, "failure", message=outcome.detail[:500])
                failure.text = outcome.detail
            else:
                ET.SubElement(case, "system-out").text = outcome.detail
        ET.SubElement(suite, "system-out").text = "\n".join(timeline_text(result))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_report(path: Path, results: Sequence[ScenarioResult]) -> None:
    """``.xml`` is JUnit, ``.html``/``.htm`` the HTML report, anything else JSON."""
    suffix = path.suffix.lower()
    if suffix == ".xml":
        text = to_junit(results)
    elif suffix in (".html", ".htm"):
        text = scenario_report([result.to_json() for result in results])
    else:
        text = to_json(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
