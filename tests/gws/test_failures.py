"""DR behaviour of a GWS node: session timeout (S1.9/S1.10) and T-Lib link loss (S2.2/S2.3)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.gws.config import GwsConfig, UserDirectory
from emulator.gws.server import GwsServer
from tests.gws.conftest import FAST_GWS_TIMERS, refuse_link, restore_link
from tests.support import LOOPBACK, eventually


async def test_session_whose_desktop_is_gone_ends_and_unregisters_its_dn(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent2", "7002")
    conn_id = await lab.answered_call(desk, "+15551230002", "7002")

    desk.stop_polling()  # the path between WWE and gws1 fails
    await eventually(lambda: lab.sip_saw("RequestUnregisterAddress", "7002"), timeout=8)
    # Whatever the call state (S1.10), and logged as the scenario engine reads it.
    [request] = lab.gws_events("tlib.request", message="RequestUnregisterAddress", DN="7002")
    assert request["sip"] == "sip1"
    [ended] = lab.gws_events("session.ended", DN="7002")
    assert "session timeout" in ended["reason"]
    assert not lab.sip_saw("RequestAgentLogout", "7002")
    assert any(call["ConnID"] == conn_id for call in lab.sip_state()["calls"])
    status, body = await desk.call("POST", "/workspace/v3/voice/ready")
    assert status == 401
    assert "WORKSPACE_SESSIONID" in body["status"]["message"]
    replies = await desk.bayeux({"channel": "/meta/connect", "connectionType": "long-polling"})
    assert replies[0]["successful"] is False


async def test_without_unregister_on_timeout_a_timed_out_session_keeps_its_dn_registered(
    lab_factory: Any,
) -> None:
    lab = await lab_factory(unregister_on_timeout=False)
    desk = await lab.logged_on("agent2")
    desk.stop_polling()
    await eventually(lambda: bool(lab.gws_events("session.ended", DN="7002")), timeout=8)
    assert lab.gws_events("session.ended", DN="7002")[0]["unregister"] is False
    assert not lab.sip_saw("RequestUnregisterAddress", "7002")
    assert lab.gws.node.link.up  # neither unregisters nor disconnects (S1.14)
    # A later desktop for the same DN on this node is served as usual.
    again = await lab.logged_on("agent2")
    await again.expect_voice("DnStateChanged", number="7002", agentState="LoggedOut")


async def test_dn_is_unregistered_only_when_its_last_session_ends(lab_factory: Any) -> None:
    lab = await lab_factory()
    old = await lab.logged_on("agent1")
    new = await lab.logged_on("agent1")
    old.stop_polling()
    await eventually(lambda: bool(lab.gws_events("session.ended", session="agent1#1")), timeout=8)
    assert not lab.gws_events("tlib.request", message="RequestUnregisterAddress")
    status, _ = await new.call("POST", "/workspace/v3/voice/ready")
    assert status == 200
    status, _ = await new.call("POST", "/workspace/v3/logout")
    assert status == 200
    await eventually(lambda: lab.sip_saw("RequestUnregisterAddress", "7001"), timeout=8)


async def test_tlib_link_loss_reports_out_of_service_503_and_unhealthy_then_recovers(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent1", "7001")
    status, health = await desk.call("GET", "/health")
    assert (status, health["status"]) == (200, "healthy")

    await refuse_link(lab.relay)
    oos = await desk.expect_voice("DnStateChanged", agentState="OutOfService")
    assert oos["data"]["reason"] == "SIPServerConnectionLost"
    dn = oos["data"]["dn"]
    assert (dn["dnStatus"], dn["agentId"], dn["agentWorkMode"]) == ("OutOfService", "", "Unknown")
    assert "SIP Server sip1" in oos["data"]["message"]
    lost = await desk.expect_voice("EventError", errorCode=1800)
    assert "Connection to SIP Server sip1 is lost" in lost["data"]["error"]["errorMessage"]
    status, body = await desk.call("POST", "/workspace/v3/voice/ready")
    assert status == 503
    assert "T-Lib link to SIP Server sip1" in body["status"]["message"]
    status, health = await desk.call("GET", "/health")
    assert status == 503
    assert health["status"] == "unhealthy"
    assert "sip1" in health["reason"]
    # logout-on-disconnect on the SIP side (S2.2).
    await eventually(
        lambda: lab.sip_state()["owned"]["7001"]["AgentState"] == "LoggedOut", timeout=8
    )

    await restore_link(lab.relay)
    await eventually(lambda: lab.gws.node.link.up, timeout=8)
    back = await desk.expect_voice("DnStateChanged", agentState="LoggedOut")
    assert back["data"]["dn"]["dnStatus"] == "InService"
    status, health = await desk.call("GET", "/health")
    assert (status, health["status"]) == (200, "healthy")
    status, _ = await desk.call("POST", "/workspace/v3/voice/login")
    assert status == 200
    await desk.expect_voice("DnStateChanged", agentState="LoggedIn")
    assert lab.gws.node.link.connects == 2


async def test_black_holed_link_is_detected_and_reported(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    lab.relay.cut("blackhole")
    await desk.expect_voice("DnStateChanged", agentState="OutOfService")
    assert lab.gws_events("tlib.link_down")
    status, _ = await desk.call("GET", "/health")
    assert status == 503


async def test_silent_sip_node_is_detected_by_addp() -> None:
    """A SIP node that accepts but never speaks (SIGSTOPped) is dead after interval + timeout."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(accept, LOOPBACK, 0)
    log = io.StringIO()
    config = GwsConfig(
        name="gws1",
        dc="DC1",
        sip_name="sip1",
        sip_host=LOOPBACK,
        sip_port=silent.sockets[0].getsockname()[1],
        users=UserDirectory.from_options(None, ()),
        timers=FAST_GWS_TIMERS,
    )
    async with GwsServer(
        config, http=Endpoint(LOOPBACK, 0), log=JsonLog("gws1", "DC1", log)
    ) as gws:
        await eventually(lambda: gws.node.link.connects >= 1, timeout=8)
        started = asyncio.get_running_loop().time()
        await eventually(lambda: not gws.node.link.up, timeout=8)
        elapsed = asyncio.get_running_loop().time() - started
        assert "ADDP" in gws.node.link.last_error
        assert elapsed < 5 * (FAST_GWS_TIMERS.addp_interval + FAST_GWS_TIMERS.addp_timeout)
    for writer in held:
        writer.close()
    silent.close()
    await silent.wait_closed()


async def test_desktop_subscribing_while_link_is_down_is_told_at_once(lab_factory: Any) -> None:
    lab = await lab_factory()
    await refuse_link(lab.relay)
    await eventually(lambda: not lab.gws.node.link.up, timeout=8)
    desk = await lab.logged_on("agent1")
    oos = await desk.expect_voice("DnStateChanged", agentState="OutOfService")
    assert oos["data"]["dn"]["capabilities"] == []
    await desk.expect_voice("EventError", errorCode=1800)
    status, body = await desk.call(
        "POST", "/workspace/v3/activate-channels", {"data": {"dn": "7001"}}
    )
    assert status == 503
    assert "is down" in body["status"]["message"]
    await restore_link(lab.relay)
    await desk.expect_voice("DnStateChanged", agentState="LoggedOut")
    assert lab.sip_saw("RequestRegisterAddress", "7001")
