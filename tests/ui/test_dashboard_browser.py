"""The live dashboard of a running lab in headless Chromium: faults from the CLI show within a
second, a killed node shows down and the DN it owned moves to the node its phone registers on
next, and the page's own "heal all" heals (issue 17).

Screenshots of each state go to the test artifacts (tests/browser.py).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import browse, dashboard_server
from tests.support import ROOT, drlab, drlab_command

PSTN = "http://127.0.3.1:9000"
DESKTOP_ARGS = ("--password", "agent1", "--time-scale", "0.05")

pytestmark = pytest.mark.timeout(240)


def post_json(url: str, body: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def run(state_dir: Path, *args: str) -> None:
    done = drlab(state_dir, *args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    state_dir = tmp_path_factory.mktemp("dashboard") / "state"
    run(state_dir, "up", "-d", "--time-scale", "0.05")
    try:
        with dashboard_server(state_dir, answer_within=20) as url:
            yield state_dir, url
    finally:
        drlab(state_dir, "down")


def test_the_dashboard_shows_cuts_kills_and_heals_as_they_happen(
    dashboard: tuple[Path, str],
) -> None:
    state_dir, url = dashboard
    with browse(url) as seen:
        page = seen.page
        page.goto(url + "/")
        page.wait_for_selector("body[data-status=true]", timeout=20_000)
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        assert page.locator('[data-service="sip3"]').get_attribute("data-state") == "running"
        # The softphone's DN is registered on sip1 from the start (no desktop needed).
        page.wait_for_selector("tr[data-dn]", timeout=10_000)
        before = page.locator("tr[data-dn]").evaluate_all(
            "rows => rows.map(row => [row.dataset.dn, row.dataset.owner])"
        )
        seen.screenshot("dashboard-healthy")

        # A desktop logs on: the GWS node's lines about it get that desktop's own lane.
        desktop = subprocess.Popen(
            [*drlab_command(state_dir), "wwe", "login", "agent1", *DESKTOP_ARGS],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        try:
            page.wait_for_selector('.vis-label:has-text("desktop agent1")', timeout=15_000)
        finally:
            desktop.communicate(b"", timeout=20)  # end of input: it logs out and exits

        # A customer calls the softphone's DN (it answers by itself): the DN's row shows the
        # call, its call node and the media its call node measures.
        placed = post_json(PSTN + "/calls", {"to": "7002", "node": "sip1"})
        page.wait_for_selector('tr[data-dn="7002"] .call', timeout=10_000)
        page.wait_for_function(
            """() => document.querySelector('tr[data-dn="7002"] .call').textContent
                .includes("customer_to_agent talking")""",
            timeout=10_000,
        )
        call_text = page.locator('tr[data-dn="7002"] .call').text_content()
        seen.screenshot("dashboard-call")
        post_json(f"{PSTN}/calls/{placed['id']}/release", {})
        page.wait_for_selector('tr[data-dn="7002"][data-calls="0"]', timeout=10_000)

        run(state_dir, "cut", "gws1-sip1")
        cut_at = time.monotonic()
        page.wait_for_selector('tr[data-link="gws1-sip1"][data-state="cut"]', timeout=5_000)
        shown_in = time.monotonic() - cut_at
        colour = page.locator('tr[data-link="gws1-sip1"]').evaluate(
            "row => getComputedStyle(row).backgroundColor"
        )
        page.wait_for_selector(".vis-item.fault-span", timeout=5_000)
        seen.screenshot("dashboard-gws1-sip1-cut")

        # softphone2 loses DC1 and registers on sip3: with no call up, 7002 moves there (S4).
        run(state_dir, "cut", "softphone2-dc1")
        page.wait_for_selector('tr[data-dn="7002"][data-owner="sip3"]', timeout=30_000)
        seen.screenshot("dashboard-7002-on-sip3")
        run(state_dir, "kill", "sip3")
        page.wait_for_selector('[data-service="sip3"][data-state="stopped"]', timeout=5_000)
        # The phone registers on sip4, the DC's other node, and the page shows the DN move.
        page.wait_for_selector('tr[data-dn="7002"][data-owner="sip4"]', timeout=30_000)
        owners = page.locator("tr[data-dn]").evaluate_all(
            "rows => rows.map(row => row.dataset.owner)"
        )
        seen.screenshot("dashboard-sip3-killed")

        page.click("#heal-all")
        page.wait_for_selector('tr[data-link="gws1-sip1"][data-state="up"]', timeout=5_000)
        links = page.locator("tr[data-link]").count()
        assert page.locator("#message").text_content() == f"healed {links} link(s)"
        page.click('[data-service="sip3"] button[data-action="start"]')
        page.wait_for_selector('[data-service="sip3"][data-state="running"]', timeout=30_000)
        seen.screenshot("dashboard-healed")
        assert seen.errors == [] and seen.refused == []
    assert shown_in < 1.0, f"the cut showed {shown_in:.2f} s after drlab cut returned"
    assert colour == "rgb(255, 214, 214)"  # the cut link's row is red
    assert before and owners and "sip3" not in owners
    assert call_text is not None and "Established on sip1" in call_text
