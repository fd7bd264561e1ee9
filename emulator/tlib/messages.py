"""T-Lib messages as frozen dataclasses, and their JSON-object codec.

Requests are typed one class per message; events share one class because their attributes vary
with the call and agent situation (as in the Genesys SDK, where an event is a bag of attributes).
Attribute names on the wire follow the Genesys T-Library: ``ThisDN``, ``AgentID``, ``ConnID``,
``ReferenceID``, ``AgentWorkMode``, ``ErrorCode``, ``ErrorMessage``...
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from emulator.tlib.enums import AddressType, AgentWorkMode, RegisterMode
from emulator.tlib.errors import ErrorCode, ProtocolError


class EventName(StrEnum):
    EVENT_REGISTERED = "EventRegistered"
    EVENT_UNREGISTERED = "EventUnregistered"
    EVENT_AGENT_LOGIN = "EventAgentLogin"
    EVENT_AGENT_LOGOUT = "EventAgentLogout"
    EVENT_AGENT_READY = "EventAgentReady"
    EVENT_AGENT_NOT_READY = "EventAgentNotReady"
    EVENT_RINGING = "EventRinging"
    EVENT_DIALING = "EventDialing"
    EVENT_ESTABLISHED = "EventEstablished"
    EVENT_RELEASED = "EventReleased"
    EVENT_HELD = "EventHeld"
    EVENT_RETRIEVED = "EventRetrieved"
    EVENT_DN_OUT_OF_SERVICE = "EventDNOutOfService"
    EVENT_DN_BACK_IN_SERVICE = "EventDNBackInService"
    EVENT_ADDRESS_INFO = "EventAddressInfo"
    EVENT_DND_ON = "EventDNDOn"
    EVENT_DND_OFF = "EventDNDOff"
    EVENT_FORWARD_SET = "EventForwardSet"
    EVENT_FORWARD_CANCEL = "EventForwardCancel"
    EVENT_ATTACHED_DATA_CHANGED = "EventAttachedDataChanged"
    EVENT_DTMF_SENT = "EventDtmfSent"
    EVENT_USER_EVENT = "EventUserEvent"
    EVENT_ERROR = "EventError"


# The sixteen DTMF events (RFC 4733 §3.2), up to 32 in one request; the rule as both the node
# and GWS state it when they refuse digits.
DTMF_DIGITS = re.compile(r"[0-9*#A-D]{1,32}")
DTMF_DIGITS_RULE = "1 to 32 DTMF digits (0-9, *, #, A-D)"

# Python field name -> Genesys attribute name.
WIRE_NAMES: Mapping[str, str] = {
    "reference_id": "ReferenceID",
    "this_dn": "ThisDN",
    "other_dn": "OtherDN",
    "agent_id": "AgentID",
    "conn_id": "ConnID",
    "agent_work_mode": "AgentWorkMode",
    "register_mode": "RegisterMode",
    "address_type": "AddressType",
    "password": "Password",
    "user_data": "UserData",
    "key": "Key",
    "dtmf_digits": "DTMFDigits",
    "call_uuid": "CallUuid",
}


@dataclass(frozen=True)
class Request:
    """Base of every request; ``reference_id`` is echoed by the event that answers it."""

    NAME: ClassVar[str] = ""
    reference_id: int
    this_dn: str


@dataclass(frozen=True)
class RequestRegisterAddress(Request):
    NAME: ClassVar[str] = "RequestRegisterAddress"
    register_mode: RegisterMode = RegisterMode.MODE_SHARE
    address_type: AddressType = AddressType.DN


@dataclass(frozen=True)
class RequestUnregisterAddress(Request):
    NAME: ClassVar[str] = "RequestUnregisterAddress"


@dataclass(frozen=True)
class RequestAgentLogin(Request):
    NAME: ClassVar[str] = "RequestAgentLogin"
    agent_id: str = ""
    agent_work_mode: AgentWorkMode = AgentWorkMode.MANUAL_IN
    password: str | None = None


@dataclass(frozen=True)
class RequestAgentLogout(Request):
    NAME: ClassVar[str] = "RequestAgentLogout"
    agent_id: str | None = None


@dataclass(frozen=True)
class RequestAgentReady(Request):
    NAME: ClassVar[str] = "RequestAgentReady"
    agent_work_mode: AgentWorkMode = AgentWorkMode.MANUAL_IN


@dataclass(frozen=True)
class RequestAgentNotReady(Request):
    NAME: ClassVar[str] = "RequestAgentNotReady"
    agent_work_mode: AgentWorkMode = AgentWorkMode.UNKNOWN


@dataclass(frozen=True)
class RequestQueryAddress(Request):
    NAME: ClassVar[str] = "RequestQueryAddress"


@dataclass(frozen=True)
class CallRequest(Request):
    """A request on one call of the DN."""

    conn_id: str = ""


@dataclass(frozen=True)
class RequestAnswerCall(CallRequest):
    NAME: ClassVar[str] = "RequestAnswerCall"


@dataclass(frozen=True)
class RequestReleaseCall(CallRequest):
    NAME: ClassVar[str] = "RequestReleaseCall"


@dataclass(frozen=True)
class RequestHoldCall(CallRequest):
    NAME: ClassVar[str] = "RequestHoldCall"


@dataclass(frozen=True)
class RequestRetrieveCall(CallRequest):
    NAME: ClassVar[str] = "RequestRetrieveCall"


@dataclass(frozen=True)
class RequestAttachUserData(CallRequest):
    """Attach key-value pairs to the call (``UserData``: a JSON object of str, int or object)."""

    NAME: ClassVar[str] = "RequestAttachUserData"
    user_data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestUpdateUserData(CallRequest):
    NAME: ClassVar[str] = "RequestUpdateUserData"
    user_data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestDeletePair(CallRequest):
    """Delete one key of the call's user data."""

    NAME: ClassVar[str] = "RequestDeletePair"
    key: str = ""


