"""The HTML report's content without a browser: fault spans from the entries that prove them,
escaping of what services logged, and nothing fetched from anywhere."""

from __future__ import annotations

import json
import re
from typing import Any

from emulator.lab.scenarios.report import write_report
from emulator.lab.scenarios.runner import OutcomeResult, ScenarioResult
from emulator.ui.report import FaultSpan, fault_spans, scenario_report, timeline_report


def entry(ts: float, service: str, event: str, **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "service": service, "event": event, **fields}


def test_a_cut_spans_from_the_relays_cut_to_its_heal_and_a_kill_to_the_restart() -> None:
    spans = fault_spans(
        [
            entry(1.0, "lab", "fault.cut", links=["gws1-sip1"], mode="reset"),
            entry(1.1, "links", "link.cut", link="gws1-sip1", mode="reset"),
            entry(2.0, "lab", "service.kill", target="sip3"),
            entry(3.0, "links", "link.heal", link="gws1-sip1", reason="ttl"),
            entry(4.0, "lab", "service.start", target="sip3"),
        ]
    )
    assert spans == [
        FaultSpan("cut", "gws1-sip1", 1.1, 3.0, False),
        FaultSpan("killed", "sip3", 2.0, 4.0, False),
    ]


def test_a_fault_never_undone_ends_open_at_the_last_entry() -> None:
    spans = fault_spans(
        [
            entry(1.0, "links", "link.cut", link="sip1-sip3", mode="blackhole"),
            entry(2.0, "lab", "service.pause", target="gws2"),
            entry(2.5, "lab", "service.resume", target="gws2"),
            entry(
                3.0, "lab", "fault.toxic_add", link="gws1-sip1", toxic={"name": "slow", "type": "x"}
            ),
            entry(9.0, "sip1", "tlib.event"),
        ]
    )
    assert [(s.kind, s.subject, s.start, s.end, s.open) for s in spans] == [
        ("blackhole", "sip1-sip3", 1.0, 9.0, True),
        ("paused", "gws2", 2.0, 2.5, False),
        ("toxic", "gws1-sip1", 3.0, 9.0, True),
    ]


def test_a_start_without_a_fault_before_it_is_no_span() -> None:
    assert fault_spans([entry(1.0, "lab", "service.start", target="sip1")]) == []


def sample() -> ScenarioResult:
    result = ScenarioResult("s9", "a <sample>", 0.05)
    result.outcomes = [
        OutcomeResult("S9.1", "holds", "pass", 1.5, "seen"),
        OutcomeResult("S9.2", "does not", "fail", None, "owner of 7001: sip1 says </script><b>x"),
    ]
    result.timeline = [
        entry(1.0, "links", "link.cut", link="a-b", mode="reset"),
        entry(2.0, "sip1", "tlib.event", message="</script><script>alert(1)</script>"),
        entry(3.0, "scenario", "scenario.outcome", outcome="S9.2", status="fail"),
    ]
    return result


def test_the_report_shows_what_was_seen_for_a_failed_outcome_escaped() -> None:
    page = scenario_report([sample().to_json()])
    assert 'data-outcome="S9.2" data-status="fail"' in page
    assert "<b>what was seen:</b> owner of 7001: sip1 says &lt;/script&gt;&lt;b&gt;x" in page
    assert "a &lt;sample&gt;" in page
    data = re.search(r'<script type="application/json" id="drlab-data">(.*?)</script>', page, re.S)
    assert data is not None
    views = json.loads(data.group(1))  # the logged "</script>" did not end the data block
    assert views[0]["entries"][1]["message"] == "</script><script>alert(1)</script>"
    assert views[0]["spans"][0]["subject"] == "a-b"


def test_the_report_is_one_file_that_fetches_nothing() -> None:
    page = timeline_report(sample().timeline)
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=""", page)
    assert "vis-timeline and vis-graph2d" in page  # the vendored library is inlined


def test_write_report_picks_html_by_the_files_suffix(tmp_path: Any) -> None:
    path = tmp_path / "out" / "run.html"
    write_report(path, [sample()])
    assert path.read_text().startswith("<!doctype html>")
