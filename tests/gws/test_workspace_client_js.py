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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.gws.dc_support import Dc, datacentre
from tests.support import eventually

SCRIPTS = Path(__file__).parent / "js"
REPO = Path(__file__).resolve().parents[2]
STEP_TIMEOUT = 30.0


def node_modules() -> Path | None:
    for candidate in (os.environ.get("DRLAB_NODE_MODULES"), str(REPO / "node_modules")):
        if candidate and (Path(candidate) / "genesys-workspace-client-js").is_dir():
            return Path(candidate)
    return None


pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or node_modules() is None,
    reason="node or the genesys-workspace-client-js npm package is not installed",
)


class NodeScript:
    """One of ``js/*.js`` as a process; its steps (one JSON line each) read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.steps: list[dict[str, Any]] = []
        self.stderr = bytearray()
        self._stderr_reader = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self.stderr += chunk

    def _trouble(self) -> str:
        return f"steps so far: {self.steps}\nstderr: {self.stderr.decode()[-2000:]}"

    async def next_step(self) -> dict[str, Any] | None:
        """The script's next step; None once its output ends."""
        assert self.process.stdout is not None
        async with asyncio.timeout(STEP_TIMEOUT):
            while line := await self.process.stdout.readline():
                if line.startswith(b"{"):
                    step: dict[str, Any] = json.loads(line)
                    self.steps.append(step)
                    assert step["step"] != "failed", self._trouble()
                    return step
        return None

    async def until(self, name: str) -> dict[str, Any]:
        while (step := await self.next_step()) is not None:
            if step["step"] == name:
                return step
        raise AssertionError(f"the script ended before step {name!r}\n{self._trouble()}")

    async def finish(self) -> list[dict[str, Any]]:
        """Every step, once the script has exited with status 0."""
        while await self.next_step() is not None:
            pass
        async with asyncio.timeout(STEP_TIMEOUT):
            await self.process.wait()
            await self._stderr_reader
        assert self.process.returncode == 0, self._trouble()
        return self.steps

    async def close(self) -> None:
        """Kill the script if it still runs (a failed test) and stop reading it."""
        if self.process.returncode is None:
            with suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        self._stderr_reader.cancel()
        with suppress(asyncio.CancelledError):
            await self._stderr_reader


@asynccontextmanager
async def node_script(name: str, *args: str) -> AsyncIterator[NodeScript]:
    modules = node_modules()
    assert modules is not None
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPTS / name),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(modules)},
    )
    script = NodeScript(process)
    try:
        yield script
    finally:
        await script.close()


def dn_states(steps: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(step["agentState"], step["agentWorkMode"]) for step in steps if step["step"] == "dn"]


# --- sign-on and agent state (workspace_flow.js) --------------------------------------------------


async def run_flow(base_url: str) -> list[dict[str, Any]]:
    async with node_script("workspace_flow.js", base_url, "agent1", "agent1", "7001") as script:
        steps = await script.finish()
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
        await eventually(
            lambda: bool(dc.gws_events("session.ended", reason="logout requested")), timeout=8
        )
        await eventually(lambda: dc.sip_saw("RequestUnregisterAddress", "7001"), timeout=8)


async def test_public_workspace_client_straight_to_a_gws_node(lab_factory: Any) -> None:
    lab = await lab_factory()
    await run_flow(lab.base_url)
    await eventually(
        lambda: bool(lab.gws_events("session.ended", reason="logout requested")), timeout=8
    )
    await eventually(lambda: lab.sip_saw("RequestUnregisterAddress", "7001"), timeout=8)


# --- calls (call_flow.js) -------------------------------------------------------------------------

CALLER = "+15551230001"
AFTER_CALL = [("NotReady", "AfterCallWork"), ("Ready", "ManualIn")]
# What a desktop's buttons need in each state (first in the list), and what it must not offer.
CAPABILITIES = {
    "Dialing": (["release"], {"answer", "hold", "complete"}),
    "Ringing": (["answer", "release"], {"hold", "retrieve", "complete"}),
    "Established": (["release", "hold"], {"answer", "retrieve", "complete"}),
    "Held": (["retrieve", "release"], {"answer", "hold", "complete"}),
    "Released": (["complete"], {"answer", "hold", "retrieve", "release"}),
}


def agent(base_url: str, name: str, dn: str) -> tuple[str, ...]:
    return (base_url, name, name, dn)