@dataclass(frozen=True)
class RequestDeleteUserData(CallRequest):
    """Delete all of the call's user data."""

    NAME: ClassVar[str] = "RequestDeleteUserData"


@dataclass(frozen=True)
class RequestClearCall(CallRequest):
    """End the call for every party (TClearCall)."""

    NAME: ClassVar[str] = "RequestClearCall"


@dataclass(frozen=True)
class RequestSendDTMF(CallRequest):
    """Send DTMF digits on the call, toward the other party (TSendDTMF)."""

    NAME: ClassVar[str] = "RequestSendDTMF"
    dtmf_digits: str = ""


# Requests on a call's user data, answered by its call node with EventAttachedDataChanged.
USER_DATA_REQUESTS = (
    RequestAttachUserData,
    RequestUpdateUserData,
    RequestDeletePair,
    RequestDeleteUserData,
)


@dataclass(frozen=True)
class RequestMakeCall(Request):
    """Call ``other_dn`` from ThisDN; ``user_data`` is attached to the new call from the start."""

    NAME: ClassVar[str] = "RequestMakeCall"
    other_dn: str = ""
    user_data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestSetDNDOn(Request):
    NAME: ClassVar[str] = "RequestSetDNDOn"


@dataclass(frozen=True)
class RequestSetDNDOff(Request):
    NAME: ClassVar[str] = "RequestSetDNDOff"


@dataclass(frozen=True)
class RequestSetCallForward(Request):
    """Forward the DN's calls to ``other_dn`` (Genesys' ForwardModeUnconditional)."""

    NAME: ClassVar[str] = "RequestSetCallForward"
    other_dn: str = ""


@dataclass(frozen=True)
class RequestCancelCallForward(Request):
    NAME: ClassVar[str] = "RequestCancelCallForward"


@dataclass(frozen=True)
class RequestSendEvent(Request):
    """TSendUserEvent: ``user_data`` told as EventUserEvent to every desktop of ThisDN;
    ``call_uuid`` names the call it is about, if any."""

    NAME: ClassVar[str] = "RequestSendEvent"
    user_data: Mapping[str, Any] = field(default_factory=dict)
    call_uuid: str | None = None


# Requests on the DN's settings, answered by its owner alone (no call, no agent needed).
DN_SETTING_REQUESTS = (
    RequestSetDNDOn,
    RequestSetDNDOff,
    RequestSetCallForward,
    RequestCancelCallForward,
)


REQUEST_TYPES: Mapping[str, type[Request]] = {
    cls.NAME: cls
    for cls in (
        RequestRegisterAddress,
        RequestUnregisterAddress,
        RequestAgentLogin,
        RequestAgentLogout,
        RequestAgentReady,
        RequestAgentNotReady,
        RequestQueryAddress,
        RequestAnswerCall,
        RequestReleaseCall,
        RequestHoldCall,
        RequestRetrieveCall,
        RequestClearCall,
        RequestSendDTMF,
        RequestMakeCall,
        RequestSendEvent,
        *DN_SETTING_REQUESTS,
        *USER_DATA_REQUESTS,
    )
}

