"""The desktop model without I/O: Workspace notifications and connection inputs in, what the
desktop shows out."""

from __future__ import annotations

from typing import Any

import pytest

from clients.wwe.desktop import (
    CONNECTION_LOST,
    CONNECTION_RESTORED,
    UNABLE_TO_CONNECT,
    VOICE_AVAILABLE,
    VOICE_UNAVAILABLE,
    CallChanged,
    Connection,
    ConnectionChanged,
    ConnectionInput,
    ConnectionTransitionError,
    Desktop,
    ErrorReported,
    UserMessage,
    VoiceChanged,
)
from clients.wwe.errors import BadServerMessage
from clients.wwe.workspace import (
    INITIALIZATION_CHANNEL,
    VOICE_CHANNEL,
    AgentState,
    CallState,
    Ignored,
    InitializationComplete,
    ServiceStateChanged,
    parse_call,
    parse_dn,
    parse_notification,
)


def dn(state: str = "LoggedIn", **extra: Any) -> dict[str, Any]:
    return {
        "messageType": "DnStateChanged",
        "dn": {"number": "7001", "agentId": "agent1", "agentState": state, **extra},
    }


def call(state: str, notification: str = "StateChange", **extra: Any) -> dict[str, Any]:
    payload = {
        "id": "c1",
        "state": state,
        "capabilities": ["answer", "release"],
        "callType": "Inbound",
        "phoneNumber": "+15551230001",
        "ani": "+15551230001",
        "dnis": "7001",
        "dn": "7001",
        "extensions": [{"key": "CallNode", "value": "sip1"}],
        **extra,
    }
    return {"messageType": "CallStateChanged", "notificationType": notification, "call": payload}


def apply(desktop: Desktop, data: dict[str, Any], channel: str = VOICE_CHANNEL) -> list[Any]:
    notification = parse_notification(channel, data)
    assert not isinstance(notification, Ignored)
    return desktop.apply(notification)


def connected() -> Desktop:
    desktop = Desktop()
    desktop.fire(ConnectionInput.LOGGED_ON)
    return desktop


def test_losing_the_connection_shows_the_seed_message_once_and_giving_up_the_other() -> None:
    desktop = connected()
    events = desktop.fire(ConnectionInput.LOST)
    assert events == [
        ConnectionChanged(Connection.CONNECTED, Connection.RECONNECTING),
        UserMessage("Connection to the server has been lost. Reconnecting..."),
    ]
    assert desktop.fire(ConnectionInput.LOST) == []
    events = desktop.fire(ConnectionInput.GIVE_UP)
    assert events[-1] == UserMessage(
        "Unable to establish connection. Please refresh your browser and log in again"
    )
    assert desktop.connection is Connection.GAVE_UP
    assert desktop.messages == [CONNECTION_LOST, UNABLE_TO_CONNECT]


def test_a_connection_back_in_time_is_connected_again() -> None:
    desktop = connected()
    desktop.fire(ConnectionInput.LOST)
    assert desktop.fire(ConnectionInput.RESTORED)[-1] == UserMessage(CONNECTION_RESTORED)
    assert desktop.connection is Connection.CONNECTED


def test_an_input_the_table_does_not_list_names_state_and_input() -> None:
    desktop = Desktop()
    with pytest.raises(ConnectionTransitionError, match="'connection lost' in state logged-out"):
        desktop.fire(ConnectionInput.LOST)
    desktop = connected()
    with pytest.raises(ConnectionTransitionError, match="give-up delay expired"):
        desktop.fire(ConnectionInput.GIVE_UP)


def test_refresh_forgets_the_session_but_keeps_the_messages_shown() -> None:
    desktop = connected()
    apply(desktop, call("Ringing", "NewCall"))
    desktop.fire(ConnectionInput.LOST)
    desktop.refresh()
    assert desktop.connection is Connection.LOGGED_OUT
    assert desktop.calls == {}
    assert desktop.voice.dn == ""
    assert desktop.messages == [CONNECTION_LOST]


def test_out_of_service_makes_the_voice_channel_unavailable_until_back_in_service() -> None:
    desktop = connected()
    apply(desktop, dn("LoggedIn"))
    events = apply(desktop, dn("OutOfService", dnStatus="InService"))
    assert isinstance(events[0], VoiceChanged)
    assert events[1] == UserMessage(VOICE_UNAVAILABLE)
    assert not desktop.voice.available
    events = apply(desktop, dn("LoggedOut"))
    assert events[-1] == UserMessage(VOICE_AVAILABLE)
    assert desktop.voice.available
    # A DN out of service with a stale agent state is unavailable too.
    apply(desktop, dn("LoggedOut", dnStatus="OutOfService"))
    assert not desktop.voice.available


