"""Every voice operation over HTTP: bad bodies are answered 400 naming the field, an unknown call
404, what the lab's SIP Server does not serve 501 naming the T-Lib request; never 500, and the
other agent is undisturbed. Served operations echo ``operationId`` on what they cause."""

from __future__ import annotations

from typing import Any

from emulator.gws import voice_ops
from emulator.gws.voice_ops import Scope

VOICE = "/workspace/v3/voice"


async def test_not_ready_with_a_reason_code_is_shown_on_the_dn(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent1", "7001")
    body = {"operationId": "nr-1", "data": {"agentWorkMode": "AuxWork"}, "reasonCode": "Lunch"}
    status, answer = await desk.call("POST", f"{VOICE}/not-ready", body)
    assert (status, answer["status"]["code"], answer["operationId"]) == (200, 1, "nr-1"), answer
    message = await desk.expect_voice("DnStateChanged", agentState="NotReady")
    assert message["data"]["operationId"] == "nr-1"
    dn = message["data"]["dn"]
    assert dn["reasons"] == [{"key": "ReasonCode", "type": "str", "value": "Lunch"}]
    assert (dn["dnd"], dn["agentWorkMode"]) == ("off", "AuxWork")
    status, answer = await desk.call("POST", f"{VOICE}/ready")
    assert len(answer["operationId"]) == 32  # GWS gives one when the desktop does not
    ready = await desk.expect_voice("DnStateChanged", agentState="Ready")
    assert "reasons" not in ready["data"]["dn"]


async def test_dnd_and_forwarding_go_to_the_sip_node_and_come_back_on_the_dn(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent1", "7001")

    status, answer = await desk.call("POST", f"{VOICE}/dnd-on", {"operationId": "dnd-1"})
    assert (status, answer["status"]["code"]) == (200, 1), answer
    message = await desk.expect_voice("DnStateChanged", dnd="on")
    assert message["data"]["operationId"] == "dnd-1"
    assert "dnd-off" in message["data"]["dn"]["capabilities"]
    assert lab.sip.node.owner.owned["7001"].dnd is True  # the owner keeps it, not GWS

    body = {"operationId": "fw-1", "data": {"forwardTo": "+15550009999"}}
    status, answer = await desk.call("POST", f"{VOICE}/set-forward", body)
    assert status == 200, answer
    message = await desk.expect_voice("DnStateChanged", forwardTo="+15550009999")
    assert message["data"]["operationId"] == "fw-1"

    status, answer = await desk.call(
        "POST", f"{VOICE}/set-forward", {"data": {"forwardTo": "7001"}}
    )
    assert status == 200  # accepted by GWS; the SIP node refuses it with EventError
    error = await desk.expect_voice("EventError")
    assert "cannot forward to itself" in str(error["data"])

    await desk.call("POST", f"{VOICE}/cancel-forward", {"operationId": "fw-2"})
    message = await desk.expect_voice("DnStateChanged", dnd="on")
    assert message["data"]["operationId"] == "fw-2"
    assert "forwardTo" not in message["data"]["dn"]
    await desk.call("POST", f"{VOICE}/dnd-off", {"operationId": "dnd-2"})
    message = await desk.expect_voice("DnStateChanged", dnd="off")
    assert message["data"]["operationId"] == "dnd-2"


async def test_user_data_is_attached_on_the_call_node_and_shown_on_the_call(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent1", "7001")
    conn_id = await lab.answered_call(desk, "+15551230009", "7001")

    pairs = [
        {"key": "Account", "type": "str", "value": "42"},
        {"key": "Order", "type": "kvlist", "value": [{"key": "Id", "type": "str", "value": "A"}]},
    ]
    body = {"operationId": "ud-1", "data": {"userData": pairs}}
    status, answer = await desk.call("POST", f"{VOICE}/calls/{conn_id}/attach-user-data", body)
    assert (status, answer["status"]["code"]) == (200, 1), answer
    message = await desk.expect_voice("CallStateChanged", id=conn_id, userData=pairs)
    assert message["data"]["notificationType"] == "AttachedDataChanged"
    assert message["data"]["operationId"] == "ud-1"
    assert lab.sip.node.calls[conn_id].user_data == {"Account": "42", "Order": {"Id": "A"}}

    body = {"data": {"key": "Account"}}
    await desk.call("POST", f"{VOICE}/calls/{conn_id}/delete-user-data-pair", body)
    left = [pairs[1]]
    message = await desk.expect_voice("CallStateChanged", id=conn_id, userData=left)
    assert message["data"]["notificationType"] == "AttachedDataChanged"

    body = {"data": {"key": "Nope"}}
    await desk.call("POST", f"{VOICE}/calls/{conn_id}/delete-user-data-pair", body)
    error = await desk.expect_voice("EventError")
    assert "no user data key 'Nope'" in str(error["data"])


async def test_dtmf_user_event_and_clear_reach_the_sip_node_and_come_back(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent1", "7001")
    conn_id = await lab.answered_call(desk, "+15551230009", "7001")

    body = {"operationId": "dtmf-1", "data": {"dtmfDigits": "12#"}}
    status, answer = await desk.call("POST", f"{VOICE}/calls/{conn_id}/send-dtmf", body)
    assert (status, answer["status"]["code"]) == (200, 1), answer
    message = await desk.expect_voice("CallStateChanged", id=conn_id, state="Established")
    assert message["data"]["operationId"] == "dtmf-1"
    assert lab.sip_saw("RequestSendDTMF", "7001")
    bad = {"data": {"dtmfDigits": "12x"}}
    status, answer = await desk.call("POST", f"{VOICE}/calls/{conn_id}/send-dtmf", bad)
    assert status == 400 and "must be 1 to 32 DTMF digits" in answer["status"]["message"]

    pairs = [{"key": "Campaign", "type": "str", "value": "Spring"}]
    body = {"operationId": "ue-1", "data": {"userData": pairs, "callUuid": "CU-1"}}
    status, answer = await desk.call("POST", f"{VOICE}/send-user-event", body)
    assert status == 200, answer
    told = await desk.expect(
        lambda m: m["channel"] == VOICE and m["data"].get("messageType") == "EventUserEvent"
    )
    assert told["data"]["userData"] == pairs and told["data"]["callUuid"] == "CU-1"
    assert told["data"]["operationId"] == "ue-1"

    status, answer = await desk.call("POST", f"{VOICE}/calls/{conn_id}/clear", {})
    assert status == 200, answer
    await desk.expect_voice("CallStateChanged", id=conn_id, state="Released")
    assert lab.sip_saw("RequestClearCall", "7001")
    assert conn_id not in lab.sip.node.calls


async def test_make_call_with_user_data_attaches_it_from_the_first_event(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.voice_on("agent1", "7001")
    pairs = [{"key": "Case", "type": "str", "value": "C-7"}]
    body = {"data": {"destination": "+15559870000", "userData": pairs}}
    status, answer = await desk.call("POST", f"{VOICE}/make-call", body)
    assert status == 200, answer
    dialing = await desk.expect_voice("CallStateChanged", state="Dialing")
    assert dialing["data"]["call"]["userData"] == pairs
    conn_id = dialing["data"]["call"]["id"]
    assert lab.sip.node.calls[conn_id].user_data == {"Case": "C-7"}
    bad = {"data": {"destination": "+15559870000", "userData": [{"key": "Case"}]}}
    status, answer = await desk.call("POST", f"{VOICE}/make-call", bad)
    assert status == 400 and "userData" in answer["status"]["message"], answer


async def test_every_voice_operation_answers_bad_input_precisely(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    other = await lab.voice_on("agent2", "7002")
    conn_id = lab.sip.node.inbound_call("+15551230009", "7001")
    await desk.expect_voice("CallStateChanged", id=conn_id, state="Ringing")
    for operation in voice_ops.OPERATIONS:
        base = f"{VOICE}/calls/{conn_id}" if operation.scope is Scope.CALL else VOICE
        url = f"{base}/{operation.path}"
        status, answer = await desk.call("POST", url, {"data": "x"})
        assert (status, answer["status"]["code"]) == (400, 400), (url, answer)
        for field in operation.fields:
            if field.required:
                status, answer = await desk.call("POST", url, {"data": {}})
                assert status == 400 and field.name in answer["status"]["message"], url
        status, answer = await desk.call("POST", url, {"data": {}, "operationId": 7})
        assert status == 400, url
        status, answer = await desk.call("GET", url)
        assert status == 405, (url, answer)
        if operation.scope is Scope.CALL:
            unknown = f"{VOICE}/calls/0000dead/{operation.path}"
            status, answer = await desk.call("POST", unknown, _valid(operation))
            assert status == 404 and "not a call of DN 7001" in answer["status"]["message"]
        if not operation.served:
            status, answer = await desk.call("POST", url, _valid(operation))
            assert (status, answer["status"]["code"]) == (501, 501), (url, answer)
            assert operation.request in answer["status"]["message"], answer
    # No request ended in an internal error, and the other agent was not touched.
    assert not lab.gws_events("http.internal_error")
    status, body = await other.call("GET", "/workspace/v3/current-session")
    assert status == 200
    assert body["data"]["user"]["activeSession"]["dn"]["agentState"] == "LoggedIn"


def _valid(operation: voice_ops.Operation) -> dict[str, Any]:
    """A body with every required field well formed."""
    data: dict[str, Any] = {}
    for field in operation.fields:
        if field.required:
            if field.kind is voice_ops.Kind.USER_DATA:
                data[field.name] = [{"key": "k", "type": "str", "value": "v"}]
            else:
                data[field.name] = "7002"
    return {"data": data}
