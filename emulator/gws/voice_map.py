"""T-Lib events -> GWS DN view -> Workspace API v3 messages on ``/workspace/v3/voice``.

``EVENT_TABLE`` is the one place that says, for every T-Lib event a SIP node sends (see
docs/tlib-voice.md), how it changes the node's ``DnView`` and which CometD messages it produces
(their shapes are ``voice_messages``'). An event missing from the table is logged and ignored,
never raised. A call's first event is a ``StateChange`` (the Java client has no ``NewCall``); a
call the SIP node re-announces after a failover is ``CallRecovered``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from emulator.gws.dnview import (
    CallView,
    DnRole,
    DnView,
    Party,
    WorkspaceAgentState,
    WorkspaceCallState,
)
from emulator.gws.voice_messages import (
    VOICE_CHANNEL,
    Message,
    NotificationType,
    call_payload,
    call_state_changed,
    dn_state_changed,
    event_error,
    kvlist,
    service_state_changed,
    snapshot,
    user_data_from_tlib,
)
from emulator.tlib.messages import Event, EventName

__all__ = ["VOICE_CHANNEL", "apply_event", "call_payload", "link_lost", "link_restored", "snapshot"]

# A Released call waits in the view to be marked done; past this many the oldest are forgotten
# (a desktop that never completes its calls must not grow the node without bound).
MAX_RELEASED_CALLS = 16
STATE_CHANGE = NotificationType.STATE_CHANGE


class GwsErrorCode(IntEnum):
    """``error.errorCode`` values GWS itself raises (T-Lib codes are passed through as they are)."""

    SIP_SERVER_CONNECTION_LOST = 1800


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


# Attributes of call events beyond ConnID/CallState/OtherDN/CallType/CallNode (T-Lib names).
PARENT_CONN_ID = "TransferConnID"  # the held call a consultation was made from
PREVIOUS_CONN_ID = "PreviousConnID"  # the ConnID a call had before a transfer/conference joined it
USER_DATA = "UserData"
PARTIES = "Parties"  # [{"DN": ..., "Role": ...}]: every other party of a conference


def _parties(value: Any) -> tuple[Party, ...] | None:
    if not isinstance(value, list):
        return None
    parties: list[Party] = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("DN"), str):
            try:
                role = DnRole(item.get("Role", DnRole.NEW_PARTY))
            except ValueError:
                role = DnRole.NEW_PARTY
            parties.append(Party(item["DN"], role))
    return tuple(parties)


def _call_from_wire(
    item: Mapping[str, Any], default_state: WorkspaceCallState, known: Mapping[str, CallView]
) -> CallView | None:
    """The call of a T-Lib event or call list item; what the item leaves out of a call already
    ``known`` (by its ConnID, or by the ConnID it had before) is kept: role, parent, parties and
    user data."""
    conn_id = item.get("ConnID")
    if not isinstance(conn_id, str) or not conn_id:
        return None
    try:
        state = WorkspaceCallState(item.get("CallState", default_state))
    except ValueError:
        state = default_state
    call_type = str(item.get("CallType", "Internal"))
    previous_id = item.get(PREVIOUS_CONN_ID)
    renamed = isinstance(previous_id, str) and previous_id != conn_id and previous_id in known
    previous = known.get(previous_id) if renamed else known.get(conn_id)  # type: ignore[arg-type]
    parent = item.get(PARENT_CONN_ID)
    parties = _parties(item.get(PARTIES))
    user_data = user_data_from_tlib(item[USER_DATA]) if USER_DATA in item else None
    return CallView(
        conn_id=conn_id,
        state=state,
        other_dn=str(item.get("OtherDN", previous.other_dn if previous else "")),
        call_type=call_type,
        call_node=str(item.get("CallNode", previous.call_node if previous else "")),
        role=previous.role if previous else _first_seen_role(call_type, state),
        parent_conn_id=(
            parent if isinstance(parent, str) else (previous.parent_conn_id if previous else "")
        ),
        previous_conn_id=previous_id if renamed else "",  # type: ignore[arg-type]
        parties=parties if parties is not None else (previous.parties if previous else ()),
        user_data=user_data if user_data is not None else (previous.user_data if previous else ()),
    )


def _keep(dn: DnView, call: CallView) -> None:
    """Put ``call`` in the view (under a new ConnID it replaces the old one); forget the oldest
    Released calls past ``MAX_RELEASED_CALLS``."""
    if call.previous_conn_id:
        dn.calls.pop(call.previous_conn_id, None)
    dn.calls[call.conn_id] = replace(call, previous_conn_id="")
    released = [c.conn_id for c in dn.calls.values() if c.state is WorkspaceCallState.RELEASED]
    for conn_id in released[: max(0, len(released) - MAX_RELEASED_CALLS)]:
        del dn.calls[conn_id]


def _on_address_info(dn: DnView, event: Event) -> list[Message]:
    """EventRegistered / EventAddressInfo: a full snapshot of the DN as its owner knows it."""
    dn.registered = dn.registered or event.name is EventName.EVENT_REGISTERED
    wire_state = _text(event, "AgentState", "LoggedOut")
    dn.agent_state = _AGENT_STATES.get(wire_state, WorkspaceAgentState.LOGGED_OUT)
    dn.agent_id = _text(event, "AgentID", dn.agent_id if dn.logged_in else "")
    dn.agent_work_mode = _text(event, "AgentWorkMode", "Unknown")
    if wire_state == "AfterCallWork":
        dn.agent_work_mode = "AfterCallWork"
    if not dn.logged_in or dn.agent_state is not WorkspaceAgentState.NOT_READY:
        dn.reason_code = ""
    dn.in_service = _text(event, "DNStatus", "InService") != "OutOfService"
    if "DND" in event.attributes:
        dn.dnd = event.get("DND") in (True, "on", "On")
    if "ForwardTo" in event.attributes:
        dn.forward_to = _text(event, "ForwardTo")
    reported: dict[str, CallView] = {}
    wire_calls = event.get("Calls", [])
    for item in wire_calls if isinstance(wire_calls, list) else []:
        call = (
            _call_from_wire(item, WorkspaceCallState.ESTABLISHED, dn.calls)
            if isinstance(item, dict)
            else None
        )
        if call is not None:
            reported[call.conn_id] = replace(call, previous_conn_id="")
    messages: list[Message] = []
    if dn.service_lost:
        dn.service_lost = False
        messages.append(service_state_changed(True))
    # A live call the owner no longer has ended while GWS did not hear of it; a Released one
    # still waits to be marked done.
    for conn_id, call in list(dn.calls.items()):
        if conn_id not in reported and call.state is not WorkspaceCallState.RELEASED:
            dn.calls[conn_id] = _released(call)
            messages.append(call_state_changed(dn, dn.calls[conn_id], STATE_CHANGE))
    dn.calls = {
        **{k: c for k, c in dn.calls.items() if c.state is WorkspaceCallState.RELEASED},
        **reported,
    }
    return messages + snapshot(dn)


def _released(call: CallView) -> CallView:
    return replace(call, state=WorkspaceCallState.RELEASED, previous_conn_id="")


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
    dn.reason_code = ""
    dn.agent_work_mode = _text(event, "AgentWorkMode", "ManualIn")
    return [dn_state_changed(dn)]


def _on_agent_not_ready(dn: DnView, event: Event) -> list[Message]:
    dn.agent_state = WorkspaceAgentState.NOT_READY
    dn.agent_work_mode = _text(event, "AgentWorkMode", "Unknown")
    # The reason is the event's when it says one (ReasonCode, or inside Reasons); else the one
    # GWS asked for stays (a SIP node that does not echo it).
    reasons = event.get("Reasons")
    code = event.get("ReasonCode")
    if code is None and isinstance(reasons, Mapping):
        code = reasons.get("ReasonCode")
    if isinstance(code, str | int) and not isinstance(code, bool):
        dn.reason_code = str(code)
    return [dn_state_changed(dn)]


def _call_event(default_state: WorkspaceCallState) -> Callable[[DnView, Event], list[Message]]:
    def handle(dn: DnView, event: Event) -> list[Message]:
        attributes = {"CallState": default_state, **event.attributes}
        call = _call_from_wire(attributes, default_state, dn.calls)
        if call is None:
            return []
        restored = bool(event.get("Restored"))
        notification = NotificationType.CALL_RECOVERED if restored else STATE_CHANGE
        message = call_state_changed(dn, call, notification)
        _keep(dn, call)
        return [message]

    return handle


def _on_attached_data(dn: DnView, event: Event) -> list[Message]:
    """EventAttachedDataChanged: the call's whole user data, as its call node holds it now."""
    conn_id = event.get("ConnID")
    known = dn.calls.get(conn_id) if isinstance(conn_id, str) else None
    default = known.state if known else WorkspaceCallState.ESTABLISHED
    call = _call_from_wire(event.attributes, default, dn.calls)
    if call is None:
        return []
    _keep(dn, call)
    return [call_state_changed(dn, call, NotificationType.ATTACHED_DATA_CHANGED)]


