"""Workspace API v3 notifications as the WWE client reads them (sans-I/O, the JSON edge).

Turns the ``data`` of CometD messages on ``/workspace/v3/initialization`` and
``/workspace/v3/voice`` (shapes of the public ``genesys-workspace-client-js``:
``WorkspaceInitializationComplete``, ``DnStateChanged``, ``CallStateChanged``, ``EventError``,
``ServiceStateChanged``)
into frozen dataclasses. Anything else is :class:`Ignored`; a known message with unreadable
fields raises :class:`BadServerMessage` naming the field. Dicts stop here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from clients.wwe.errors import BadServerMessage, VoiceError
from emulator.gws.voice_messages import UserDataError, parse_kvlist

INITIALIZATION_CHANNEL = "/workspace/v3/initialization"
VOICE_CHANNEL = "/workspace/v3/voice"


class AgentState(StrEnum):
    """``dn.agentState`` of the Workspace API."""

    LOGGED_OUT = "LoggedOut"
    LOGGED_IN = "LoggedIn"
    READY = "Ready"
    NOT_READY = "NotReady"
    OUT_OF_SERVICE = "OutOfService"


class CallState(StrEnum):
    """``call.state`` of the Workspace API."""

    DIALING = "Dialing"
    RINGING = "Ringing"
    ESTABLISHED = "Established"
    HELD = "Held"
    RELEASED = "Released"
    COMPLETED = "Completed"  # marked done after its release: GWS forgets it

    @property
    def ended(self) -> bool:
        """Released or Completed: the call is no longer on the phone."""
        return self in (CallState.RELEASED, CallState.COMPLETED)


LOGGED_IN_STATES = frozenset({AgentState.LOGGED_IN, AgentState.READY, AgentState.NOT_READY})


@dataclass(frozen=True)
class VoiceState:
    """The agent's voice channel as the desktop shows it."""

    dn: str = ""
    agent_id: str = ""
    agent_state: AgentState = AgentState.LOGGED_OUT
    agent_work_mode: str = "Unknown"
    dn_status: str = "InService"
    capabilities: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """False while GWS reports the DN (or its own SIP Server link) out of service."""
        return self.agent_state is not AgentState.OUT_OF_SERVICE and self.dn_status != (
            "OutOfService"
        )

    @property
    def logged_in(self) -> bool:
        return self.agent_state in LOGGED_IN_STATES

    def describe(self) -> str:
        availability = "available" if self.available else "unavailable"
        mode = f" ({self.agent_work_mode})" if self.agent_work_mode not in ("", "Unknown") else ""
        return f"DN {self.dn or '-'} {self.agent_state}{mode}, voice channel {availability}"


@dataclass(frozen=True)
class Call:
    id: str
    state: CallState
    capabilities: tuple[str, ...] = ()
    call_type: str = ""
    phone_number: str = ""
    ani: str = ""
    dnis: str = ""
    dn: str = ""
    call_node: str = ""
    parent_id: str = ""  # the held call this consultation was made from
    participants: tuple[str, ...] = ()
    user_data: tuple[tuple[str, Any], ...] = ()
    # StateChange | ParticipantsUpdated | AttachedDataChanged | CallRecovered
    notification: str = "StateChange"

    def describe(self) -> str:
        direction = "from" if self.ani != self.dn else "to"
        party = f" {direction} {self.phone_number}" if self.phone_number else ""
        can = ", ".join(self.capabilities) or "none"
        return f"call {self.id} {self.state}{party} [{self.notification}] (can: {can})"

    def released(self) -> Call:
        return replace(self, state=CallState.RELEASED, capabilities=(), notification="StateChange")

    def data(self, key: str) -> Any:
        """The value of the call's user data ``key`` (the last one attached), else None."""
        return next((value for name, value in reversed(self.user_data) if name == key), None)


@dataclass(frozen=True)
class UserInfo:
    """``data.user`` and ``data.configuration`` of ``WorkspaceInitializationComplete``."""

    username: str
    agent_login: str
    employee_id: str
    default_place: str
    dn: str
    gws_node: str
    dc: str


@dataclass(frozen=True)
class InitializationComplete:
    user: UserInfo


@dataclass(frozen=True)
class DnStateChanged:
    voice: VoiceState
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class CallStateChanged:
    call: Call


@dataclass(frozen=True)
class EventErrorReported:
    error: VoiceError


@dataclass(frozen=True)
class ServiceStateChanged:
    """The voice service of the session became unavailable (its node lost its SIP Server) or
    available again."""

    available: bool
    message: str | None


@dataclass(frozen=True)
class Ignored:
    """A message this client has no use for (other channels, other message types)."""

    channel: str
    message_type: str | None


Notification = (
    InitializationComplete
    | DnStateChanged
    | CallStateChanged
    | EventErrorReported
    | ServiceStateChanged
)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadServerMessage(f"{where} must be an object, got {type(value).__name__}")
    return value


def _text(payload: Mapping[str, Any], name: str, where: str, default: str | None = None) -> str:
    value = payload.get(name, default)
    if value is None:
        raise BadServerMessage(f"{where}.{name} is missing")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise BadServerMessage(f"{where}.{name} must be a string, got {type(value).__name__}")
    return str(value)


