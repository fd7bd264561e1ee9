"""T-Lib events -> GWS DN view -> Workspace API v3 messages on ``/workspace/v3/voice``.

``EVENT_TABLE`` is the one place that says, for every T-Lib event a SIP node sends (see
TLIB_CONTRACT.md), how it changes the node's ``DnView`` and which CometD messages it produces.
An event missing from the table is logged and ignored, never raised. Message shapes follow the
public ``genesys-workspace-client-js`` (``VoiceApi._onCometdMessage``): ``data.messageType`` is
``DnStateChanged`` (``data.dn``), ``CallStateChanged`` (``data.call``, ``data.notificationType``)
or ``EventError`` (``data.error``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from emulator.gws.dnview import (
    CALL_CAPABILITIES,
    DN_CAPABILITIES,
    CallView,
    DnRole,
    DnView,
    WorkspaceAgentState,
    WorkspaceCallState,
)
from emulator.tlib.messages import Event, EventName

VOICE_CHANNEL = "/workspace/v3/voice"

Message = dict[str, Any]


class GwsErrorCode(IntEnum):
    """``error.errorCode`` values GWS itself raises (T-Lib codes are passed through as they are)."""

    SIP_SERVER_CONNECTION_LOST = 1800


def dn_state_changed(dn: DnView, **extra: Any) -> Message:
    state = dn.reported_state
    message: Message = {
        "messageType": "DnStateChanged",
        "notificationType": "StateChange",
        "dn": {
            "number": dn.number,
            "agentId": dn.agent_id,
            "agentState": str(state),
            "agentWorkMode": dn.agent_work_mode,
            "capabilities": list(DN_CAPABILITIES[state]),
            "dnStatus": dn.dn_status,
        },
    }
    message.update({key: value for key, value in extra.items() if value is not None})
    return message


def call_payload(dn: DnView, call: CallView) -> Message:
    called = call.role is DnRole.DESTINATION
    ani, dnis = (call.other_dn, dn.number) if called else (dn.number, call.other_dn)
    other_role = DnRole.ORIGINATION if called else DnRole.DESTINATION
    capabilities = () if not dn.link_up else CALL_CAPABILITIES[call.state]
    return {
        "type": "Call",
        "id": call.conn_id,
        "connId": call.conn_id,
        "callUuid": call.conn_id,
        "callType": call.call_type,
        "state": str(call.state),
        "capabilities": list(capabilities),
        "participants": [{"number": call.other_dn, "role": str(other_role)}],
        "phoneNumber": call.other_dn,
        "ani": ani,
        "dnis": dnis,
        "dn": dn.number,
        "userData": [],
        "extensions": [{"key": "CallNode", "type": "str", "value": call.call_node}],
    }


def call_state_changed(dn: DnView, call: CallView, notification_type: str) -> Message:
    return {
        "messageType": "CallStateChanged",
        "notificationType": notification_type,
        "call": call_payload(dn, call),
    }


def event_error(code: int, text: str, **extra: Any) -> Message:
    message: Message = {
        "messageType": "EventError",
        "error": {"errorCode": code, "errorMessage": text},
    }
    message.update({key: value for key, value in extra.items() if value is not None})
    return message


def snapshot(dn: DnView, notification_type: str = "CallRecovered") -> list[Message]:
    """Everything a desktop that just subscribed needs: the DN, then each call."""
    return [dn_state_changed(dn)] + [
        call_state_changed(dn, call, notification_type) for call in dn.calls.values()
    ]


# --- event handlers: update the view, return the messages --------------------------------------

_AGENT_STATES = {
    "LoggedOut": WorkspaceAgentState.LOGGED_OUT,
    "NotReady": WorkspaceAgentState.NOT_READY,
    "Ready": WorkspaceAgentState.READY,
    "AfterCallWork": WorkspaceAgentState.NOT_READY,
}


def _text(event: Event, name: str, default: str = "") -> str:
    value = event.get(name, default)
    return value if isinstance(value, str) else default


def _first_seen_role(call_type: str, state: WorkspaceCallState) -> DnRole:
    """The DN's role in a call GWS did not know: ringing here, or inbound, it was called; dialing,
    or outbound, it placed the call. An internal call first seen established or held (a snapshot,
    a re-announcement) is taken as placed here: the SIP node's call lists do not say."""
    if call_type == "Inbound" or state is WorkspaceCallState.RINGING:
        return DnRole.DESTINATION
    return DnRole.ORIGINATION