# Attributes a request cannot do without, beyond ReferenceID and ThisDN.
_REQUIRED_EXTRA: Mapping[str, tuple[str, ...]] = {
    "RequestAgentLogin": ("agent_id",),
    "RequestAnswerCall": ("conn_id",),
    "RequestReleaseCall": ("conn_id",),
    "RequestHoldCall": ("conn_id",),
    "RequestRetrieveCall": ("conn_id",),
    "RequestClearCall": ("conn_id",),
    "RequestSendDTMF": ("conn_id", "dtmf_digits"),
    "RequestSendEvent": ("user_data",),
    "RequestMakeCall": ("other_dn",),
    "RequestSetCallForward": ("other_dn",),
    "RequestAttachUserData": ("conn_id", "user_data"),
    "RequestUpdateUserData": ("conn_id", "user_data"),
    "RequestDeletePair": ("conn_id", "key"),
    "RequestDeleteUserData": ("conn_id",),
}


@dataclass(frozen=True)
class Heartbeat:
    """ADDP-style keep-alive; carries nothing and is never answered."""

    NAME: ClassVar[str] = "Heartbeat"


@dataclass(frozen=True)
class Event:
    """A T-Lib event: a name, the DN it is about, and its other attributes by wire name."""

    name: EventName
    this_dn: str | None = None
    reference_id: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def get(self, wire_name: str, default: Any = None) -> Any:
        return self.attributes.get(wire_name, default)

    def with_reference(self, reference_id: int | None) -> Event:
        if reference_id == self.reference_id:
            return self
        # Not ``dataclasses.replace``: it re-validates every field, on every event delivered.
        return Event(self.name, self.this_dn, reference_id, self.attributes)


Message = Request | Event | Heartbeat


def error_event(
    code: ErrorCode,
    message: str,
    *,
    this_dn: str | None = None,
    reference_id: int | None = None,
) -> Event:
    return Event(
        EventName.EVENT_ERROR,
        this_dn=this_dn,
        reference_id=reference_id,
        attributes={"ErrorCode": int(code), "ErrorMessage": message},
    )


_EVENT_NAMES: Mapping[str, EventName] = {str(name): name for name in EventName}


def event_name(wire_name: object) -> EventName | None:
    """The event a wire ``message`` name stands for; None if it is not an event's."""
    return _EVENT_NAMES.get(wire_name) if isinstance(wire_name, str) else None


_ENUM_TYPES: Mapping[str, type[StrEnum]] = {
    "agent_work_mode": AgentWorkMode,
    "register_mode": RegisterMode,
    "address_type": AddressType,
}


@dataclass(frozen=True)
class _Attribute:
    """How one field of a request class goes on and comes off the wire (computed once)."""

    name: str
    wire: str
    required: bool
    enum_type: type[StrEnum] | None


def _attributes(cls: type[Request]) -> tuple[_Attribute, ...]:
    required = ("this_dn", *_REQUIRED_EXTRA.get(cls.NAME, ()))
    return tuple(
        _Attribute(
            spec.name, WIRE_NAMES[spec.name], spec.name in required, _ENUM_TYPES.get(spec.name)
        )
        for spec in dataclasses.fields(cls)
    )


_REQUEST_ATTRIBUTES: Mapping[type[Request], tuple[_Attribute, ...]] = {
    cls: _attributes(cls) for cls in REQUEST_TYPES.values()
}


def encode(message: Message) -> dict[str, Any]:
    """Turn a message into the JSON object sent on the wire."""
    if isinstance(message, Event):
        obj: dict[str, Any] = {"message": str(message.name)}
        if message.this_dn is not None:
            obj["ThisDN"] = message.this_dn
        if message.reference_id is not None:
            obj["ReferenceID"] = message.reference_id
        obj.update(message.attributes)
        return obj
    if isinstance(message, Heartbeat):
        return {"message": Heartbeat.NAME}
    obj = {"message": message.NAME}
    for attribute in _REQUEST_ATTRIBUTES[type(message)]:
        value = getattr(message, attribute.name)
        if value is not None:
            obj[attribute.wire] = str(value) if attribute.enum_type is not None else value
    return obj


