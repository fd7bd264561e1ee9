"""Every voice operation of the Workspace API v3 (``VoiceApi`` of genesys-workspace-client-js
9.0.1) as a row: its path, its body fields, and the T-Lib request GWS sends for it (sans-I/O).

``POST /workspace/v3/voice/{path}`` acts on the session's DN, ``POST
/workspace/v3/voice/calls/{id}/{path}`` on one of its calls. Bodies are ``{"operationId"?,
"data": {...}}`` as the client builds them (``initiate-transfer`` sends ``{"data":
{"destination", "userData"?}}``); ``read_arguments`` checks each field and answers a missing or
mistyped one with ``BadRequest`` naming it. A row without a T-Lib request is answered by GWS
itself (``complete``) or, if the lab does not model it, with HTTP 501 naming the T-Lib request a
real SIP Server would need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from emulator.gws.errors import BadRequest
from emulator.gws.voice_messages import UserDataError, parse_kvlist, user_data_to_tlib
from emulator.tlib.enums import AgentWorkMode
from emulator.tlib.messages import (
    DTMF_DIGITS,
    DTMF_DIGITS_RULE,
    Request,
    RequestAgentLogin,
    RequestAgentLogout,
    RequestAgentNotReady,
    RequestAgentReady,
    RequestAnswerCall,
    RequestAttachUserData,
    RequestCancelCallForward,
    RequestClearCall,
    RequestDeletePair,
    RequestHoldCall,
    RequestMakeCall,
    RequestReleaseCall,
    RequestRetrieveCall,
    RequestSendDTMF,
    RequestSendEvent,
    RequestSetCallForward,
    RequestSetDNDOff,
    RequestSetDNDOn,
    RequestUpdateUserData,
)


class Scope(StrEnum):
    DN = "dn"  # voice/{path}
    CALL = "call"  # voice/calls/{id}/{path}


class Kind(StrEnum):
    TEXT = "text"  # a non-empty string
    USER_DATA = "userData"  # [{key, type, value}]
    WORK_MODE = "agentWorkMode"  # an AgentWorkMode name
    DTMF = "dtmfDigits"  # 1 to 32 of 0-9, *, #, A-D


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind = Kind.TEXT
    required: bool = False


# What a builder gets: the request's ReferenceID, the DN, the call (CALL scope) and the fields
# (with the session's ``agentId``).
Arguments = Mapping[str, Any]
Builder = Callable[[int, str, str, Arguments], Request]


@dataclass(frozen=True)
class Operation:
    path: str
    scope: Scope
    request: str  # the T-Lib request behind it, as Genesys names it (or what GWS does)
    fields: tuple[Field, ...] = ()
    build: Builder | None = None
    # Answered by GWS itself, no T-Lib request (the node knows how).
    local: bool = False

    @property
    def served(self) -> bool:
        return self.build is not None or self.local


def _work_mode(arguments: Arguments, default: AgentWorkMode) -> AgentWorkMode:
    mode = arguments.get("agentWorkMode")
    return AgentWorkMode(mode) if mode else default


def _dn(cls: Callable[..., Request]) -> Builder:
    return lambda ref, dn, conn_id, arguments: cls(ref, dn)


def _user_data(cls: Callable[..., Request]) -> Builder:
    return lambda ref, dn, conn_id, arguments: cls(
        ref, dn, conn_id=conn_id, user_data=user_data_to_tlib(arguments["userData"])
    )


def _call(cls: Callable[..., Request]) -> Builder:
    return lambda ref, dn, conn_id, arguments: cls(ref, dn, conn_id=conn_id)


_USER_DATA = Field("userData", Kind.USER_DATA)

OPERATIONS: tuple[Operation, ...] = (
    # --- agent state and the DN -----------------------------------------------------------------
    Operation(
        "login",
        Scope.DN,
        "RequestAgentLogin",
        build=lambda ref, dn, _, a: RequestAgentLogin(
            ref, dn, agent_id=a["agentId"], agent_work_mode=AgentWorkMode.MANUAL_IN
        ),
    ),
    Operation(
        "logout",
        Scope.DN,
        "RequestAgentLogout",
        build=lambda ref, dn, _, a: RequestAgentLogout(ref, dn, agent_id=a["agentId"]),
    ),
    Operation(
        "ready",
        Scope.DN,
        "RequestAgentReady",
        (Field("agentWorkMode", Kind.WORK_MODE),),
        build=lambda ref, dn, _, a: RequestAgentReady(
            ref, dn, agent_work_mode=_work_mode(a, AgentWorkMode.MANUAL_IN)
        ),
    ),
    Operation(
        "not-ready",
        Scope.DN,
        "RequestAgentNotReady",
        (Field("agentWorkMode", Kind.WORK_MODE), Field("reasonCode")),
        build=lambda ref, dn, _, a: RequestAgentNotReady(
            ref, dn, agent_work_mode=_work_mode(a, AgentWorkMode.UNKNOWN)
        ),
    ),
    Operation("dnd-on", Scope.DN, "RequestSetDNDOn", build=_dn(RequestSetDNDOn)),
    Operation("dnd-off", Scope.DN, "RequestSetDNDOff", build=_dn(RequestSetDNDOff)),
    Operation(
        "set-forward",
        Scope.DN,
        "RequestSetCallForward",
        (Field("forwardTo", required=True),),
        build=lambda ref, dn, _, a: RequestSetCallForward(ref, dn, other_dn=a["forwardTo"]),
    ),
    Operation(
        "cancel-forward",
        Scope.DN,
        "RequestCancelCallForward",
        build=_dn(RequestCancelCallForward),
    ),
    Operation(
        "make-call",
        Scope.DN,
        "RequestMakeCall",
        (Field("destination", required=True), _USER_DATA),
        build=lambda ref, dn, _, a: RequestMakeCall(
            ref, dn, other_dn=a["destination"], user_data=user_data_to_tlib(a.get("userData", ()))
        ),
    ),
    Operation(
        "send-user-event",
        Scope.DN,
        "RequestSendEvent",
        (Field("userData", Kind.USER_DATA, True), Field("callUuid")),
        build=lambda ref, dn, _, a: RequestSendEvent(
            ref, dn, user_data=user_data_to_tlib(a["userData"]), call_uuid=a.get("callUuid")
        ),
    ),
    Operation(
        "start-monitoring",
        Scope.DN,
        "RequestMonitorNextCall",
        (
            Field("phoneNumberToMonitor", required=True),
            Field("monitoringMode"),
            Field("monitoringScope"),
            Field("monitoringNextCallType"),
        ),
    ),
    Operation(
        "stop-monitoring",
        Scope.DN,
        "RequestCancelMonitoring",
        (Field("phoneNumber", required=True),),
    ),
    # --- one call -----------------------------------------------------------------------------
    Operation("answer", Scope.CALL, "RequestAnswerCall", build=_call(RequestAnswerCall)),
    Operation("hold", Scope.CALL, "RequestHoldCall", build=_call(RequestHoldCall)),
    Operation("retrieve", Scope.CALL, "RequestRetrieveCall", build=_call(RequestRetrieveCall)),
    Operation("release", Scope.CALL, "RequestReleaseCall", build=_call(RequestReleaseCall)),
    Operation("clear", Scope.CALL, "RequestClearCall", build=_call(RequestClearCall)),
    Operation(
        "redirect", Scope.CALL, "RequestRedirectCall", (Field("destination", required=True),)
    ),
    Operation("complete", Scope.CALL, "mark the call done (GWS)", local=True),
    Operation(
        "single-step-transfer",
        Scope.CALL,
        "RequestSingleStepTransfer",
        (Field("destination", required=True), _USER_DATA),
    ),
    Operation(
        "initiate-transfer",
        Scope.CALL,
        "RequestInitiateTransfer",
        (Field("destination", required=True), _USER_DATA),
    ),
    Operation(
        "complete-transfer",
        Scope.CALL,
        "RequestCompleteTransfer",
        (Field("parentConnId", required=True),),
    ),
    Operation(
        "single-step-conference",
        Scope.CALL,
        "RequestSingleStepConference",
        (Field("destination", required=True), _USER_DATA),
    ),
    Operation(
        "initiate-conference",
        Scope.CALL,
        "RequestInitiateConference",
        (Field("destination", required=True), _USER_DATA),
    ),
    Operation(
        "complete-conference",
        Scope.CALL,
        "RequestCompleteConference",
        (Field("parentConnId", required=True),),
    ),
    Operation(
        "delete-from-conference",
        Scope.CALL,
        "RequestDeleteFromConference",
        (Field("dnToDrop", required=True),),
    ),
    Operation(
        "alternate", Scope.CALL, "RequestAlternateCall", (Field("heldConnId", required=True),)
    ),
    Operation("merge", Scope.CALL, "RequestMergeCalls", (Field("otherConnId", required=True),)),
    Operation(
        "reconnect", Scope.CALL, "RequestReconnectCall", (Field("heldConnId", required=True),)
    ),
    Operation(
        "send-dtmf",
        Scope.CALL,
        "RequestSendDTMF",
        (Field("dtmfDigits", Kind.DTMF, True),),
        build=lambda ref, dn, conn_id, a: RequestSendDTMF(
            ref, dn, conn_id=conn_id, dtmf_digits=a["dtmfDigits"]
        ),
    ),
    Operation(
        "attach-user-data",
        Scope.CALL,
        "RequestAttachUserData",
        (Field("userData", Kind.USER_DATA, True),),
        build=_user_data(RequestAttachUserData),
    ),
    Operation(
        "update-user-data",
        Scope.CALL,
        "RequestUpdateUserData",
        (Field("userData", Kind.USER_DATA, True),),
        build=_user_data(RequestUpdateUserData),
    ),
    Operation(
        "delete-user-data-pair",
        Scope.CALL,
        "RequestDeletePair",
        (Field("key", required=True),),
        build=lambda ref, dn, conn_id, a: RequestDeletePair(ref, dn, conn_id=conn_id, key=a["key"]),
    ),
    Operation("start-recording", Scope.CALL, "RequestStartRecording"),
    Operation("stop-recording", Scope.CALL, "RequestStopRecording"),
    Operation("pause-recording", Scope.CALL, "RequestPauseRecording"),
    Operation("resume-recording", Scope.CALL, "RequestResumeRecording"),
    Operation("switch-to-listen-in", Scope.CALL, "RequestSetMonitoringMode (Mute)"),
    Operation("switch-to-coaching", Scope.CALL, "RequestSetMonitoringMode (Coach)"),
    Operation("switch-to-barge-in", Scope.CALL, "RequestSetMonitoringMode (Connect)"),
)

BY_PATH: Mapping[tuple[Scope, str], Operation] = {(op.scope, op.path): op for op in OPERATIONS}


def find(scope: Scope, path: str) -> Operation | None:
    return BY_PATH.get((scope, path))


def paths(scope: Scope) -> list[str]:
    return [op.path for op in OPERATIONS if op.scope is scope]


def _read(field: Field, value: Any, where: str) -> Any:
    if field.kind is Kind.USER_DATA:
        try:
            return parse_kvlist(value, where)
        except UserDataError as exc:
            raise BadRequest(str(exc)) from None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"field '{where}' must be a non-empty string")
    if field.kind is Kind.DTMF and not DTMF_DIGITS.fullmatch(value.strip()):
        raise BadRequest(f"{where} must be {DTMF_DIGITS_RULE}, got {value!r}")
    if field.kind is Kind.WORK_MODE:
        try:
            AgentWorkMode(value.strip())
        except ValueError:
            allowed = ", ".join(member.value for member in AgentWorkMode)
            raise BadRequest(f"{where} {value!r} is not supported (one of: {allowed})") from None
    return value.strip()


def read_arguments(operation: Operation, body: Mapping[str, Any]) -> dict[str, Any]:
    """The operation's fields from ``body["data"]``; ``BadRequest`` names a bad or missing one.

    ``reasonCode`` is also read beside ``data`` (where genesys-workspace-client-js 9.0.1 puts
    it), and unknown fields are ignored, as GWS does (``reasons``, ``extensions``...).
    """
    data = body.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("field 'data' must be an object")
    arguments: dict[str, Any] = {}
    for field in operation.fields:
        value = data.get(field.name)
        if value is None and field.name == "reasonCode":
            value = body.get("reasonCode")
        if value is None:
            if field.required:
                raise BadRequest(f"{operation.path} needs 'data.{field.name}'")
            continue
        arguments[field.name] = _read(field, value, f"data.{field.name}")
    return arguments


def operation_id(body: Mapping[str, Any]) -> str | None:
    """The desktop's own ``operationId`` (echoed on the answer and the events it causes)."""
    value = body.get("operationId")
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 128:
        raise BadRequest("field 'operationId' must be a string of 1 to 128 characters")
    return value
