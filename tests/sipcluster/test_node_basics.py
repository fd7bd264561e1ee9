"""A desktop's life on one node: register, login, ready, query, calls, ACW, logout."""

from __future__ import annotations

from typing import Any

from emulator.tlib.errors import ErrorCode
from emulator.tlib.messages import (
    EventName,
    RequestAgentLogin,
    RequestAgentLogout,
    RequestAgentReady,
    RequestAnswerCall,
    RequestQueryAddress,
    RequestRegisterAddress,
    RequestReleaseCall,
    RequestUnregisterAddress,
)
from tests.support import eventually


async def test_register_login_ready_query_logout_unregister(cluster_factory: Any) -> None:
    cluster = await cluster_factory(("sip1", "sip2"))
    desk = await cluster.desktop("sip1")
    registered = await desk.send(RequestRegisterAddress, "7001")
    assert registered.name is EventName.EVENT_REGISTERED
    assert registered.get("Owner") == "sip1"
    assert registered.get("AgentState") == "LoggedOut"
    login = await desk.send(RequestAgentLogin, "7001", agent_id="agent1")
    assert login.name is EventName.EVENT_AGENT_LOGIN
    ready = await desk.send(RequestAgentReady, "7001")
    assert ready.name is EventName.EVENT_AGENT_READY
    info = await desk.send(RequestQueryAddress, "7001")
    assert info.name is EventName.EVENT_ADDRESS_INFO
    assert info.get("AgentState") == "Ready"
    assert info.get("AgentID") == "agent1"
    logout = await desk.send(RequestAgentLogout, "7001")
    assert logout.name is EventName.EVENT_AGENT_LOGOUT
    unregistered = await desk.send(RequestUnregisterAddress, "7001")
    assert unregistered.name is EventName.EVENT_UNREGISTERED
    await eventually(
        lambda: cluster.state("sip2")["ownership"]["7001"]["owner"] == "sip1", timeout=5
    )


async def test_login_is_rejected_while_a_call_is_in_progress(cluster_factory: Any) -> None:
    cluster = await cluster_factory(("sip1", "sip2"))
    desk = await cluster.desktop("sip1")
    await desk.send(RequestRegisterAddress, "7001")
    await eventually(lambda: cluster.nodes["sip2"].node.owner_of("7001") == "sip1", timeout=5)
    conn_id = cluster.nodes["sip2"].node.inbound_call("+15551230001", "7001")
    ringing = await desk.expect(EventName.EVENT_RINGING, ConnID=conn_id)
    assert ringing.get("CallNode") == "sip2"
    answered = await desk.send(RequestAnswerCall, "7001", conn_id=conn_id)
    assert answered.name is EventName.EVENT_ESTABLISHED
    rejected = await desk.send(RequestAgentLogin, "7001", agent_id="agent1")
    assert rejected.name is EventName.EVENT_ERROR
    assert rejected.get("ErrorCode") == ErrorCode.CALL_IN_PROGRESS
    assert conn_id in rejected.get("ErrorMessage")
    released = await desk.send(RequestReleaseCall, "7001", conn_id=conn_id)
    assert released.name is EventName.EVENT_RELEASED
    login = await desk.send(RequestAgentLogin, "7001", agent_id="agent1")
    assert login.name is EventName.EVENT_AGENT_LOGIN


async def test_after_call_work_follows_a_released_call_then_ready(cluster_factory: Any) -> None:
    cluster = await cluster_factory(("sip1", "sip2"))
    desk = await cluster.desktop("sip1")
    await desk.send(RequestRegisterAddress, "7001")
    await desk.send(RequestAgentLogin, "7001", agent_id="agent1")
    conn_id = cluster.nodes["sip1"].node.inbound_call("+15551230001", "7001")
    await desk.send(RequestAnswerCall, "7001", conn_id=conn_id)
    await desk.send(RequestReleaseCall, "7001", conn_id=conn_id)
    acw = await desk.expect(EventName.EVENT_AGENT_NOT_READY, AgentWorkMode="AfterCallWork")
    assert acw.get("AgentID") == "agent1"
    await desk.expect(EventName.EVENT_AGENT_READY, timeout=3)
