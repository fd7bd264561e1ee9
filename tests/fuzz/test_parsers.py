"""Property-based fuzzing (Hypothesis) of every parser a peer can reach: whatever bytes or JSON
arrive, the parser answers with its documented error or a value, never another exception; where
there is an encoder, decoding what it wrote gives back what was encoded.

Failures Hypothesis finds are kept as ``@example`` cases on the property they broke. The profile
(``conftest.py``) sets how many examples each property gets.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from emulator.bayeux.messages import Message as BayeuxMessage
from emulator.bayeux.messages import ProtocolError as BayeuxProtocolError
from emulator.bayeux.messages import encode_messages, parse_messages
from emulator.lab.scenarios.schema import load_scenario
from emulator.lab.scenarios.schema_reader import ScenarioError
from emulator.links.errors import LinksError
from emulator.links.schema import parse_json, parse_new_link
from emulator.proxy.errors import HttpError
from emulator.proxy.http1 import parse_chunk_size, parse_request_head, parse_response_head
from emulator.rtp.packet import BadRtpPacket, RtpPacket
from emulator.sip.errors import SipProtocolError
from emulator.sip.parser import StreamParser, parse_datagram
from emulator.sip.sdp import parse_sdp
from emulator.sipcluster.tc_messages import decode_tc
from emulator.tlib.errors import ProtocolError as TLibProtocolError
from emulator.tlib.framing import FrameDecoder, encode_frame
from emulator.tlib.messages import REQUEST_TYPES, decode, encode

# JSON values, as a peer could send them.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


# --- T-Lib framing and messages -------------------------------------------------------------------


@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=5))
def test_tlib_frames_from_any_bytes_give_values_or_protocol_errors(
    data: bytes, cuts: list[int]
) -> None:
    decoder = FrameDecoder(max_frame_size=1 << 16)
    for piece in _splits(data, cuts):
        for item in decoder.feed(piece):
            if isinstance(item, TLibProtocolError):
                assert item.message
            else:
                json.dumps(item)  # a frame's value is the JSON it carried


@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), min_size=1,
                max_size=4), st.lists(st.integers(min_value=0), max_size=6))  # fmt: skip
def test_tlib_frames_round_trip_however_the_stream_is_cut(
    objects: list[dict[str, Any]], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(obj) for obj in objects)
    decoder = FrameDecoder()
    decoded: list[Any] = []
    for piece in _splits(stream, cuts):
        decoded.extend(decoder.feed(piece))
    assert decoded == objects


request_names = st.sampled_from(sorted(REQUEST_TYPES))
wire_attributes = st.sampled_from(
    ["ReferenceID", "ThisDN", "OtherDN", "AgentID", "ConnID", "AgentWorkMode", "RegisterMode",
     "AddressType", "Password", "UserData", "Key", "DTMFDigits", "CallUuid"]
)  # fmt: skip


@given(request_names, st.dictionaries(wire_attributes, json_values, max_size=6))
@example("RequestSendDTMF", {"ReferenceID": 1, "ThisDN": "7001", "ConnID": "a", "DTMFDigits": 5})
def test_tlib_requests_from_any_attributes_decode_or_name_the_problem(
    name: str, attributes: dict[str, Any]
) -> None:
    try:
        request = decode({"message": name, **attributes})
    except TLibProtocolError as exc:
        assert exc.message  # names what is wrong
        return
    # What decodes encodes back to the same request.
    assert decode(encode(request)) == request  # type: ignore[arg-type]


@given(json_values)
def test_tlib_decode_of_any_json_value_is_a_message_or_a_protocol_error(value: Any) -> None:
    with contextlib.suppress(TLibProtocolError):
        decode(value)


@given(st.sampled_from(["TcHello", "TcOwnership", "TcDeskRequest", "TcDeskEvent", "TcCallRequest",
                        "TcCallEvent", "TcPhoneRegistration", "TcClientGone", "TcHeartbeat",
                        "Nope"]),
       st.dictionaries(st.text(max_size=10), json_values, max_size=6))  # fmt: skip
def test_tc_messages_from_any_fields_decode_or_are_protocol_errors(
    name: str, fields: dict[str, Any]
) -> None:
    with contextlib.suppress(TLibProtocolError):
        decode_tc({"message": name, **fields})


# --- Bayeux ---------------------------------------------------------------------------------------


@given(st.one_of(st.binary(max_size=120), json_values.map(json.dumps)))
def test_bayeux_payloads_parse_or_raise_the_protocol_error(payload: bytes | str) -> None:
    try:
        messages = parse_messages(payload)
    except BayeuxProtocolError:
        return
    # What parses encodes and parses back the same.
    assert parse_messages(encode_messages(messages)) == messages


@given(st.dictionaries(st.sampled_from(["channel", "id", "clientId", "successful", "data",
                                        "subscription", "connectionType", "advice", "error",
                                        "supportedConnectionTypes", "version", "ext"]),
                       json_values, max_size=6))  # fmt: skip
def test_bayeux_message_objects_parse_or_raise_the_protocol_error(obj: dict[str, Any]) -> None:
    try:
        message = BayeuxMessage.from_json(obj)
    except BayeuxProtocolError:
        return
    assert BayeuxMessage.from_json(message.to_json()) == message


# --- HTTP/1 in the proxy --------------------------------------------------------------------------

tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=10)


@given(st.binary(max_size=200))
@example(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
def test_http_heads_from_any_bytes_parse_or_raise_http_errors(data: bytes) -> None:
    for parse in (parse_request_head, parse_response_head):
        try:
            parse(data)
        except HttpError as exc:
            assert 400 <= exc.status < 600


@given(st.sampled_from(["GET", "POST", "HEAD", "DELETE"]),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_.?=&", min_size=0, max_size=20),
       st.lists(st.tuples(tokens, st.text(alphabet="abc xyz0123456789;=,", max_size=12)),
                max_size=5))  # fmt: skip
def test_a_well_formed_request_head_parses_to_what_was_written(
    method: str, path: str, fields: list[tuple[str, str]]
) -> None:
    lines = [f"{method} /{path} HTTP/1.1", "Host: lab", *(f"{k}: {v}" for k, v in fields)]
    head = parse_request_head(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert (head.method, head.target) == (method, f"/{path}")
    for key, value in fields:
        assert value.strip() in [v for k, v in head.headers if k.lower() == key.lower()]


@given(st.binary(max_size=30))
def test_chunk_size_lines_parse_or_raise_http_errors(line: bytes) -> None:
    with contextlib.suppress(HttpError):
        assert parse_chunk_size(line) >= 0


# --- SIP, SDP, RTP --------------------------------------------------------------------------------


@given(st.binary(max_size=300))
@example(b"INVITE sip:7001@lab SIP/2.0\r\nContent-Length: -1\r\n\r\n")
def test_sip_datagrams_parse_or_raise_sip_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(SipProtocolError):
        parse_datagram(data)


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=5))
def test_a_sip_stream_never_raises_whatever_arrives(data: bytes, cuts: list[int]) -> None:
    parser = StreamParser()
    for piece in _splits(data, cuts):
        for item in parser.feed(piece):
            assert not isinstance(item, Exception) or isinstance(item, SipProtocolError)


@given(st.one_of(st.binary(max_size=200), st.lists(
    st.sampled_from(["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1",
                     "c=IN IP6 ::1", "t=0 0", "m=audio 4000 RTP/AVP 0", "m=audio x RTP/AVP 0",
                     "m=video 5000 RTP/AVP 96", "a=rtpmap:0 PCMU/8000", "a=sendrecv", "junk"]),
    max_size=8).map(lambda lines: "\r\n".join(lines).encode())))  # fmt: skip
def test_sdp_bodies_parse_or_raise_sdp_errors(body: bytes) -> None:
    try:
        session = parse_sdp(body)
    except SipProtocolError:
        return
    assert 0 < session.port < 65536


@given(st.binary(max_size=80))
def test_rtp_packets_parse_or_raise_bad_rtp_packet(data: bytes) -> None:
    with contextlib.suppress(BadRtpPacket):
        RtpPacket.parse(data)


@given(st.integers(0, 127), st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1),
       st.integers(0, 2**32 - 1), st.binary(max_size=40), st.booleans(),
       st.lists(st.integers(0, 2**32 - 1), max_size=15))  # fmt: skip
def test_rtp_packets_round_trip(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool, csrcs: list[int]
) -> None:
    packet = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrcs))
    assert RtpPacket.parse(packet.to_bytes()) == packet


# --- the links API and scenario files -------------------------------------------------------------


@given(st.one_of(st.text(max_size=60), json_values.map(json.dumps)))
def test_links_api_bodies_parse_or_raise_links_errors(text: str) -> None:
    try:
        parse_new_link(parse_json(text))
    except LinksError as exc:
        assert exc.status in (400, 404, 409)


@given(st.dictionaries(st.sampled_from(["name", "listen", "upstream", "enabled", "protocol"]),
                       json_values, max_size=5))  # fmt: skip
def test_links_new_link_objects_parse_or_raise_links_errors(body: dict[str, Any]) -> None:
    with contextlib.suppress(LinksError):
        parse_new_link(body)


SCENARIO_LINES = [
    "name: s", "title: t", "setup:", "  agents:", "    agent1: {dn: '7001', node: gws1}",
    "steps:", "  - kill: gws1", "  - wait: 1", "  - cut: gws1-sip1", "outcomes:",
    "  - id: X.1", "    title: x", "    expect: {kind: owner, agent: agent1, node: sip1}",
    "    within: 5", "  - {", ": :", "\t", "lab: {time_scale: 0}", "  calls: []",
]  # fmt: skip


scenario_texts = st.lists(st.sampled_from(SCENARIO_LINES), max_size=14).map("\n".join)


@given(st.one_of(st.text(max_size=120), scenario_texts))
def test_scenario_files_load_or_raise_a_scenario_error_with_a_line(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(text)
        try:
            load_scenario(path, services=("gws1", "sip1"), links=("gws1-sip1",))
        except ScenarioError as exc:
            assert str(exc).startswith(str(path))
