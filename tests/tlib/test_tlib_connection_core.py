"""The sans-I/O T-Lib connection (DESIGN §2.1): bytes in, messages or errors out; no sockets.

Two ``TLibConnection`` objects are wired back to back like h11's ``ConnectionPair``: whatever one
``send`` returns is fed to the other's ``receive_data``.
"""

from __future__ import annotations

import json

from emulator.tlib.addp import Liveness
from emulator.tlib.connection_core import TLibConnection
from emulator.tlib.errors import ErrorCode, ProtocolError
from emulator.tlib.framing import HEADER, encode_frame
from emulator.tlib.messages import (
    Event,
    EventName,
    Heartbeat,
    Message,
    RequestAgentLogin,
    RequestQueryAddress,
    encode,
)

INTERVAL = 10.0
TIMEOUT = 5.0

QUERY = RequestQueryAddress(reference_id=1, this_dn="5001")
RINGING = Event(EventName.EVENT_RINGING, this_dn="5001", attributes={"ConnID": "c1"})
HEARTBEAT_FRAME = encode_frame({"message": "Heartbeat"})
BAD_JSON_FRAME = HEADER.pack(3) + b"{{{"


def connection(*, now: float = 0.0, max_bad_frames: int = 5) -> TLibConnection:
    return TLibConnection(
        addp_interval=INTERVAL, addp_timeout=TIMEOUT, now=now, max_bad_frames=max_bad_frames
    )


def receive(conn: TLibConnection, data: bytes, now: float = 0.0) -> list[Message | ProtocolError]:
    return list(conn.receive_data(data, now))


def single_error(items: list[Message | ProtocolError]) -> ProtocolError:
    assert len(items) == 1
    error = items[0]
    assert isinstance(error, ProtocolError)
    return error


def test_messages_sent_by_one_side_come_out_of_the_other() -> None:
    desktop, node = connection(), connection()

    assert receive(node, desktop.send(QUERY, 0.0)) == [QUERY]
    assert receive(desktop, node.send(RINGING.with_reference(1), 0.0)) == [
        RINGING.with_reference(1)
    ]


def test_send_returns_one_length_prefixed_frame() -> None:
    data = connection().send(QUERY, 0.0)

    (length,) = HEADER.unpack(data[: HEADER.size])
    assert length == len(data) - HEADER.size
    assert json.loads(data[HEADER.size :]) == encode(QUERY)


def test_receive_data_yields_messages_in_order_and_swallows_heartbeats() -> None:
    conn = connection()
    data = (
        HEARTBEAT_FRAME
        + encode_frame(encode(QUERY))
        + HEARTBEAT_FRAME
        + encode_frame(encode(RINGING))
    )

    assert receive(conn, data) == [QUERY, RINGING]


def test_messages_split_across_chunks_come_out_once() -> None:
    conn = connection()
    data = encode_frame(encode(QUERY)) + encode_frame(encode(RINGING))

    items = [item for i in range(len(data)) for item in receive(conn, data[i : i + 1])]

    assert items == [QUERY, RINGING]


def test_heartbeat_from_the_peer_keeps_it_alive() -> None:
    silent, chatty = connection(), connection()

    assert receive(chatty, HEARTBEAT_FRAME, now=12.0) == []

    assert silent.poll(15.0) is Liveness.PEER_DEAD
    assert chatty.poll(15.0) is Liveness.SEND_HEARTBEAT
    assert chatty.next_deadline() == 10.0


def test_sending_postpones_our_heartbeat() -> None:
    conn = connection()
    receive(conn, HEARTBEAT_FRAME, now=9.0)

    conn.send(QUERY, 9.0)

    assert conn.poll(10.0) is Liveness.OK
    assert conn.next_deadline() == 19.0


