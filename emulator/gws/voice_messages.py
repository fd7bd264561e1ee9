"""The Workspace API v3 messages GWS publishes on ``/workspace/v3/voice``, built from a DN view.

Shapes are those the public clients parse, field by field: ``genesys-workspace-client-js``
(``VoiceApi._onCometdMessage``: ``messageType``, ``call.id``, ``call.previousConnId``,
``call.state``, ``notificationType``) and the Java ``workspace-client-java``
(``VoiceApi.onDnStateChanged``: ``dn.dnd`` "on"/"off" and ``dn.forwardTo``;
``onCallStateChanged``: ``parentConnId``, ``ani``, ``dnis``, ``capabilities``, ``participants``
and ``userData`` as ``[{key, type, value}]`` with types ``str``, ``int`` and ``kvlist``;
``Util.parseNotificationType``: StateChange, ParticipantsUpdated, AttachedDataChanged,
CallRecovered). ``ServiceStateChanged`` carries the ``Service`` model of the generated client
(``serviceName`` VOICE, ``serviceState`` AVAILABLE or UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from emulator.gws.capabilities import call_capabilities, dn_capabilities
from emulator.gws.dnview import CallView, DnRole, DnView, UserData, WorkspaceAgentState
from emulator.gws.errors import BadRequest

VOICE_CHANNEL = "/workspace/v3/voice"

Message = dict[str, Any]


class NotificationType(StrEnum):
    """``notificationType`` of CallStateChanged (the Java client knows exactly these)."""

    STATE_CHANGE = "StateChange"
    PARTICIPANTS_UPDATED = "ParticipantsUpdated"
    ATTACHED_DATA_CHANGED = "AttachedDataChanged"
    CALL_RECOVERED = "CallRecovered"


class UserDataError(BadRequest, ValueError):
    """A ``userData`` list a desktop sent is not ``[{key, type, value}]``; says where."""


# --- user data: [{key, type, value}] <-> the view's pairs ---------------------------------------


def kvlist(pairs: UserData) -> list[dict[str, Any]]:
    """The view's pairs as the Workspace API's key-value list."""
    out: list[dict[str, Any]] = []
    for key, value in pairs:
        if isinstance(value, tuple):
            out.append({"key": key, "type": "kvlist", "value": kvlist(value)})
        elif isinstance(value, int) and not isinstance(value, bool):
            out.append({"key": key, "type": "int", "value": value})
        else:
            out.append({"key": key, "type": "str", "value": str(value)})
    return out


def parse_kvlist(value: Any, where: str) -> UserData:
    """A desktop's ``[{key, type, value}]`` as pairs; ``UserDataError`` names the bad item."""
    if not isinstance(value, list):
        raise UserDataError(f"{where} must be a list of {{key, type, value}} objects")
    pairs: list[tuple[str, Any]] = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise UserDataError(f"{at} must be an object with key, type and value")
        key, kind, data = item.get("key"), item.get("type", "str"), item.get("value")
        if not isinstance(key, str) or not key:
            raise UserDataError(f"{at}.key must be a non-empty string")
        integer = isinstance(data, int) and not isinstance(data, bool)
        if (kind == "str" and isinstance(data, str)) or (kind == "int" and integer):
            pairs.append((key, data))
        elif kind == "kvlist":
            pairs.append((key, parse_kvlist(data, f"{at}.value")))
        elif kind in ("str", "int"):
            raise UserDataError(f"{at}.value must be of type {kind}, got {type(data).__name__}")
        else:
            raise UserDataError(f"{at}.type must be 'str', 'int' or 'kvlist', got {kind!r}")
    return tuple(pairs)


def user_data_from_tlib(value: Any) -> UserData:
    """T-Lib's ``UserData`` (a JSON object; a nested object is a nested list) as pairs.

    Values the Workspace API cannot carry are shown as text rather than dropped.
    """
    if isinstance(value, Mapping):
        items: Sequence[Any] = list(value.items())
    elif isinstance(value, list):
        items = [(item.get("key"), item.get("value")) for item in value if isinstance(item, dict)]
    else:
        return ()
    pairs: list[tuple[str, Any]] = []
    for key, data in items:
        if not isinstance(key, str):
            continue
        if isinstance(data, Mapping | list):
            pairs.append((key, user_data_from_tlib(data)))
        elif isinstance(data, int) and not isinstance(data, bool):
            pairs.append((key, data))
        else:
            pairs.append((key, "" if data is None else str(data)))
    return tuple(pairs)