def test_a_logout_by_the_server_is_shown_with_its_reason() -> None:
    desktop = connected()
    apply(desktop, dn("Ready"))
    events = apply(desktop, {**dn("LoggedOut"), "reason": "LogoutOnDisconnect"})
    assert events[-1] == UserMessage("Logged out of the voice channel (LogoutOnDisconnect)")
    apply(desktop, dn("LoggedIn"))
    events = apply(desktop, {**dn("LoggedOut"), "reason": "Request"})
    assert not any(isinstance(event, UserMessage) for event in events)


def test_calls_appear_change_and_leave_the_desktop() -> None:
    desktop = connected()
    [event] = apply(desktop, call("Ringing", "NewCall"))
    assert isinstance(event, CallChanged)
    assert event.call.notification == "NewCall"
    assert event.call.call_node == "sip1"
    assert desktop.calls["c1"].capabilities == ("answer", "release")
    assert "Ringing from +15551230001" in event.call.describe()
    apply(desktop, call("Established", capabilities=["release", "hold"]))
    assert desktop.calls["c1"].state is CallState.ESTABLISHED
    apply(desktop, call("Released", capabilities=[]))
    assert desktop.calls == {}
    assert [c.state for c in desktop.call_log] == ["Ringing", "Established", "Released"]


def test_an_event_error_is_reported_and_shown() -> None:
    desktop = connected()
    data = {
        "messageType": "EventError",
        "error": {"errorCode": 245, "errorMessage": "agent login rejected on DN 7001"},
        "thisDn": "7001",
        "referenceId": 12,
    }
    [reported, shown] = apply(desktop, data)
    assert isinstance(reported, ErrorReported)
    assert (reported.error.code, reported.error.dn, reported.error.reference_id) == (
        245,
        "7001",
        12,
    )
    assert shown == UserMessage("Error 245: agent login rejected on DN 7001")


def test_resync_releases_calls_the_server_no_longer_has_and_adds_the_ones_it_has() -> None:
    desktop = connected()
    apply(desktop, call("Ringing", "NewCall"))
    other = parse_call({"id": "c2", "state": "Held", "capabilities": ["retrieve"]}, "CallRecovered")
    events = desktop.resync(parse_dn({"number": "7001", "agentState": "NotReady"}), [other])
    assert [type(e).__name__ for e in events] == ["VoiceChanged", "CallChanged", "CallChanged"]
    assert list(desktop.calls) == ["c2"]
    assert desktop.voice.agent_state is AgentState.NOT_READY
    assert desktop.resync(desktop.voice, [other]) == []


def test_initialization_complete_names_the_user_dn_and_gws_node() -> None:
    data = {
        "messageType": "WorkspaceInitializationComplete",
        "state": "Complete",
        "data": {
            "user": {"userName": "agent1", "agentLogin": "agent1", "defaultPlace": "Place_7001"},
            "configuration": {"gwsNode": "gws2", "dc": "DC1"},
        },
    }
    notification = parse_notification(INITIALIZATION_CHANNEL, data)
    assert isinstance(notification, InitializationComplete)
    assert (notification.user.dn, notification.user.gws_node) == ("7001", "gws2")


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"messageType": "DnStateChanged"}, "dn must be an object"),
        ({"messageType": "DnStateChanged", "dn": {"agentState": "Ready"}}, "dn.number is missing"),
        (dn("Dancing"), "dn.agentState 'Dancing' is not a Workspace state"),
        (dn("Ready", capabilities="ready"), "dn.capabilities must be a list of strings"),
        (call("Flying"), "call.state 'Flying' is not a Workspace call state"),
        ({"messageType": "EventError", "error": {"errorCode": "x"}}, "errorCode must be an int"),
        ([1, 2], "must be an object"),
    ],
)
def test_unreadable_notifications_are_refused_naming_the_field(data: Any, complaint: str) -> None:
    with pytest.raises(BadServerMessage, match=complaint):
        parse_notification(VOICE_CHANNEL, data)


def test_other_channels_and_message_types_are_ignored() -> None:
    assert isinstance(parse_notification("/workspace/v3/media", {"messageType": "X"}), Ignored)
    assert isinstance(parse_notification(VOICE_CHANNEL, {"messageType": "Pong"}), Ignored)
    pending = {"messageType": "WorkspaceInitializationComplete", "state": "Pending"}
    assert isinstance(parse_notification(INITIALIZATION_CHANNEL, pending), Ignored)


def test_service_state_changed_is_read_and_bad_states_are_refused() -> None:
    lost = {
        "messageType": "ServiceStateChanged",
        "service": {"serviceName": "VOICE", "serviceState": "UNAVAILABLE"},
        "message": "Connection to SIP Server sip1 is lost",
    }
    assert parse_notification("/workspace/v3/voice", lost) == ServiceStateChanged(
        False, "Connection to SIP Server sip1 is lost"
    )
    for bad in ({"serviceState": "MAYBE"}, "AVAILABLE"):
        with pytest.raises(BadServerMessage, match="ServiceStateChanged"):
            parse_notification(
                "/workspace/v3/voice", {"messageType": "ServiceStateChanged", "service": bad}
            )
