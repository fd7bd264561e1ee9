"""The T-Lib event -> Workspace message table, synchronously: events in, view and messages out."""

from __future__ import annotations

from typing import Any

from emulator.gws import voice_map
from emulator.gws.dnview import (
    CallView,
    DnRole,
    DnView,
    WorkspaceAgentState,
    WorkspaceCallState,
)
from emulator.tlib.messages import Event, EventName


def event(name: EventName, **attributes: Any) -> Event:
    return Event(
        name, this_dn="7001", reference_id=attributes.pop("ref", None), attributes=attributes
    )


def apply(dn: DnView, name: EventName, **attributes: Any) -> list[dict[str, Any]]:
    messages, _ = voice_map.apply_event(dn, event(name, **attributes))
    return messages


def test_every_event_of_the_tlib_contract_has_a_row() -> None:
    assert set(voice_map.EVENT_TABLE) == set(EventName)


def test_registered_snapshot_reports_agent_state_and_recovered_calls() -> None:
    dn = DnView("7001")
    messages = apply(
        dn,
        EventName.EVENT_REGISTERED,
        AgentID="agent1",
        AgentState="AfterCallWork",
        AgentWorkMode="AfterCallWork",
        DNStatus="InService",
        Calls=[
            {
                "ConnID": "c1",
                "CallState": "Held",
                "OtherDN": "+1555",
                "CallType": "Inbound",
                "CallNode": "sip2",
            }
        ],
    )
    assert [m["messageType"] for m in messages] == ["DnStateChanged", "CallStateChanged"]
    assert messages[0]["dn"]["agentState"] == "NotReady"
    assert messages[0]["dn"]["agentWorkMode"] == "AfterCallWork"
    call = messages[1]["call"]
    assert messages[1]["notificationType"] == "CallRecovered"
    assert (call["id"], call["state"]) == ("c1", "Held")
    assert call["capabilities"][:2] == ["retrieve", "release"]
    assert "hold" not in call["capabilities"] and "complete" not in call["capabilities"]
    assert call["extensions"] == [{"key": "CallNode", "type": "str", "value": "sip2"}]
    assert dn.registered


def test_a_call_missing_from_a_new_snapshot_is_reported_released() -> None:
    dn = DnView("7001")
    apply(dn, EventName.EVENT_RINGING, ConnID="c1", OtherDN="+1555", CallType="Inbound")
    messages = apply(dn, EventName.EVENT_ADDRESS_INFO, AgentState="LoggedOut", Calls=[])
    assert messages[0]["call"]["state"] == "Released"
    # GWS keeps it, Released, for the desktop to mark done; the SIP node has no call left.
    assert dn.calls["c1"].state is WorkspaceCallState.RELEASED
    assert dn.live_calls() == []


def test_agent_state_events_follow_login_ready_not_ready_logout() -> None:
    dn = DnView("7001")
    steps = [
        (
            EventName.EVENT_AGENT_LOGIN,
            {"AgentID": "agent1", "AgentWorkMode": "ManualIn"},
            "LoggedIn",
        ),
        (EventName.EVENT_AGENT_READY, {"AgentWorkMode": "ManualIn"}, "Ready"),
        (EventName.EVENT_AGENT_NOT_READY, {"AgentWorkMode": "AfterCallWork"}, "NotReady"),
        (EventName.EVENT_AGENT_LOGOUT, {"Reason": "LogoutOnDisconnect"}, "LoggedOut"),
    ]
    for name, attributes, state in steps:
        [message] = apply(dn, name, **attributes)
        assert message["dn"]["agentState"] == state
        assert message["dn"]["agentId"] == "agent1"
    assert message["reason"] == "LogoutOnDisconnect"


def test_auto_in_login_is_ready_at_once() -> None:
    dn = DnView("7001")
    [message] = apply(dn, EventName.EVENT_AGENT_LOGIN, AgentID="a", AgentWorkMode="AutoIn")
    assert message["dn"]["agentState"] == "Ready"


def test_call_events_walk_a_call_through_its_states() -> None:
    dn = DnView("7001")
    first = apply(dn, EventName.EVENT_DIALING, ConnID="c9", OtherDN="7002", CallType="Internal")
    assert first[0]["notificationType"] == "StateChange"  # the Java client has no NewCall
    assert first[0]["call"]["ani"] == "7001" and first[0]["call"]["dnis"] == "7002"
    for name, state in (
        (EventName.EVENT_ESTABLISHED, "Established"),
        (EventName.EVENT_HELD, "Held"),
        (EventName.EVENT_RETRIEVED, "Established"),
    ):
        [message] = apply(dn, name, ConnID="c9", OtherDN="7002", CallType="Internal")
        assert message["notificationType"] == "StateChange"
        assert message["call"]["state"] == state
    [released] = apply(dn, EventName.EVENT_RELEASED, ConnID="c9", OtherDN="7002")
    assert released["call"]["state"] == "Released"
    assert released["call"]["capabilities"] == [
        "complete",
        "attach-user-data",
        "update-user-data",
        "delete-user-data-pair",
    ]
    assert dn.calls["c9"].state is WorkspaceCallState.RELEASED


def parties(message: dict[str, Any]) -> tuple[str, str, list[dict[str, str]]]:
    call = message["call"]
    return call["ani"], call["dnis"], call["participants"]