def user_data_to_tlib(pairs: UserData) -> dict[str, Any]:
    """The pairs as T-Lib's ``UserData`` object (a later duplicate key wins)."""
    return {
        key: user_data_to_tlib(value) if isinstance(value, tuple) else value for key, value in pairs
    }


# --- messages -----------------------------------------------------------------------------------


def dn_payload(dn: DnView) -> Message:
    state = dn.reported_state
    payload: Message = {
        "number": dn.number,
        "agentId": dn.agent_id,
        "agentState": str(state),
        "agentWorkMode": dn.agent_work_mode,
        "capabilities": dn_capabilities(dn),
        "dnStatus": dn.dn_status,
        "dnd": "on" if dn.dnd else "off",
    }
    if dn.forward_to:
        payload["forwardTo"] = dn.forward_to
    if state is WorkspaceAgentState.NOT_READY and dn.reason_code:
        payload["reasons"] = [{"key": "ReasonCode", "type": "str", "value": dn.reason_code}]
    return payload


def dn_state_changed(dn: DnView, **extra: Any) -> Message:
    message: Message = {
        "messageType": "DnStateChanged",
        "notificationType": NotificationType.STATE_CHANGE.value,
        "dn": dn_payload(dn),
    }
    message.update({key: value for key, value in extra.items() if value is not None})
    return message


def _participants(call: CallView) -> list[dict[str, str]]:
    if call.parties:
        return [{"number": party.number, "role": str(party.role)} for party in call.parties]
    called = call.role is DnRole.DESTINATION
    other_role = DnRole.ORIGINATION if called else DnRole.DESTINATION
    return [{"number": call.other_dn, "role": str(other_role)}]


def call_payload(dn: DnView, call: CallView) -> Message:
    called = call.role is DnRole.DESTINATION
    ani, dnis = (call.other_dn, dn.number) if called else (dn.number, call.other_dn)
    payload: Message = {
        "type": "Call",
        "id": call.conn_id,
        "connId": call.conn_id,
        "callUuid": call.conn_id,
        "callType": call.call_type,
        "state": str(call.state),
        "capabilities": call_capabilities(dn, call),
        "participants": _participants(call),
        "phoneNumber": call.other_dn,
        "ani": ani,
        "dnis": dnis,
        "dn": dn.number,
        "userData": kvlist(call.user_data),
        "extensions": [{"key": "CallNode", "type": "str", "value": call.call_node}],
    }
    if call.parent_conn_id:
        payload["parentConnId"] = call.parent_conn_id
    if call.previous_conn_id:
        payload["previousConnId"] = call.previous_conn_id
    return payload


def call_state_changed(dn: DnView, call: CallView, notification: NotificationType) -> Message:
    return {
        "messageType": "CallStateChanged",
        "notificationType": notification.value,
        "call": call_payload(dn, call),
    }


def event_error(code: int, text: str, **extra: Any) -> Message:
    message: Message = {
        "messageType": "EventError",
        "error": {"errorCode": code, "errorMessage": text},
    }
    message.update({key: value for key, value in extra.items() if value is not None})
    return message


def service_state_changed(available: bool, **extra: Any) -> Message:
    message: Message = {
        "messageType": "ServiceStateChanged",
        "service": service(available),
    }
    message.update({key: value for key, value in extra.items() if value is not None})
    return message


def service(available: bool) -> dict[str, str]:
    """The voice ``Service`` of ``activeSession.services`` and of ServiceStateChanged."""
    return {"serviceName": "VOICE", "serviceState": "AVAILABLE" if available else "UNAVAILABLE"}


def snapshot(
    dn: DnView, notification: NotificationType = NotificationType.CALL_RECOVERED
) -> list[Message]:
    """Everything a desktop that just subscribed needs: the DN, then each call."""
    return [dn_state_changed(dn)] + [
        call_state_changed(dn, call, notification) for call in dn.calls.values()
    ]
