"""A desktop's life on a GWS node over real HTTP and CometD, against a real SIP node."""

from __future__ import annotations

import re
from typing import Any

from tests.support import eventually


async def test_initialize_workspace_sets_cookie_and_publishes_initialization_complete(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.desktop()
    token = await desk.token("agent1", "agent1")
    body = await desk.initialize(token)
    assert body["status"]["code"] == 1
    cookies = {cookie.key: cookie for cookie in desk.http.cookie_jar}
    assert "WORKSPACE_SESSIONID" in cookies
    assert cookies["WORKSPACE_SESSIONID"]["path"] == "/"
    await desk.cometd_start()
    init = await desk.expect(lambda m: m["channel"] == "/workspace/v3/initialization")
    assert init["data"]["messageType"] == "WorkspaceInitializationComplete"
    assert init["data"]["state"] == "Complete"
    user = init["data"]["data"]["user"]
    assert user["employeeId"] == "agent1"
    assert user["agentLogin"] == "agent1"
    assert user["defaultPlace"] == "Place_7001"
    assert user["userName"] == "agent1"
    assert init["data"]["data"]["configuration"]["switchName"] == "sip1"
    dn = await desk.expect_voice("DnStateChanged", number="7001")
    assert dn["data"]["dn"]["agentState"] == "LoggedOut"
    assert lab.sip_saw("RequestRegisterAddress", "7001")
    assert lab.gws_events("tlib.request", message="RequestRegisterAddress", DN="7001")


async def test_agent_logs_in_goes_ready_and_not_ready_after_call_work(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    status, body = await desk.call(
        "POST", "/workspace/v3/activate-channels", {"data": {"agentId": "agent1", "dn": "7001"}}
    )
    assert (status, body["status"]["code"]) == (200, 1)
    logged_in = await desk.expect_voice("DnStateChanged", agentState="LoggedIn")
    assert logged_in["data"]["dn"]["agentId"] == "agent1"
    assert "ready" in logged_in["data"]["dn"]["capabilities"]
    status, _ = await desk.call("POST", "/workspace/v3/voice/ready")
    assert status == 200
    await desk.expect_voice("DnStateChanged", agentState="Ready")
    status, _ = await desk.call(
        "POST", "/workspace/v3/voice/not-ready", {"data": {"agentWorkMode": "AfterCallWork"}}
    )
    assert status == 200
    await desk.expect_voice("DnStateChanged", agentState="NotReady", agentWorkMode="AfterCallWork")
    status, _ = await desk.call("POST", "/workspace/v3/voice/logout")
    assert status == 200
    await desk.expect_voice("DnStateChanged", agentState="LoggedOut")
    status, _ = await desk.call("POST", "/workspace/v3/voice/login")
    assert status == 200
    await desk.expect_voice("DnStateChanged", agentState="LoggedIn")
    assert lab.sip_saw("RequestAgentNotReady", "7001")
    status, session = await desk.call("GET", "/workspace/v3/current-session")
    assert status == 200
    active = session["data"]["user"]["activeSession"]
    assert active["dn"]["number"] == "7001"
    assert active["dn"]["agentState"] == "LoggedIn"


async def test_inbound_call_is_answered_held_retrieved_and_released(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent1", "7001")
    conn_id = lab.sip.node.inbound_call("+15551230001", "7001")
    ringing = await desk.expect_voice("CallStateChanged", id=conn_id, state="Ringing")
    call = ringing["data"]["call"]
    assert ringing["data"]["notificationType"] == "StateChange"  # no NewCall: Java knows none
    assert call["connId"] == conn_id
    assert call["ani"] == "+15551230001"
    assert call["dnis"] == "7001"
    assert call["participants"] == [{"number": "+15551230001", "role": "RoleOrigination"}]
    assert "answer" in call["capabilities"]
    for action, state in (
        ("answer", "Established"),
        ("hold", "Held"),
        ("retrieve", "Established"),
        ("release", "Released"),
    ):
        operation = f"op-{action}"
        status, body = await desk.call(
            "POST", f"/workspace/v3/voice/calls/{conn_id}/{action}", {"operationId": operation}
        )
        assert (status, body["status"]["code"], body["operationId"]) == (200, 1, operation), body
        event = await desk.expect_voice("CallStateChanged", id=conn_id, state=state)
        assert event["data"]["operationId"] == operation  # echoed on the event it caused
        if state == "Held":
            assert event["data"]["call"]["capabilities"][:2] == ["retrieve", "release"]
        if state == "Released":
            assert event["data"]["call"]["capabilities"][0] == "complete"
    # A released call waits to be marked done (after-call work), then GWS forgets it.
    status, calls = await desk.call("GET", "/workspace/v3/voice/calls")
    assert [(c["id"], c["state"]) for c in calls["data"]["calls"]] == [(conn_id, "Released")]
    status, body = await desk.call("POST", f"/workspace/v3/voice/calls/{conn_id}/complete")
    assert (status, body["status"]["code"]) == (200, 1), body
    done = await desk.expect_voice("CallStateChanged", id=conn_id, state="Completed")
    assert done["data"]["operationId"] == body["operationId"]
    status, calls = await desk.call("GET", "/workspace/v3/voice/calls")
    assert status == 200 and calls["data"]["calls"] == []
    status, body = await desk.call("POST", f"/workspace/v3/voice/calls/{conn_id}/complete")
    assert status == 404, body


async def test_make_call_reports_a_dialing_call(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    status, body = await desk.call(
        "POST", "/workspace/v3/voice/make-call", {"data": {"destination": "+15559870000"}}
    )
    assert (status, body["status"]["code"]) == (200, 1), body
    dialing = await desk.expect_voice("CallStateChanged", state="Dialing")
    assert dialing["data"]["call"]["dnis"] == "+15559870000"
    assert lab.sip_saw("RequestMakeCall", "7001")


async def test_new_desktop_sees_existing_call_and_login_is_rejected_during_it(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    first = await lab.voice_on("agent1", "7001")
    conn_id = await lab.answered_call(first, "+15551230001", "7001")
    await first.call("POST", "/workspace/v3/voice/logout")
    await first.expect_voice("DnStateChanged", agentState="LoggedOut")

    second = await lab.logged_on("agent1")
    recovered = await second.expect_voice("CallStateChanged", id=conn_id, state="Established")
    assert recovered["data"]["notificationType"] == "CallRecovered"
    status, body = await second.call(
        "POST", "/workspace/v3/activate-channels", {"data": {"dn": "7001"}}
    )
    assert (status, body["status"]["code"]) == (200, 1)
    match = re.search(r"\(ReferenceID (\d+)\)", body["status"]["message"])
    assert match, body
    error = await second.expect_voice("EventError", errorCode=245)
    assert conn_id in error["data"]["error"]["errorMessage"]
    # The desktop ties the refusal to its activate-channels request.
    assert error["data"]["referenceId"] == int(match.group(1))
    # Call control still works without being logged in (SCENARIOS S1.7).
    status, _ = await second.call("POST", f"/workspace/v3/voice/calls/{conn_id}/hold")
    assert status == 200
    await second.expect_voice("CallStateChanged", id=conn_id, state="Held")


async def test_logout_ends_the_session_logs_out_and_unregisters_the_dn(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent1", "7001")
    status, body = await desk.call("POST", "/workspace/v3/logout")
    assert (status, body["status"]["code"]) == (200, 0)
    await eventually(lambda: lab.sip_saw("RequestUnregisterAddress", "7001"), timeout=8)
    assert lab.sip_saw("RequestAgentLogout", "7001")
    status, body = await desk.call("GET", "/workspace/v3/current-session")
    assert status == 401


async def test_status_lists_sessions_and_link_state(lab_factory: Any) -> None:
    lab = await lab_factory()
    await lab.logged_on("agent1")
    await lab.logged_on("agent2")
    desk = lab.desktops[0]
    status, body = await desk.call("GET", "/gws/status")
    assert status == 200
    assert body["tlib"]["state"] == "up"
    assert {s["user"]: s["dn"] for s in body["sessions"]} == {"agent1": "7001", "agent2": "7002"}
    assert all(s["cometdClients"] == 1 for s in body["sessions"])
    assert all(s["lastCometdActivityAgo"] is not None for s in body["sessions"])
    assert lab.gws_events("cometd.publish", messageType="WorkspaceInitializationComplete")