def _call_from_wire(
    item: Mapping[str, Any], default_state: WorkspaceCallState, known: Mapping[str, CallView]
) -> CallView | None:
    """The call of a T-Lib event or call list item; a call already ``known`` keeps its role."""
    conn_id = item.get("ConnID")
    if not isinstance(conn_id, str) or not conn_id:
        return None
    try:
        state = WorkspaceCallState(item.get("CallState", default_state))
    except ValueError:
        state = default_state
    call_type = str(item.get("CallType", "Internal"))
    previous = known.get(conn_id)
    return CallView(
        conn_id=conn_id,
        state=state,
        other_dn=str(item.get("OtherDN", "")),
        call_type=call_type,
        call_node=str(item.get("CallNode", "")),
        role=previous.role if previous else _first_seen_role(call_type, state),
    )


def _on_address_info(dn: DnView, event: Event) -> list[Message]:
    """EventRegistered / EventAddressInfo: a full snapshot of the DN as its owner knows it."""
    dn.registered = dn.registered or event.name is EventName.EVENT_REGISTERED
    wire_state = _text(event, "AgentState", "LoggedOut")
    dn.agent_state = _AGENT_STATES.get(wire_state, WorkspaceAgentState.LOGGED_OUT)
    dn.agent_id = _text(event, "AgentID", dn.agent_id if dn.logged_in else "")
    dn.agent_work_mode = _text(event, "AgentWorkMode", "Unknown")
    if wire_state == "AfterCallWork":
        dn.agent_work_mode = "AfterCallWork"
    dn.in_service = _text(event, "DNStatus", "InService") != "OutOfService"
    reported: dict[str, CallView] = {}
    wire_calls = event.get("Calls", [])
    for item in wire_calls if isinstance(wire_calls, list) else []:
        call = (
            _call_from_wire(item, WorkspaceCallState.ESTABLISHED, dn.calls)
            if isinstance(item, dict)
            else None
        )
        if call is not None:
            reported[call.conn_id] = call
    gone = [call for conn_id, call in dn.calls.items() if conn_id not in reported]
    dn.calls = reported
    released = [call_state_changed(dn, _released(call), "StateChange") for call in gone]
    return released + snapshot(dn)


def _released(call: CallView) -> CallView:
    return replace(call, state=WorkspaceCallState.RELEASED)


def _on_agent_login(dn: DnView, event: Event) -> list[Message]:
    dn.agent_id = _text(event, "AgentID", dn.agent_id)
    dn.agent_work_mode = _text(event, "AgentWorkMode", "ManualIn")
    auto_in = dn.agent_work_mode == "AutoIn"
    dn.agent_state = WorkspaceAgentState.READY if auto_in else WorkspaceAgentState.LOGGED_IN
    return [dn_state_changed(dn)]


def _on_agent_logout(dn: DnView, event: Event) -> list[Message]:
    dn.agent_state = WorkspaceAgentState.LOGGED_OUT
    dn.agent_work_mode = "Unknown"
    return [dn_state_changed(dn, reason=_text(event, "Reason") or None)]


def _on_agent_ready(dn: DnView, event: Event) -> list[Message]:
    dn.agent_state = WorkspaceAgentState.READY
    dn.agent_work_mode = _text(event, "AgentWorkMode", "ManualIn")
    return [dn_state_changed(dn)]


def _on_agent_not_ready(dn: DnView, event: Event) -> list[Message]:
    dn.agent_state = WorkspaceAgentState.NOT_READY
    dn.agent_work_mode = _text(event, "AgentWorkMode", "Unknown")
    return [dn_state_changed(dn)]


def _call_event(default_state: WorkspaceCallState) -> Callable[[DnView, Event], list[Message]]:
    def handle(dn: DnView, event: Event) -> list[Message]:
        attributes = {"CallState": default_state, **event.attributes}
        call = _call_from_wire(attributes, default_state, dn.calls)
        if call is None:
            return []
        known = call.conn_id in dn.calls
        if call.state is WorkspaceCallState.RELEASED:
            dn.calls.pop(call.conn_id, None)
            return [call_state_changed(dn, call, "StateChange")]
        dn.calls[call.conn_id] = call
        if event.get("Restored"):
            notification = "CallRecovered"
        else:
            notification = "StateChange" if known else "NewCall"
        return [call_state_changed(dn, call, notification)]

    return handle


