"""The table of Workspace voice operations, synchronously: it covers the public client's VoiceApi,
every capability GWS offers is one of its paths, and bodies are read field by field."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.gws import capabilities, voice_ops
from emulator.gws.dnview import CallView, DnRole, DnView, WorkspaceAgentState, WorkspaceCallState
from emulator.gws.errors import BadRequest
from emulator.gws.voice_ops import Scope

# The paths of genesys-workspace-client-js 9.0.1's generated VoiceApi (POST unless noted).
CLIENT_DN_PATHS = {
    "login", "logout", "ready", "not-ready", "dnd-on", "dnd-off", "set-forward",
    "cancel-forward", "make-call", "send-user-event", "start-monitoring", "stop-monitoring",
}  # fmt: skip
CLIENT_CALL_PATHS = {
    "alternate", "answer", "attach-user-data", "clear", "complete", "complete-conference",
    "complete-transfer", "delete-from-conference", "delete-user-data-pair", "hold",
    "initiate-conference", "initiate-transfer", "merge", "pause-recording", "reconnect",
    "redirect", "release", "resume-recording", "retrieve", "send-dtmf",
    "single-step-conference", "single-step-transfer", "start-recording", "stop-recording",
    "switch-to-barge-in", "switch-to-coaching", "switch-to-listen-in", "update-user-data",
}  # fmt: skip


def test_the_table_has_every_voice_operation_of_the_public_client() -> None:
    assert set(voice_ops.paths(Scope.DN)) == CLIENT_DN_PATHS
    assert set(voice_ops.paths(Scope.CALL)) == CLIENT_CALL_PATHS
    for operation in voice_ops.OPERATIONS:
        assert operation.request, operation.path


def all_capabilities() -> set[str]:
    names: set[str] = set()
    for state in WorkspaceAgentState:
        for dnd in (False, True):
            view = DnView("7001", agent_state=state, dnd=dnd, forward_to="7002" if dnd else "")
            names.update(capabilities.dn_capabilities(view))
    view = DnView("7001")
    for call_state in WorkspaceCallState:
        call = CallView("c1", call_state, "7002", "Internal", "sip1", DnRole.ORIGINATION, "c0")
        names.update(capabilities.call_capabilities(view, call))
    return names


def test_every_capability_offered_is_a_routed_operation() -> None:
    routed = set(voice_ops.paths(Scope.DN)) | set(voice_ops.paths(Scope.CALL))
    assert all_capabilities() <= routed


def test_dn_capabilities_toggle_with_dnd_and_forwarding() -> None:
    view = DnView("7001", agent_state=WorkspaceAgentState.READY)
    assert {"dnd-on", "set-forward"} <= set(capabilities.dn_capabilities(view))
    view.dnd, view.forward_to = True, "7002"
    names = set(capabilities.dn_capabilities(view))
    assert {"dnd-off", "cancel-forward"} <= names and not {"dnd-on", "set-forward"} & names
    view.in_service = False
    assert capabilities.dn_capabilities(view) == []


def test_a_consultation_offers_to_complete_or_go_back() -> None:
    view = DnView("7001")
    call = CallView("c2", WorkspaceCallState.ESTABLISHED, "7002", "Consult", "", DnRole.ORIGINATION)
    plain = set(capabilities.call_capabilities(view, call))
    assert "complete-transfer" not in plain and "initiate-transfer" in plain
    consult = CallView(**{**call.__dict__, "parent_conn_id": "c1"})
    names = set(capabilities.call_capabilities(view, consult))
    assert {"complete-transfer", "complete-conference", "alternate", "reconnect"} <= names


def read(path: str, body: dict[str, Any], scope: Scope = Scope.CALL) -> dict[str, Any]:
    operation = voice_ops.find(scope, path)
    assert operation is not None
    return voice_ops.read_arguments(operation, body)


def test_bodies_are_read_as_the_client_builds_them() -> None:
    data = [{"key": "Disposition", "type": "str", "value": "Sale"}]
    arguments = read("initiate-transfer", {"data": {"destination": "7002", "userData": data}})
    assert arguments == {"destination": "7002", "userData": (("Disposition", "Sale"),)}
    nested = [
        {"key": "Case", "type": "kvlist", "value": [{"key": "Id", "type": "int", "value": 7}]}
    ]
    assert read("attach-user-data", {"data": {"userData": nested}}) == {
        "userData": (("Case", (("Id", 7),)),)
    }
    # The JS client 9.0.1 puts reasonCode beside data; the Java client inside it.
    for body in ({"data": {"agentWorkMode": "AuxWork"}, "reasonCode": "Lunch"},
                 {"data": {"agentWorkMode": "AuxWork", "reasonCode": "Lunch"}}):  # fmt: skip
        assert read("not-ready", body, Scope.DN) == {
            "agentWorkMode": "AuxWork",
            "reasonCode": "Lunch",
        }
    assert read("answer", {}) == {}


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("initiate-transfer", {"data": {}}, "needs 'data.destination'"),
        ("initiate-transfer", {"data": {"destination": 7002}}, "'data.destination' must be"),
        ("initiate-transfer", {"data": "7002"}, "'data' must be an object"),
        ("complete-transfer", {"data": {}}, "needs 'data.parentConnId'"),
        ("attach-user-data", {"data": {"userData": {"k": "v"}}}, "must be a list"),
        ("attach-user-data", {"data": {"userData": [{"key": "k"}]}}, "value must be of type str"),
        ("attach-user-data", {"data": {"userData": [{"key": "", "value": "v"}]}}, "key must be"),
        (
            "attach-user-data",
            {"data": {"userData": [{"key": "k", "type": "float", "value": 1.5}]}},
            "type must be",
        ),
        ("delete-user-data-pair", {"data": {"key": ""}}, "'data.key' must be"),
        ("send-dtmf", {"data": {"dtmfDigits": None}}, "needs 'data.dtmfDigits'"),
    ],
)
def test_a_missing_or_mistyped_field_is_named(
    path: str, body: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        read(path, body)
    assert fragment in caught.value.message


def test_a_bad_operation_id_or_work_mode_is_named() -> None:
    with pytest.raises(BadRequest, match="operationId"):
        voice_ops.operation_id({"operationId": 5})
    assert voice_ops.operation_id({"operationId": "op-1"}) == "op-1"
    with pytest.raises(BadRequest, match="agentWorkMode 'Lunch'"):
        read("not-ready", {"data": {"agentWorkMode": "Lunch"}}, Scope.DN)