def _on_dtmf_sent(dn: DnView, event: Event) -> list[Message]:
    """EventDtmfSent: the call as it is, StateChange (as Genesys' agent-api-simulator answers
    send-dtmf); the desktop ties it to its request by ``operationId``."""
    conn_id = event.get("ConnID")
    known = dn.calls.get(conn_id) if isinstance(conn_id, str) else None
    if known is None:
        return []
    return [call_state_changed(dn, known, STATE_CHANGE)]


def _on_user_event(dn: DnView, event: Event) -> list[Message]:
    """EventUserEvent: ``messageType`` EventUserEvent with the pairs as ``userData``, the shape
    genesys-workspace-client-js forwards as its ``EventUserEvent``."""
    message: Message = {
        "messageType": "EventUserEvent",
        "userData": kvlist(user_data_from_tlib(event.get(USER_DATA, {}))),
        "thisDn": dn.number,
    }
    call_uuid = event.get("CallUuid")
    if isinstance(call_uuid, str):
        message["callUuid"] = call_uuid
    return [message]


def _on_dnd(dn: DnView, event: Event) -> list[Message]:
    dn.dnd = event.name is EventName.EVENT_DND_ON
    return [dn_state_changed(dn)]


def _on_forward(dn: DnView, event: Event) -> list[Message]:
    set_ = event.name is EventName.EVENT_FORWARD_SET
    dn.forward_to = _text(event, "OtherDN") if set_ else ""
    return [dn_state_changed(dn)]


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
    EventName.EVENT_ATTACHED_DATA_CHANGED: Row(_on_attached_data),
    EventName.EVENT_DTMF_SENT: Row(_on_dtmf_sent),
    EventName.EVENT_USER_EVENT: Row(_on_user_event),
    EventName.EVENT_DND_ON: Row(_on_dnd),
    EventName.EVENT_DND_OFF: Row(_on_dnd),
    EventName.EVENT_FORWARD_SET: Row(_on_forward),
    EventName.EVENT_FORWARD_CANCEL: Row(_on_forward),
    EventName.EVENT_ERROR: Row(_on_error),
}