def _on_out_of_service(dn: DnView, event: Event) -> list[Message]:
    dn.in_service = False
    return [dn_state_changed(dn, reason=_text(event, "Reason") or None)]


def _on_back_in_service(dn: DnView, event: Event) -> list[Message]:
    dn.in_service = True
    return [dn_state_changed(dn, reason=_text(event, "Reason") or None)]


def _on_unregistered(dn: DnView, event: Event) -> list[Message]:
    dn.registered = False
    return []


def _on_error(dn: DnView, event: Event) -> list[Message]:
    code = event.get("ErrorCode", 0)
    return [
        event_error(
            code if isinstance(code, int) else 0,
            _text(event, "ErrorMessage", "unspecified T-Lib error"),
            thisDn=dn.number,
            referenceId=event.reference_id,
        )
    ]


@dataclass(frozen=True)
class Row:
    handle: Callable[[DnView, Event], list[Message]]
    # The event leaves GWS unsure of the agent state: ask the SIP node (RequestQueryAddress).
    query_after: bool = False


EVENT_TABLE: Mapping[EventName, Row] = {
    EventName.EVENT_REGISTERED: Row(_on_address_info),
    EventName.EVENT_ADDRESS_INFO: Row(_on_address_info),
    EventName.EVENT_UNREGISTERED: Row(_on_unregistered),
    EventName.EVENT_AGENT_LOGIN: Row(_on_agent_login),
    EventName.EVENT_AGENT_LOGOUT: Row(_on_agent_logout),
    EventName.EVENT_AGENT_READY: Row(_on_agent_ready),
    EventName.EVENT_AGENT_NOT_READY: Row(_on_agent_not_ready),
    EventName.EVENT_DIALING: Row(_call_event(WorkspaceCallState.DIALING)),
    EventName.EVENT_RINGING: Row(_call_event(WorkspaceCallState.RINGING)),
    EventName.EVENT_ESTABLISHED: Row(_call_event(WorkspaceCallState.ESTABLISHED)),
    EventName.EVENT_HELD: Row(_call_event(WorkspaceCallState.HELD)),
    EventName.EVENT_RETRIEVED: Row(_call_event(WorkspaceCallState.ESTABLISHED)),
    EventName.EVENT_RELEASED: Row(_call_event(WorkspaceCallState.RELEASED)),
    EventName.EVENT_DN_OUT_OF_SERVICE: Row(_on_out_of_service),
    EventName.EVENT_DN_BACK_IN_SERVICE: Row(_on_back_in_service, query_after=True),
    EventName.EVENT_ERROR: Row(_on_error),
}


def apply_event(dn: DnView, event: Event) -> tuple[list[Message], bool]:
    """Apply ``event`` to ``dn``; return the voice messages and whether to query the address."""
    row = EVENT_TABLE.get(event.name)
    if row is None:
        return [], False
    return row.handle(dn, event), row.query_after


def link_lost(dn: DnView, sip_name: str, reason: str) -> list[Message]:
    """GWS lost its T-Lib link: the voice channel is out of service for every session.

    The SIP node logs the agent out when GWS's connection goes away (logout-on-disconnect), so
    the agent GWS knew is gone: no agent id or work mode is reported until ``EventRegistered``
    on the restored link tells the truth.
    """
    dn.link_up = False
    dn.agent_state = WorkspaceAgentState.LOGGED_OUT
    dn.agent_id = ""
    dn.agent_work_mode = "Unknown"
    text = (
        f"Connection to SIP Server {sip_name} is lost ({reason}); voice channel is out of service"
    )
    return [
        dn_state_changed(dn, reason="SIPServerConnectionLost", message=text),
        event_error(GwsErrorCode.SIP_SERVER_CONNECTION_LOST, text, thisDn=dn.number),
    ]


def link_restored(dn: DnView) -> None:
    """The link is back: the DN is re-registered and its ``EventRegistered`` tells the truth.

    Nothing is published until then; a state reported now would be stale, since the SIP node has
    logged the agent out on the disconnect (logout-on-disconnect).
    """
    dn.link_up = True
    dn.registered = False
