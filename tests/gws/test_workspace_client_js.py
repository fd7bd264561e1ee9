"""The public ``genesys-workspace-client-js`` (npm) drives a GWS node: wire compatibility.

Runs when node and the npm package are installed: ``npm install genesys-workspace-client-js`` in
the repository root, or a ``node_modules`` directory named by ``DRLAB_NODE_MODULES``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.gws.conftest import eventually

SCRIPT = Path(__file__).parent / "js" / "workspace_flow.js"
REPO = Path(__file__).resolve().parents[2]


def node_modules() -> Path | None:
    for candidate in (os.environ.get("DRLAB_NODE_MODULES"), str(REPO / "node_modules")):
        if candidate and (Path(candidate) / "genesys-workspace-client-js").is_dir():
            return Path(candidate)
    return None


pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or node_modules() is None,
    reason="node or the genesys-workspace-client-js npm package is not installed",
)


async def test_public_workspace_client_logs_in_goes_ready_and_not_ready(lab_factory: Any) -> None:
    lab = await lab_factory()
    modules = node_modules()
    assert modules is not None
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        lab.base_url,
        "agent1",
        "agent1",
        "7001",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(modules)},
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    steps = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert process.returncode == 0, (steps, err.decode()[-2000:])
    states = [step["agentState"] for step in steps if step["step"] == "dn"]
    assert states == ["LoggedIn", "Ready", "NotReady"]
    assert steps[0]["user"]["defaultPlace"] == "Place_7001"
    assert steps[-1]["step"] == "destroyed"
    # destroy() = CometD disconnect + POST /logout: the session ends and the DN is unregistered.
    await eventually(lambda: bool(lab.gws_events("session.ended", reason="logout requested")))
    await eventually(lambda: lab.sip_saw("RequestUnregisterAddress", "7001"))
