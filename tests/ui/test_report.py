"""The HTML report's content without a browser: fault spans from the entries that prove them,
escaping of what services logged, and nothing fetched from anywhere."""

from __future__ import annotations

import json
import re
from typing import Any

from emulator.lab.scenarios.report import write_report
from emulator.lab.scenarios.runner import OutcomeResult, ScenarioResult
from emulator.ui.report import (
    FaultSpan,
    MediaGap,
    fault_spans,
    media_calls,
    run_view,
    scenario_report,
    timeline_report,
)


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


def call_lines() -> list[dict[str, Any]]:
    phone, pstn = "softphone-7002", "pstn"
    return [
        entry(1.0, pstn, "call.dialing", call="c1", ConnID="x1", to="7002"),
        entry(1.2, phone, "call.ringing", DN="7002", call="c4", ConnID="y4", to="sip:7002@h:5"),
        entry(1.5, phone, "call.answered", DN="7002", call="c4", ConnID="y4"),
        entry(1.5, pstn, "call.answered", call="c1", ConnID="x1"),
        entry(3.0, phone, "media.dropout", call="c4", gap_ms=400),
        entry(5.0, "links", "link.cut", link="sip2-softphone2"),
        entry(6.0, phone, "media.gap", call="c4", state="started", gap_ms=1000),
        entry(6.0, pstn, "media.gap", call="c1", state="started", gap_ms=1000),
        entry(8.0, phone, "media.gap", call="c4", state="ended", gap_ms=3000),
        entry(
            9.0,
            pstn,
            "call.ended",
            call="c1",
            lost=True,
            end_reason="rtp-loss",
            media={"talking": False, "longest_gap_ms": 4000.0},
        ),
        entry(12.0, "links", "tlib.event"),
    ]


def test_each_call_leg_gets_its_gaps_from_where_the_silence_began_to_where_packets_came_back() -> (
    None
):
    pstn, phone = media_calls(call_lines())  # in the order they began
    assert (phone.service, phone.call, phone.dn, phone.conn_id) == (
        "softphone-7002",
        "c4",
        "7002",
        "y4",
    )
    assert (phone.start, phone.end, phone.open, phone.talking) == (1.5, 12.0, True, None)
    assert phone.gaps == (MediaGap(2.6, 3.0, False, 400.0), MediaGap(5.0, 8.0, False, 3000.0))
    assert phone.longest_gap_ms == 3000.0
    # The PSTN's leg ended in its gap (RTP loss): the gap runs to the end and stays open.
    assert (pstn.start, pstn.end, pstn.open, pstn.talking) == (1.5, 9.0, False, False)
    assert pstn.gaps == (MediaGap(5.0, 9.0, True, 4000.0),)
    assert (pstn.longest_gap_ms, pstn.end_reason) == (4000.0, "rtp-loss")


def test_the_run_view_and_the_table_carry_each_call_legs_media() -> None:
    view = run_view("s4", call_lines())
    assert [media["lane"] for media in view["media"]] == [
        "pstn c1 to 7002",
        "softphone-7002 c4 to 7002",
    ]
    page = timeline_report(call_lines())
    rows = re.findall(
        r'<tr class="media-call" data-call="([^"]+)" data-gaps="(\d)" '
        r'data-talking="([^"]+)"',
        page,
    )
    assert rows == [
        ("pstn c1 to 7002", "1", "not talking"),
        ("softphone-7002 c4 to 7002", "2", "open"),
    ]
    assert "4.0 s for 4.00 s (open)" in page  # times from the run's first entry


def test_a_gws_nodes_lines_about_a_desktop_go_to_that_desktops_lane() -> None:
    view = run_view(
        "lab",
        [
            entry(1.0, "gws1", "session.created", session="s1", user="agent1", DN="7001"),
            entry(2.0, "gws1", "cometd.client_gone", session="s1", client="c9"),
            entry(2.5, "gws1", "tlib.event", session="s1"),  # the node's T-Lib, not the desktop
            entry(3.0, "gws2", "cometd.client_attached", session="s7", user="agent1"),
        ],
    )
    assert [e.get("lane", e["service"]) for e in view["entries"]] == [
        "desktop agent1",
        "desktop agent1",
        "gws1",
        "desktop agent1",
    ]
    assert view["lanes"] == ["faults", "verdicts", "gws1", "desktop agent1"]


def test_a_run_without_calls_has_no_media_table() -> None:
    assert 'class="media"' not in timeline_report([entry(1.0, "lab", "service.kill", target="x")])


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
