"""T-Lib messages (DESIGN §2.1): the JSON-object codec and the precise errors bad input earns."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from emulator.tlib.enums import AddressType, AgentWorkMode, RegisterMode
from emulator.tlib.errors import ErrorCode, ProtocolError
from emulator.tlib.messages import (
    REQUEST_TYPES,
    WIRE_NAMES,
    Event,
    EventName,
    Heartbeat,
    Message,
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
    RequestDeleteUserData,
    RequestHoldCall,
    RequestMakeCall,
    RequestQueryAddress,
    RequestRegisterAddress,
    RequestReleaseCall,
    RequestRetrieveCall,
    RequestSendDTMF,
    RequestSendEvent,
    RequestSetCallForward,
    RequestSetDNDOff,
    RequestSetDNDOn,
    RequestUnregisterAddress,
    RequestUpdateUserData,
    decode,
    encode,
    error_event,
)

# One instance of every request with every attribute set, to a value other than its default.
FULL_REQUESTS: dict[str, Request] = {
    request.NAME: request
    for request in (
        RequestRegisterAddress(
            reference_id=1,
            this_dn="5001",
            register_mode=RegisterMode.MODE_PRIVATE,
            address_type=AddressType.POSITION,
        ),
        RequestUnregisterAddress(reference_id=2, this_dn="5001"),
        RequestAgentLogin(
            reference_id=3,
            this_dn="5001",
            agent_id="agent1",
            agent_work_mode=AgentWorkMode.AUTO_IN,
            password="secret",
        ),
        RequestAgentLogout(reference_id=4, this_dn="5001", agent_id="agent1"),
        RequestAgentReady(reference_id=5, this_dn="5001", agent_work_mode=AgentWorkMode.AUTO_IN),
        RequestAgentNotReady(
            reference_id=6, this_dn="5001", agent_work_mode=AgentWorkMode.AFTER_CALL_WORK
        ),
        RequestQueryAddress(reference_id=7, this_dn="5001"),
        RequestAnswerCall(reference_id=8, this_dn="5001", conn_id="006f01a2b3c4d5e6"),
        RequestReleaseCall(reference_id=9, this_dn="5001", conn_id="006f01a2b3c4d5e6"),
        RequestHoldCall(reference_id=10, this_dn="5001", conn_id="006f01a2b3c4d5e6"),
        RequestRetrieveCall(reference_id=11, this_dn="5001", conn_id="006f01a2b3c4d5e6"),
        RequestMakeCall(
            reference_id=12, this_dn="5001", other_dn="+14155550100", user_data={"Case": "7"}
        ),
        RequestSetDNDOn(reference_id=13, this_dn="5001"),
        RequestSetDNDOff(reference_id=14, this_dn="5001"),
        RequestSetCallForward(reference_id=15, this_dn="5001", other_dn="+14155550199"),
        RequestCancelCallForward(reference_id=16, this_dn="5001"),
        RequestAttachUserData(
            reference_id=17,
            this_dn="5001",
            conn_id="006f01a2b3c4d5e6",
            user_data={"Account": "42", "Priority": 3, "Order": {"Id": "A-1"}},
        ),
        RequestUpdateUserData(
            reference_id=18, this_dn="5001", conn_id="006f01a2b3c4d5e6", user_data={"Lang": "fr"}
        ),
        RequestDeletePair(reference_id=19, this_dn="5001", conn_id="006f01a2b3c4d5e6", key="A"),
        RequestDeleteUserData(reference_id=20, this_dn="5001", conn_id="006f01a2b3c4d5e6"),
        RequestClearCall(reference_id=21, this_dn="5001", conn_id="006f01a2b3c4d5e6"),
        RequestSendDTMF(
            reference_id=22, this_dn="5001", conn_id="006f01a2b3c4d5e6", dtmf_digits="12#"
        ),
        RequestSendEvent(
            reference_id=23, this_dn="5001", user_data={"Campaign": "Spring"}, call_uuid="CU-1"
        ),
    )
}


def decode_error(obj: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode(obj)
    assert not caught.value.fatal, "a bad message never desynchronises the stream"
    return caught.value


def over_the_wire(message: Message) -> Message:
    return decode(json.loads(json.dumps(encode(message))))


def test_every_request_type_has_a_full_sample() -> None:
    assert set(FULL_REQUESTS) == set(REQUEST_TYPES)
    for name, request in FULL_REQUESTS.items():
        assert type(request) is REQUEST_TYPES[name]


@pytest.mark.parametrize("name", sorted(REQUEST_TYPES))
def test_request_with_all_attributes_round_trips(name: str) -> None:
    request = FULL_REQUESTS[name]

    wire = encode(request)

    assert wire["message"] == name
    expected_attributes = {WIRE_NAMES[spec.name] for spec in dataclasses.fields(request)}
    assert set(wire) == {"message", *expected_attributes}
    assert over_the_wire(request) == request


def test_request_attributes_use_genesys_names_and_plain_strings() -> None:
    wire = encode(FULL_REQUESTS["RequestAgentLogin"])

    assert wire == {
        "message": "RequestAgentLogin",
        "ReferenceID": 3,
        "ThisDN": "5001",
        "AgentID": "agent1",
        "AgentWorkMode": "AutoIn",
        "Password": "secret",
    }
    assert type(wire["AgentWorkMode"]) is str


def test_optional_attributes_left_out_take_their_defaults() -> None:
    login = decode(
        {"message": "RequestAgentLogin", "ReferenceID": 1, "ThisDN": "5001", "AgentID": "a"}
    )
    register = decode({"message": "RequestRegisterAddress", "ReferenceID": 2, "ThisDN": "5001"})

    assert login == RequestAgentLogin(reference_id=1, this_dn="5001", agent_id="a")
    assert isinstance(login, RequestAgentLogin)
    assert login.agent_work_mode is AgentWorkMode.MANUAL_IN
    assert login.password is None
    assert register == RequestRegisterAddress(reference_id=2, this_dn="5001")


def test_request_ignores_attributes_it_does_not_know() -> None:
    obj = {"message": "RequestQueryAddress", "ReferenceID": 4, "ThisDN": "5001", "Extra": [1]}

    assert decode(obj) == RequestQueryAddress(reference_id=4, this_dn="5001")


def test_heartbeat_encodes_to_its_name_only_and_decodes_back() -> None:
    assert encode(Heartbeat()) == {"message": "Heartbeat"}
    assert decode({"message": "Heartbeat"}) == Heartbeat()
    assert decode({"message": "Heartbeat", "ReferenceID": "ignored"}) == Heartbeat()


def test_event_keeps_attributes_it_does_not_know() -> None:
    obj = {
        "message": "EventRegistered",
        "ThisDN": "5001",
        "ReferenceID": 17,
        "AgentState": "Ready",
        "Calls": [{"ConnID": "c1", "CallState": "Established"}],
        "XVendorSpecific": {"nested": True},
    }

    event = decode(obj)

    assert isinstance(event, Event)
    assert event.name is EventName.EVENT_REGISTERED
    assert event.this_dn == "5001"
    assert event.reference_id == 17
    assert event.get("XVendorSpecific") == {"nested": True}
    assert event.get("Calls") == [{"ConnID": "c1", "CallState": "Established"}]
    assert event.get("Missing", "default") == "default"
    assert encode(event) == obj


def test_event_without_dn_or_reference_round_trips() -> None:
    event = Event(EventName.EVENT_DN_BACK_IN_SERVICE, attributes={"Reason": "TC link back"})

    assert encode(event) == {"message": "EventDNBackInService", "Reason": "TC link back"}
    assert over_the_wire(event) == event


@pytest.mark.parametrize("name", list(EventName))
def test_every_event_name_decodes_as_an_event(name: EventName) -> None:
    event = decode({"message": str(name), "ThisDN": "5001"})

    assert event == Event(name, this_dn="5001")


def test_error_event_carries_numeric_code_text_and_reference() -> None:
    event = error_event(
        ErrorCode.CALL_IN_PROGRESS, "call in progress", this_dn="5001", reference_id=3
    )

    assert encode(event) == {
        "message": "EventError",
        "ThisDN": "5001",
        "ReferenceID": 3,
        "ErrorCode": 245,
        "ErrorMessage": "call in progress",
    }
    assert type(encode(event)["ErrorCode"]) is int
    assert over_the_wire(event) == event


def test_with_reference_returns_a_copy_echoing_the_request() -> None:
    event = Event(EventName.EVENT_AGENT_READY, this_dn="5001")

    answered = event.with_reference(42)

    assert answered.reference_id == 42
    assert event.reference_id is None


@pytest.mark.parametrize("obj", [[1, 2], "RequestAgentLogin", 7, None, True])
def test_value_that_is_not_an_object_is_a_malformed_frame(obj: Any) -> None:
    error = decode_error(obj)

    assert error.code is ErrorCode.MALFORMED_FRAME
    assert "not a JSON object" in error.message


@pytest.mark.parametrize("obj", [{"ThisDN": "5001", "ReferenceID": 1}, {"message": 5}])
def test_missing_or_non_string_message_name_is_an_invalid_attribute(obj: Any) -> None:
    error = decode_error(obj)

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert "'message'" in error.message


def test_unknown_message_name_is_unknown_request_carrying_the_reference_id() -> None:
    error = decode_error({"message": "RequestTeleport", "ReferenceID": 31, "ThisDN": "5001"})

    assert error.code is ErrorCode.UNKNOWN_REQUEST
    assert "RequestTeleport" in error.message
    assert error.reference_id == 31


def test_unknown_message_name_without_reference_id_carries_none() -> None:
    error = decode_error({"message": "RequestTeleport", "ReferenceID": "31"})

    assert error.code is ErrorCode.UNKNOWN_REQUEST
    assert error.reference_id is None


def test_unknown_message_with_boolean_reference_id_carries_none() -> None:
    error = decode_error({"message": "RequestTeleport", "ReferenceID": True})

    assert error.reference_id is None


def test_event_with_boolean_reference_id_has_no_reference() -> None:
    event = decode({"message": "EventAgentReady", "ReferenceID": True})

    assert isinstance(event, Event)
    assert event.reference_id is None


def test_request_without_reference_id_is_rejected_naming_it() -> None:
    error = decode_error({"message": "RequestQueryAddress", "ThisDN": "5001"})

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert "RequestQueryAddress" in error.message
    assert "'ReferenceID'" in error.message
    assert error.reference_id is None


@pytest.mark.parametrize("reference_id", [True, False, "5", 5.0, None])
def test_request_reference_id_must_be_a_true_integer(reference_id: Any) -> None:
    obj = {"message": "RequestQueryAddress", "ThisDN": "5001", "ReferenceID": reference_id}

    error = decode_error(obj)

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert "'ReferenceID'" in error.message
    assert error.reference_id is None


def test_request_without_this_dn_names_it_and_carries_the_reference_id() -> None:
    error = decode_error({"message": "RequestAgentReady", "ReferenceID": 21})

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert "'ThisDN'" in error.message
    assert "RequestAgentReady" in error.message
    assert error.reference_id == 21
    assert error.this_dn is None


def test_login_without_agent_id_names_it_and_carries_reference_and_dn() -> None:
    error = decode_error({"message": "RequestAgentLogin", "ReferenceID": 22, "ThisDN": "5001"})

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert "'AgentID'" in error.message
    assert error.reference_id == 22
    assert error.this_dn == "5001"


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("RequestAnswerCall", "ConnID"),
        ("RequestReleaseCall", "ConnID"),
        ("RequestHoldCall", "ConnID"),
        ("RequestRetrieveCall", "ConnID"),
        ("RequestMakeCall", "OtherDN"),
    ],
)
def test_mandatory_attribute_of_a_call_request_is_checked(name: str, wire: str) -> None:
    error = decode_error({"message": name, "ReferenceID": 23, "ThisDN": "5001"})

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert f"'{wire}'" in error.message
    assert error.reference_id == 23


def test_empty_conn_id_is_rejected_naming_it() -> None:
    obj = {"message": "RequestAnswerCall", "ReferenceID": 24, "ThisDN": "5001", "ConnID": ""}

    error = decode_error(obj)

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert "'ConnID'" in error.message
    assert "non-empty string" in error.message
    assert error.reference_id == 24


def test_bad_agent_work_mode_lists_the_allowed_values() -> None:
    obj = {
        "message": "RequestAgentNotReady",
        "ReferenceID": 25,
        "ThisDN": "5001",
        "AgentWorkMode": "Lunch",
    }

    error = decode_error(obj)

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert "'AgentWorkMode'" in error.message
    assert "'Lunch'" in error.message
    for mode in AgentWorkMode:
        assert mode.value in error.message
    assert error.reference_id == 25


@pytest.mark.parametrize(("wire", "value"), [("RegisterMode", "ModeShared"), ("AddressType", "dn")])
def test_bad_registration_enum_value_is_rejected(wire: str, value: str) -> None:
    obj = {"message": "RequestRegisterAddress", "ReferenceID": 26, "ThisDN": "5001", wire: value}

    error = decode_error(obj)

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert f"'{wire}'" in error.message


@pytest.mark.parametrize("this_dn", [5001, None, ["5001"]])
def test_this_dn_of_the_wrong_type_is_rejected(this_dn: Any) -> None:
    obj = {"message": "RequestQueryAddress", "ReferenceID": 27, "ThisDN": this_dn}

    error = decode_error(obj)

    assert error.code is ErrorCode.INVALID_ATTRIBUTE
    assert "'ThisDN'" in error.message
    assert repr(this_dn) in error.message
    assert error.reference_id == 27


def test_empty_password_is_allowed_but_empty_agent_id_is_not() -> None:
    base = {"message": "RequestAgentLogin", "ReferenceID": 28, "ThisDN": "5001"}

    login = decode({**base, "AgentID": "a1", "Password": ""})
    error = decode_error({**base, "AgentID": ""})

    assert isinstance(login, RequestAgentLogin)
    assert login.password == ""
    assert "'AgentID'" in error.message