def call_steps(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The script's call steps by name, in order: what the client reported of the call."""
    return {step["step"]: step for step in steps if "id" in step}


def assert_call_step(step: dict[str, Any], conn_id: str, state: str) -> None:
    """The client's event carries the call GWS sent (call.id is the ConnID) in ``state``; the
    client's own call list holds it (a released call is dropped), and so does GET /voice/calls
    where the script listed it (a released call stays there until it is marked done)."""
    assert (step["id"], step["connId"], step["state"]) == (conn_id, conn_id, state), step
    first, never = CAPABILITIES[state]
    assert step["capabilities"][: len(first)] == first, step
    assert not never & set(step["capabilities"]), step
    listed = [{"id": conn_id, "state": state}]
    assert step["clientCalls"] == ([] if state == "Released" else listed), step
    assert step.get("restCalls", listed) == listed, step
    if state == "Released":
        assert step["notificationType"] == "StateChange", step


def assert_after_call(steps: list[dict[str, Any]]) -> None:
    """Ready before the call; after it drlab's ACW rule (NotReady/AfterCallWork for
    after-call-work-period), then Ready, which is also the DN the client keeps at the end."""
    assert dn_states(steps) == [("LoggedIn", "ManualIn"), ("Ready", "ManualIn"), *AFTER_CALL]
    (kept,) = (step for step in steps if step["step"] == "client-dn")
    assert (kept["agentState"], kept["agentWorkMode"]) == ("Ready", "ManualIn")
    assert steps[-1]["step"] == "destroyed"


def sip_request_conn_ids(dc: Dc, message: str, dn: str = "7001") -> list[str | None]:
    """The ConnIDs of the T-Lib requests ``message`` sip1 received for ``dn``."""
    return [line.get("ConnID") for line in dc.sip_events("tlib.request", message=message, DN=dn)]


def published_conn_ids(dc: Dc, user: str = "agent1") -> set[str]:
    """The ConnIDs GWS sent to ``user``'s desktop in CallStateChanged messages."""
    return {
        line["ConnID"]
        for line in dc.gws_events("cometd.publish", user=user, messageType="CallStateChanged")
    }


async def agent1_takes_a_customer_call(dc: Dc, scenario: str) -> tuple[str, list[dict[str, Any]]]:
    """Run ``call_flow.js`` ``scenario`` as agent1 (DN 7001); once the script awaits its call, a
    customer calls 7001. The call's ConnID, and every step once the script has finished."""
    args = (*agent(dc.base_url, "agent1", "7001"), scenario)
    async with node_script("call_flow.js", *args) as js:
        await js.until("awaiting-call")
        conn_id = await dc.inbound_call("7001", caller=CALLER)
        return conn_id, await js.finish()


async def test_public_workspace_client_makes_a_call_and_hangs_up_while_it_dials() -> None:
    destination = "+15559870000"
    async with datacentre() as dc:
        args = (*agent(dc.base_url, "agent1", "7001"), "make-call", destination)
        async with node_script("call_flow.js", *args) as js:
            steps = await js.finish()
        calls = call_steps(steps)
        assert list(calls) == ["make-call", "release"]
        assert all("restCalls" in step for step in calls.values())  # the script alone acts
        (conn_id,) = published_conn_ids(dc)
        made = calls["make-call"]
        assert_call_step(made, conn_id, "Dialing")
        assert made["notificationType"] == "StateChange"
        assert (made["callType"], made["ani"], made["dnis"]) == ("Outbound", "7001", destination)
        assert made["participants"] == [{"number": destination, "role": "RoleDestination"}]
        assert sip_request_conn_ids(dc, "RequestMakeCall") == [None]
        # Hanging up: the call.id the client sent back is what GWS put in the T-Lib request.
        assert_call_step(calls["release"], conn_id, "Released")
        assert sip_request_conn_ids(dc, "RequestReleaseCall") == [conn_id]
        assert_after_call(steps)


async def test_public_workspace_client_calls_another_agent_who_answers_with_the_same_client() -> (
    None
):
    async with datacentre() as dc:
        callee_args = (*agent(dc.base_url, "agent2", "7002"), "callee")
        caller_args = (*agent(dc.base_url, "agent1", "7001"), "make-call-answered", "7002")
        async with node_script("call_flow.js", *callee_args) as callee:
            await callee.until("awaiting-call")
            async with node_script("call_flow.js", *caller_args) as caller:
                caller_steps, callee_steps = await asyncio.gather(caller.finish(), callee.finish())
        (conn_id,) = published_conn_ids(dc, "agent1")
        assert published_conn_ids(dc, "agent2") == {conn_id}  # one call, seen from both DNs
        # The caller: Dialing, Established when agent2 answers, Released when it hangs up.
        made = call_steps(caller_steps)
        assert list(made) == ["make-call", "answered", "release"]
        for name, state in (("make-call", "Dialing"), ("answered", "Established")):
            assert_call_step(made[name], conn_id, state)
        assert_call_step(made["release"], conn_id, "Released")
        # The callee: Ringing, Established on its answer, Released when agent1 hangs up.
        taken = call_steps(callee_steps)
        assert list(taken) == ["ringing", "answer", "released"]
        assert taken["ringing"]["notificationType"] == "StateChange"
        for name, state in (("ringing", "Ringing"), ("answer", "Established")):
            assert_call_step(taken[name], conn_id, state)
        assert_call_step(taken["released"], conn_id, "Released")
        # Both desktops show agent1 calling agent2 for the whole call, answered or not.
        for step in (*made.values(), *taken.values()):
            assert (step["callType"], step["ani"], step["dnis"]) == ("Internal", "7001", "7002")
        for step in made.values():
            assert step["participants"] == [{"number": "7002", "role": "RoleDestination"}], step
        for step in taken.values():
            assert step["participants"] == [{"number": "7001", "role": "RoleOrigination"}], step
        assert sip_request_conn_ids(dc, "RequestAnswerCall", "7002") == [conn_id]
        assert sip_request_conn_ids(dc, "RequestReleaseCall", "7001") == [conn_id]
        assert_after_call(caller_steps)
        assert_after_call(callee_steps)


async def test_public_workspace_client_answers_holds_retrieves_and_releases_an_inbound_call() -> (
    None
):
    async with datacentre() as dc:
        conn_id, steps = await agent1_takes_a_customer_call(dc, "inbound")
        calls = call_steps(steps)
        assert list(calls) == ["ringing", "answer", "hold", "retrieve", "release"]
        assert all("restCalls" in step for step in calls.values())  # the script alone acts
        # Every event the client emitted is of the call sip1 created, by the id GWS sent.
        assert published_conn_ids(dc) == {conn_id}
        expected = {
            "ringing": "Ringing",
            "answer": "Established",
            "hold": "Held",
            "retrieve": "Established",
            "release": "Released",
        }
        for name, state in expected.items():
            assert_call_step(calls[name], conn_id, state)
            step = calls[name]
            assert (step["callType"], step["ani"], step["dnis"]) == ("Inbound", CALLER, "7001")
            assert step["participants"] == [{"number": CALLER, "role": "RoleOrigination"}]
        assert calls["ringing"]["notificationType"] == "StateChange"
        assert {calls[name]["notificationType"] for name in ("answer", "hold", "retrieve")} == {
            "StateChange"
        }
        # The ids the client sent back are the ones GWS gave it, down to the T-Lib requests.
        for request in ("Answer", "Hold", "Retrieve", "Release"):
            assert sip_request_conn_ids(dc, f"Request{request}Call") == [conn_id], request
        assert_after_call(steps)


async def test_public_workspace_client_attaches_user_data_and_sets_dnd_and_forwarding() -> None:
    async with datacentre() as dc:
        conn_id, steps = await agent1_takes_a_customer_call(dc, "data-and-settings")
        by_name = {step["step"]: step for step in steps}
        account = {"key": "Account", "type": "str", "value": "42"}
        expected = {
            "attach": [account, {"key": "Priority", "type": "int", "value": 3}],
            "update": [account, {"key": "Priority", "type": "int", "value": 5}],
            "delete-pair": [{"key": "Priority", "type": "int", "value": 5}],
        }
        for name, pairs in expected.items():
            step = by_name[name]
            assert (step["id"], step["state"]) == (conn_id, "Established"), step
            assert step["notificationType"] == "AttachedDataChanged", step
            assert step["userData"] == pairs == step["clientUserData"], step
        settings = {
            "dnd-on": ("on", None, "dnd-off"),
            "set-forward": ("on", "+15550009999", "cancel-forward"),
            "cancel-forward": ("on", None, "set-forward"),
            "dnd-off": ("off", None, "dnd-on"),
        }
        for name, (dnd, forward, offered) in settings.items():
            step = by_name[name]
            assert (step["dnd"], step["forwardTo"]) == (dnd, forward), step
            assert offered in step["capabilities"], step
        # The T-Lib traffic at sip1: each operation became its Genesys request.
        for request in ("RequestAttachUserData", "RequestUpdateUserData", "RequestDeletePair"):
            assert sip_request_conn_ids(dc, request) == [conn_id], request
        for request in ("RequestSetDNDOn", "RequestSetCallForward", "RequestCancelCallForward"):
            assert len(dc.sip_events("tlib.request", message=request, DN="7001")) == 1, request
        assert by_name["release"]["state"] == "Released"


async def test_public_workspace_client_sends_dtmf_and_a_user_event_and_clears_the_call() -> None:
    async with datacentre() as dc:
        conn_id, steps = await agent1_takes_a_customer_call(dc, "dtmf-event-clear")
        by_name = {step["step"]: step for step in steps}
        assert (by_name["send-dtmf"]["id"], by_name["send-dtmf"]["state"]) == (
            conn_id,
            "Established",
        )
        assert by_name["user-event"] == {
            "step": "user-event",
            "userData": [{"key": "Campaign", "type": "str", "value": "Spring"}],
            "callUuid": conn_id,
        }
        assert by_name["clear"]["state"] == "Released"
        # The T-Lib traffic at sip1: each operation became its Genesys request.
        for request in ("RequestSendDTMF", "RequestClearCall"):
            assert sip_request_conn_ids(dc, request) == [conn_id], request
        assert len(dc.sip_events("tlib.request", message="RequestSendEvent", DN="7001")) == 1
        assert_after_call(steps)
