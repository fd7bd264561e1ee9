"""The public ``genesys-workspace-client-js`` (npm) drives GWS: wire compatibility, through the
DC's sticky proxy in front of two GWS nodes (the acceptance path) and straight to one node.

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
from tests.gws.dc_support import datacentre

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


async def run_flow(base_url: str) -> list[dict[str, Any]]:
    """workspace_flow.js as a process; its steps (one JSON line each)."""
    modules = node_modules()
    assert modules is not None
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        base_url,
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
    return steps


async def test_public_workspace_client_through_the_dc_proxy_in_front_of_two_gws_nodes() -> None:
    async with datacentre() as dc:
        await run_flow(dc.base_url)
        # One session on one node: REST and CometD stayed on the node the proxy pinned.
        (created,) = dc.gws_events("session.created", user="agent1")
        node = created["service"]
        assert dc.gws_events("cometd.client_attached", service=node, user="agent1")
        assert not dc.gws_events(
            "cometd.client_attached", service=({"gws1", "gws2"} - {node}).pop()
        )
        # destroy() = CometD disconnect + POST /logout: the session ends, the DN is unregistered.
        await eventually(lambda: bool(dc.gws_events("session.ended", reason="logout requested")))
        await eventually(lambda: dc.sip_saw("RequestUnregisterAddress", "7001"))


async def test_public_workspace_client_straight_to_a_gws_node(lab_factory: Any) -> None:
    lab = await lab_factory()
    await run_flow(lab.base_url)
    await eventually(lambda: bool(lab.gws_events("session.ended", reason="logout requested")))
    await eventually(lambda: lab.sip_saw("RequestUnregisterAddress", "7001"))