def test_an_answered_internal_call_keeps_its_caller() -> None:
    # 7002 calls 7001: ringing here, this DN is the destination, and stays it once the call is
    # answered, held, retrieved and released (the call's type says "Internal" either way).
    dn = DnView("7001")
    called = ("7002", "7001", [{"number": "7002", "role": "RoleOrigination"}])
    for name in (
        EventName.EVENT_RINGING,
        EventName.EVENT_ESTABLISHED,
        EventName.EVENT_HELD,
        EventName.EVENT_RETRIEVED,
        EventName.EVENT_RELEASED,
    ):
        [message] = apply(dn, name, ConnID="c5", OtherDN="7002", CallType="Internal")
        assert parties(message) == called, name
    # A snapshot of a call GWS knows does not change who called whom either.
    apply(dn, EventName.EVENT_RINGING, ConnID="c6", OtherDN="7002", CallType="Internal")
    snapshot = [
        {"ConnID": "c6", "CallState": "Established", "OtherDN": "7002", "CallType": "Internal"}
    ]
    messages = apply(dn, EventName.EVENT_ADDRESS_INFO, AgentState="Ready", Calls=snapshot)
    assert parties(messages[-1]) == ("7002", "7001", called[2])


def test_a_call_first_seen_established_is_placed_by_the_dn_unless_inbound() -> None:
    # GWS did not see the call start (another node's session, a re-announcement): the SIP node's
    # call lists carry no role, so an internal or outbound call is taken as placed by this DN.
    dn = DnView("7001")
    for conn_id, call_type, expected in (
        ("c7", "Internal", ("7001", "7002")),
        ("c8", "Outbound", ("7001", "7002")),
        ("c9", "Inbound", ("7002", "7001")),
    ):
        [message] = apply(
            dn, EventName.EVENT_ESTABLISHED, ConnID=conn_id, OtherDN="7002", CallType=call_type
        )
        assert parties(message)[:2] == expected, call_type


def test_restored_call_is_announced_as_recovered() -> None:
    dn = DnView("7001")
    [message] = apply(dn, EventName.EVENT_ESTABLISHED, ConnID="c1", OtherDN="+1", Restored=True)
    assert message["notificationType"] == "CallRecovered"


def test_dn_out_of_service_and_back_asks_for_a_query() -> None:
    dn = DnView("7001", agent_state=WorkspaceAgentState.READY)
    [message] = apply(dn, EventName.EVENT_DN_OUT_OF_SERVICE, Reason="OwnerUnreachable")
    assert message["dn"]["agentState"] == "OutOfService"
    assert message["dn"]["capabilities"] == []
    messages, query = voice_map.apply_event(dn, event(EventName.EVENT_DN_BACK_IN_SERVICE))
    assert query
    assert messages[0]["dn"]["agentState"] == "Ready"


def test_event_error_becomes_workspace_event_error() -> None:
    dn = DnView("7001")
    [message] = apply(
        dn, EventName.EVENT_ERROR, ErrorCode=245, ErrorMessage="call in progress", ref=7
    )
    assert message == {
        "messageType": "EventError",
        "error": {"errorCode": 245, "errorMessage": "call in progress"},
        "thisDn": "7001",
        "referenceId": 7,
    }


def test_link_loss_puts_the_dn_out_of_service_and_says_why() -> None:
    dn = DnView(
        "7001", agent_id="agent1", agent_state=WorkspaceAgentState.READY, agent_work_mode="ManualIn"
    )
    dn.calls["c1"] = CallView(
        "c1", WorkspaceCallState.ESTABLISHED, "+1", "Inbound", "", DnRole.DESTINATION
    )
    state, error, service = voice_map.link_lost(dn, "sip1", "connection closed by peer")
    assert state["dn"]["agentState"] == "OutOfService"
    assert state["dn"]["dnStatus"] == "OutOfService"
    # The SIP node has logged the agent out (logout-on-disconnect): nothing stale is reported.
    assert (state["dn"]["agentId"], state["dn"]["agentWorkMode"]) == ("", "Unknown")
    assert state["reason"] == "SIPServerConnectionLost"
    assert error["error"]["errorCode"] == voice_map.GwsErrorCode.SIP_SERVER_CONNECTION_LOST
    assert "sip1" in error["error"]["errorMessage"]
    assert service["messageType"] == "ServiceStateChanged"
    assert service["service"] == {"serviceName": "VOICE", "serviceState": "UNAVAILABLE"}
    # No call control is offered while the link is down.
    assert voice_map.call_payload(dn, dn.calls["c1"])["capabilities"] == []
    voice_map.link_restored(dn)
    assert dn.link_up and not dn.registered
    # The voice service is back once the DN is registered again: said once, first.
    back = apply(dn, EventName.EVENT_REGISTERED, AgentState="LoggedOut", Calls=[])
    assert back[0] == {
        "messageType": "ServiceStateChanged",
        "service": {"serviceName": "VOICE", "serviceState": "AVAILABLE"},
    }
    again = apply(dn, EventName.EVENT_ADDRESS_INFO, AgentState="LoggedOut", Calls=[])
    assert "ServiceStateChanged" not in [m["messageType"] for m in again]


def test_malformed_event_attributes_are_tolerated() -> None:
    dn = DnView("7001")
    assert apply(dn, EventName.EVENT_RINGING, OtherDN="+1") == []  # no ConnID
    [message] = apply(dn, EventName.EVENT_RINGING, ConnID="c1", CallState="Bogus")
    assert message["call"]["state"] == "Ringing"
    messages = apply(dn, EventName.EVENT_REGISTERED, AgentState=3, Calls="nope")
    [state] = [m for m in messages if m["messageType"] == "DnStateChanged"]
    assert state["dn"]["agentState"] == "LoggedOut"
