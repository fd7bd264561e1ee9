"""Headless Chromium for the UI tests: Debian's /usr/bin/chromium driven by Playwright.

The test command installs chromium (no browser is downloaded). The page records console errors
and page errors, and refuses (and records) every request that leaves ``allowed`` origins, so a
test can assert that a report opens offline. Screenshots go to ``$DRLAB_ARTIFACTS`` (default
``.drlab/artifacts``), kept as test artifacts.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, Route, sync_playwright

from tests.support import ROOT, drlab_command, eventually_sync, free_port

CHROMIUM = os.environ.get("DRLAB_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS = Path(os.environ.get("DRLAB_ARTIFACTS", Path(__file__).parents[1] / ".drlab/artifacts"))


@dataclass
class Browsed:
    page: Page
    errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def browse(*allowed: str) -> Iterator[Browsed]:
    """A fresh page; requests to anything but ``file:`` and the ``allowed`` prefixes fail."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: the test command installs chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(FLAGS))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            seen = Browsed(page)
            page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: seen.errors.append(str(exc)))

            def gate(route: Route) -> None:
                url = route.request.url
                if url.startswith(("file:", "data:", *allowed)):
                    route.continue_()
                else:
                    seen.refused.append(url)
                    route.abort()

            page.route("**/*", gate)
            yield seen
        finally:
            browser.close()


@contextmanager
def dashboard_server(state_dir: Path, *options: str, answer_within: float = 30) -> Iterator[str]:
    """``drlab [OPTIONS] ui`` on a free port for the block; yields its URL once it answers."""
    port = free_port()
    command = drlab_command(state_dir, *options, "ui", "--port", str(port))
    server = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        eventually_sync(answers, answer_within, "the dashboard to answer")
        yield url
    finally:
        server.terminate()
        server.wait(10)