def apply_event(dn: DnView, event: Event) -> tuple[list[Message], bool]:
    """Apply ``event`` to ``dn``; return the voice messages and whether to query the address."""
    row = EVENT_TABLE.get(event.name)
    if row is None:
        return [], False
    return row.handle(dn, event), row.query_after


def link_lost(dn: DnView, sip_name: str, reason: str) -> list[Message]:
    """GWS lost its T-Lib link: the voice channel is out of service for every session, and the
    voice service unavailable (``ServiceStateChanged``) until the DN is registered again.

    The SIP node logs the agent out when GWS's connection goes away (logout-on-disconnect), so
    the agent GWS knew is gone: no agent id or work mode is reported until ``EventRegistered``
    on the restored link tells the truth.
    """
    dn.link_up = False
    dn.service_lost = True
    dn.agent_state = WorkspaceAgentState.LOGGED_OUT
    dn.agent_id = ""
    dn.agent_work_mode = "Unknown"
    text = (
        f"Connection to SIP Server {sip_name} is lost ({reason}); voice channel is out of service"
    )
    return [
        dn_state_changed(dn, reason="SIPServerConnectionLost", message=text),
        event_error(GwsErrorCode.SIP_SERVER_CONNECTION_LOST, text, thisDn=dn.number),
        service_state_changed(False, message=text),
    ]


def link_restored(dn: DnView) -> None:
    """The link is back: the DN is re-registered and its ``EventRegistered`` tells the truth.

    Nothing is published until then; a state reported now would be stale, since the SIP node has
    logged the agent out on the disconnect (logout-on-disconnect).
    """
    dn.link_up = True
    dn.registered = False