def test_bad_json_yields_an_error_and_the_next_frame_still_decodes() -> None:
    conn = connection()

    items = receive(conn, BAD_JSON_FRAME + encode_frame(encode(QUERY)))

    assert len(items) == 2
    assert isinstance(items[0], ProtocolError)
    assert items[0].code is ErrorCode.MALFORMED_FRAME
    assert items[1] == QUERY
    assert not conn.should_close


def test_bad_request_is_answered_with_an_event_error_echoing_its_reference() -> None:
    conn = connection()
    frame = encode_frame({"message": "RequestAgentLogin", "ReferenceID": 44, "ThisDN": "5001"})

    reply = conn.error_reply(single_error(receive(conn, frame)))

    assert reply.name is EventName.EVENT_ERROR
    assert reply.reference_id == 44
    assert reply.this_dn == "5001"
    assert reply.get("ErrorCode") == int(ErrorCode.INVALID_ATTRIBUTE)
    assert "'AgentID'" in reply.get("ErrorMessage")


def test_error_reply_goes_out_as_an_event_error_frame() -> None:
    conn = connection()
    frame = encode_frame({"message": "RequestTeleport", "ReferenceID": 45})
    reply = conn.error_reply(single_error(receive(conn, frame)))

    wire = json.loads(conn.send(reply, 0.0)[HEADER.size :])

    assert wire == {
        "message": "EventError",
        "ReferenceID": 45,
        "ErrorCode": 57,
        "ErrorMessage": "unknown message 'RequestTeleport'",
    }


def test_error_reply_to_a_frame_without_reference_has_none() -> None:
    conn = connection()

    reply = conn.error_reply(single_error(receive(conn, BAD_JSON_FRAME)))

    assert reply.reference_id is None
    assert reply.this_dn is None
    assert reply.get("ErrorCode") == int(ErrorCode.MALFORMED_FRAME)
    assert reply.get("ErrorMessage")


def test_fatal_error_asks_to_close_and_nothing_decodes_afterwards() -> None:
    conn = connection()

    error = single_error(receive(conn, HEADER.pack(0)))

    assert error.fatal
    assert conn.should_close
    assert receive(conn, encode_frame(encode(QUERY))) == []
    assert conn.error_reply(error).get("ErrorCode") == int(ErrorCode.MALFORMED_FRAME)


def test_max_bad_frames_in_a_row_ask_to_close() -> None:
    conn = connection(max_bad_frames=3)

    for _ in range(2):
        assert not single_error(receive(conn, BAD_JSON_FRAME)).fatal
        assert not conn.should_close
    single_error(receive(conn, encode_frame({"message": "RequestTeleport", "ReferenceID": 1})))

    assert conn.should_close


def test_bad_frames_counted_in_one_chunk_too() -> None:
    conn = connection(max_bad_frames=3)

    items = receive(conn, BAD_JSON_FRAME * 3)

    assert len(items) == 3
    assert conn.should_close


def test_good_frames_between_bad_ones_keep_the_connection_open() -> None:
    conn = connection(max_bad_frames=3)
    good = encode_frame(encode(QUERY))

    for _ in range(5):
        receive(conn, BAD_JSON_FRAME + BAD_JSON_FRAME + good)

    assert not conn.should_close


def test_login_round_trips_between_two_connections_with_all_attributes() -> None:
    desktop, node = connection(), connection()
    login = RequestAgentLogin(reference_id=9, this_dn="5001", agent_id="a1", password="pw")

    assert receive(node, desktop.send(login, 1.0), now=1.0) == [login]
    assert receive(desktop, node.send(Heartbeat(), 2.0), now=2.0) == []


def test_send_heartbeat_returns_a_heartbeat_frame_and_postpones_the_next_one() -> None:
    conn = connection()
    receive(conn, HEARTBEAT_FRAME, now=10.0)
    assert conn.poll(10.0) is Liveness.SEND_HEARTBEAT

    data = conn.send_heartbeat(10.0)

    assert data == HEARTBEAT_FRAME
    assert conn.poll(10.0) is Liveness.OK
    assert receive(connection(), data) == []
