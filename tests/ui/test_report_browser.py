"""A scenario's HTML report opened offline in headless Chromium: its verdicts and fault spans.

The report comes from a real run of ``drlab scenario run s2-gws-sip-link --report FILE.html``;
the page is read through the DOM the user sees, with every network request refused.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from emulator.ui.report import timeline_report
from tests.browser import browse
from tests.support import drlab
from tests.ui.test_report import call_lines

pytestmark = pytest.mark.timeout(240)


def run_scenario(tmp_path: Path, report: Path) -> subprocess.CompletedProcess[str]:
    return drlab(
        tmp_path / "state",
        *("scenario", "run", "s2-gws-sip-link", "--time-scale", "0.05", "--no-timeline"),
        *("--report", str(report)),
        timeout=200,
    )


def test_a_scenario_report_opens_offline_with_its_verdicts_and_the_cut_as_a_span(
    tmp_path: Path,
) -> None:
    html_report = tmp_path / "s2.html"
    ran = run_scenario(tmp_path, html_report)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with browse() as seen:
        seen.page.goto(html_report.as_uri())
        seen.page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        assert seen.page.locator(".vis-timeline").first.is_visible()  # drawn, not left hidden
        rows = seen.page.locator("tr.outcome")
        statuses = [rows.nth(i).get_attribute("data-status") for i in range(rows.count())]
        ids = [rows.nth(i).get_attribute("data-outcome") for i in range(rows.count())]
        span = seen.page.locator(".vis-item.fault-span")
        span.first.wait_for(timeout=10_000)
        span_text = span.first.inner_text()
        verdict_marks = seen.page.locator(
            ".vis-item.verdict-pass .vis-item-content"
        ).all_text_contents()
        media_rows = seen.page.locator("tr.media-call")
        media = [media_rows.nth(i).get_attribute("data-talking") for i in range(media_rows.count())]
        calls_drawn = seen.page.locator(".timeline").first.get_attribute("data-calls")
        seen.screenshot("report-s2-gws-sip-link")
        assert seen.errors == [] and seen.refused == []
    # The run's verdicts, as its verdict table printed them.
    printed = re.findall(r"^s2-gws-sip-link\s+(\S+)\s+PASS\b", ran.stdout, re.M)
    assert sorted(ids) == sorted(printed) and "S2.7" in ids
    assert statuses == ["pass"] * len(ids)
    # "(open)" when the run's timeline was read before the relay logged its closing heal.
    assert span_text in ("cut gws1-sip1", "cut gws1-sip1 (open)")
    assert set(verdict_marks) == set(ids)  # each verdict marked where it was decided
    # Two calls, each a leg at the gateway's both ends, talking throughout (S2.1).
    assert media == ["talking"] * 4 and calls_drawn == "4"


def test_a_call_legs_media_gaps_are_drawn_in_its_own_lane(tmp_path: Path) -> None:
    page = tmp_path / "calls.html"
    page.write_text(timeline_report(call_lines()), encoding="utf-8")
    with browse() as seen:
        seen.page.goto(page.as_uri())
        seen.page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        labels = seen.page.locator(".vis-label").all_inner_texts()
        gaps = seen.page.locator(".vis-item.media-gap")
        gaps.first.wait_for(timeout=10_000)
        gap_texts = sorted(gaps.all_inner_texts())
        calls = seen.page.locator(".vis-item.vis-background.media-call").count()
        seen.screenshot("report-media-gaps")
        assert seen.errors == [] and seen.refused == []
    assert "media pstn c1 to 7002" in labels and "media softphone-7002 c4 to 7002" in labels
    assert gap_texts == ["gap 0.40 s", "gap 3.00 s", "gap 4.00 s (open)"]
    assert calls == 2