def _strings(payload: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = payload.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadServerMessage(f"{where}.{name} must be a list of strings")
    return tuple(value)


def parse_dn(value: Any) -> VoiceState:
    dn = _object(value, "dn")
    raw_state = _text(dn, "agentState", "dn")
    try:
        state = AgentState(raw_state)
    except ValueError:
        raise BadServerMessage(f"dn.agentState {raw_state!r} is not a Workspace state") from None
    return VoiceState(
        dn=_text(dn, "number", "dn"),
        agent_id=_text(dn, "agentId", "dn", ""),
        agent_state=state,
        agent_work_mode=_text(dn, "agentWorkMode", "dn", "Unknown"),
        dn_status=_text(dn, "dnStatus", "dn", "InService"),
        capabilities=_strings(dn, "capabilities", "dn"),
    )


def parse_call(value: Any, notification: str = "StateChange") -> Call:
    call = _object(value, "call")
    raw_state = _text(call, "state", "call")
    try:
        state = CallState(raw_state)
    except ValueError:
        raise BadServerMessage(f"call.state {raw_state!r} is not a Workspace call state") from None
    extensions = call.get("extensions", [])
    call_node = ""
    if isinstance(extensions, list):
        for item in extensions:
            if isinstance(item, Mapping) and item.get("key") == "CallNode":
                call_node = str(item.get("value", ""))
    try:
        user_data = parse_kvlist(call.get("userData", []), "call.userData")
    except UserDataError as exc:
        raise BadServerMessage(str(exc)) from None
    participants = call.get("participants", [])
    numbers = (
        tuple(str(p["number"]) for p in participants if isinstance(p, Mapping) and "number" in p)
        if isinstance(participants, list)
        else ()
    )
    return Call(
        id=_text(call, "id", "call"),
        state=state,
        capabilities=_strings(call, "capabilities", "call"),
        call_type=_text(call, "callType", "call", ""),
        phone_number=_text(call, "phoneNumber", "call", ""),
        ani=_text(call, "ani", "call", ""),
        dnis=_text(call, "dnis", "call", ""),
        dn=_text(call, "dn", "call", ""),
        call_node=call_node,
        parent_id=_text(call, "parentConnId", "call", ""),
        participants=numbers,
        user_data=user_data,
        notification=notification,
    )


def parse_error(value: Any, data: Mapping[str, Any]) -> VoiceError:
    error = _object(value, "error")
    code = error.get("errorCode")
    if isinstance(code, bool) or not isinstance(code, int):
        raise BadServerMessage("error.errorCode must be an integer")
    dn = data.get("thisDn")
    reference_id = data.get("referenceId")
    return VoiceError(
        code,
        _text(error, "errorMessage", "error", "unspecified error"),
        dn=dn if isinstance(dn, str) else None,
        reference_id=reference_id if isinstance(reference_id, int) else None,
    )


def parse_user(data: Mapping[str, Any]) -> UserInfo:
    body = _object(data.get("data"), "data")
    user = _object(body.get("user"), "data.user")
    configuration = _object(body.get("configuration", {}), "data.configuration")
    place = _text(user, "defaultPlace", "data.user", "")
    return UserInfo(
        username=_text(user, "userName", "data.user", ""),
        agent_login=_text(user, "agentLogin", "data.user", ""),
        employee_id=_text(user, "employeeId", "data.user", ""),
        default_place=place,
        dn=_text(configuration, "defaultDn", "data.configuration", place.removeprefix("Place_")),
        gws_node=_text(configuration, "gwsNode", "data.configuration", ""),
        dc=_text(configuration, "dc", "data.configuration", ""),
    )


def parse_notification(channel: str, data: Any) -> Notification | Ignored:
    """Read one CometD message's ``data``; raise :class:`BadServerMessage` if it is unreadable."""
    payload = _object(data, f"data of {channel}")
    message_type = payload.get("messageType")
    if channel == INITIALIZATION_CHANNEL and message_type == "WorkspaceInitializationComplete":
        if payload.get("state") != "Complete":
            return Ignored(channel, f"{message_type}/{payload.get('state')}")
        return InitializationComplete(parse_user(payload))
    if channel != VOICE_CHANNEL:
        return Ignored(channel, message_type if isinstance(message_type, str) else None)
    if message_type == "DnStateChanged":
        reason, text = payload.get("reason"), payload.get("message")
        return DnStateChanged(
            parse_dn(payload.get("dn")),
            reason if isinstance(reason, str) else None,
            text if isinstance(text, str) else None,
        )
    if message_type == "CallStateChanged":
        notification = payload.get("notificationType")
        return CallStateChanged(
            parse_call(
                payload.get("call"),
                notification if isinstance(notification, str) else "StateChange",
            )
        )
    if message_type == "EventError":
        return EventErrorReported(parse_error(payload.get("error"), payload))
    if message_type == "ServiceStateChanged":
        return parse_service_state(payload)
    return Ignored(channel, message_type if isinstance(message_type, str) else None)


def parse_service_state(payload: Mapping[str, Any]) -> ServiceStateChanged:
    service = _object(payload.get("service"), "ServiceStateChanged.service")
    state = service.get("serviceState")
    if state not in ("AVAILABLE", "UNAVAILABLE"):
        raise BadServerMessage(
            "ServiceStateChanged.service.serviceState must be AVAILABLE or UNAVAILABLE, "
            f"got {state!r}"
        )
    text = payload.get("message")
    return ServiceStateChanged(state == "AVAILABLE", text if isinstance(text, str) else None)