def decode(obj: Any) -> Message:
    """Validate a decoded JSON value and build its message, or raise a ``ProtocolError``."""
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "frame is not a JSON object")
    name = obj.get("message")
    if not isinstance(name, str):
        raise ProtocolError(
            ErrorCode.INVALID_ATTRIBUTE,
            "attribute 'message' missing or not a string",
            reference_id=_reference(obj.get("ReferenceID")),
        )
    request_type = REQUEST_TYPES.get(name)
    if request_type is not None:
        return _decode_request(request_type, obj)
    event_name = _EVENT_NAMES.get(name)
    if event_name is not None:
        return _decode_event(event_name, obj)
    if name == Heartbeat.NAME:
        return Heartbeat()
    raise ProtocolError(
        ErrorCode.UNKNOWN_REQUEST,
        f"unknown message '{name}'",
        reference_id=_reference(obj.get("ReferenceID")),
    )


def _reference(value: Any) -> int | None:
    """A ReferenceID is an integer; JSON true/false are not (bool is an int in Python)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _decode_event(name: EventName, obj: dict[str, Any]) -> Event:
    attributes = dict(obj)
    this_dn = attributes.pop("ThisDN", None)
    reference_id = attributes.pop("ReferenceID", None)
    del attributes["message"]
    return Event(
        name,
        this_dn=this_dn if isinstance(this_dn, str) else None,
        reference_id=_reference(reference_id),
        attributes=attributes,
    )


def _decode_request(cls: type[Request], obj: dict[str, Any]) -> Request:
    reference_id = obj.get("ReferenceID")
    if isinstance(reference_id, bool) or not isinstance(reference_id, int):
        raise ProtocolError(
            ErrorCode.INVALID_ATTRIBUTE,
            f"{cls.NAME}: attribute 'ReferenceID' missing or not an integer",
        )
    values: dict[str, Any] = {"reference_id": reference_id}
    for attribute in _REQUEST_ATTRIBUTES[cls]:
        if attribute.name == "reference_id":
            continue
        wire = attribute.wire
        if wire not in obj:
            if attribute.required:
                this_dn = obj.get("ThisDN")
                raise ProtocolError(
                    ErrorCode.INVALID_ATTRIBUTE,
                    f"{cls.NAME}: mandatory attribute '{wire}' is missing",
                    reference_id=reference_id,
                    this_dn=this_dn if isinstance(this_dn, str) else None,
                )
            continue
        values[attribute.name] = _convert(cls.NAME, attribute, obj[wire], reference_id)
    return cls(**values)


def _convert(request: str, attribute: _Attribute, value: Any, reference_id: int) -> Any:
    if attribute.name == "user_data":
        problem = user_data_problem(value)
        if problem:
            raise ProtocolError(
                ErrorCode.INVALID_ATTRIBUTE,
                f"{request}: attribute 'UserData' {problem}",
                reference_id=reference_id,
            )
        return value
    enum_type = attribute.enum_type
    if enum_type is not None:
        try:
            return enum_type(value)
        except ValueError:
            allowed = ", ".join(member.value for member in enum_type)
            raise ProtocolError(
                ErrorCode.INVALID_ATTRIBUTE,
                f"{request}: attribute '{attribute.wire}' has invalid value {value!r} "
                f"(one of: {allowed})",
                reference_id=reference_id,
            ) from None
    if not isinstance(value, str) or (attribute.name != "password" and not value):
        raise ProtocolError(
            ErrorCode.INVALID_ATTRIBUTE,
            f"{request}: attribute '{attribute.wire}' must be a non-empty string, got {value!r}",
            reference_id=reference_id,
        )
    if attribute.name == "dtmf_digits" and not DTMF_DIGITS.fullmatch(value):
        raise ProtocolError(
            ErrorCode.INVALID_ATTRIBUTE,
            f"{request}: attribute 'DTMFDigits' must be {DTMF_DIGITS_RULE}, got {value!r}",
            reference_id=reference_id,
        )
    return value


def user_data_problem(value: Any, where: str = "") -> str | None:
    """What makes ``value`` no T-Lib ``UserData`` (a JSON object whose keys are non-empty
    strings and whose values are strings, integers or such objects), or None."""
    if not isinstance(value, Mapping):
        return f"{where or 'it'} must be an object of key-value pairs, got {type(value).__name__}"
    for key, item in value.items():
        at = f"{where}.{key}" if where else str(key)
        if not isinstance(key, str) or not key:
            return f"has a key that is not a non-empty string: {key!r}"
        if isinstance(item, Mapping):
            nested = user_data_problem(item, at)
            if nested:
                return nested
        elif isinstance(item, bool) or not isinstance(item, str | int):
            return f"value of {at!r} must be a string, an integer or an object, got {item!r}"
    return None
