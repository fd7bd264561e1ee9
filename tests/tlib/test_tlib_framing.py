"""T-Lib framing (DESIGN §2.1): 4-byte big-endian length + UTF-8 JSON, fed bytes in any split."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.tlib.errors import ErrorCode, ProtocolError
from emulator.tlib.framing import HEADER, MAX_FRAME_SIZE, FrameDecoder, encode_frame

LOGIN = {"message": "RequestAgentLogin", "ReferenceID": 1, "ThisDN": "5001", "AgentID": "a1"}


def raw_frame(body: bytes) -> bytes:
    """A frame built by hand, so the decoder is not only checked against its own encoder."""
    return HEADER.pack(len(body)) + body


def decode_all(decoder: FrameDecoder, *chunks: bytes) -> list[Any]:
    return [item for chunk in chunks for item in decoder.feed(chunk)]


def test_frame_is_big_endian_length_then_compact_utf8_json() -> None:
    frame = encode_frame({"message": "EventRinging", "ThisDN": "5001"})

    body = b'{"message":"EventRinging","ThisDN":"5001"}'
    assert frame == len(body).to_bytes(4, "big") + body


def test_frame_round_trips_through_the_decoder() -> None:
    obj = {"message": "EventRegistered", "ThisDN": "5001", "Calls": [{"ConnID": "c1"}], "x": 1.5}

    assert decode_all(FrameDecoder(), encode_frame(obj)) == [obj]


def test_non_ascii_text_round_trips() -> None:
    obj = {"message": "EventError", "ErrorMessage": "numéro inconnu ☎"}

    assert decode_all(FrameDecoder(), encode_frame(obj)) == [obj]


def test_frame_split_at_every_byte_boundary_decodes_exactly_once() -> None:
    frame = encode_frame(LOGIN)

    for split in range(len(frame) + 1):
        decoder = FrameDecoder()
        first = decode_all(decoder, frame[:split])
        second = decode_all(decoder, frame[split:])
        assert first + second == [LOGIN], f"split at byte {split}"
        assert first == ([LOGIN] if split == len(frame) else []), f"split at byte {split}"


def test_frame_fed_one_byte_at_a_time_decodes_once() -> None:
    frame = encode_frame(LOGIN)
    decoder = FrameDecoder()

    items = decode_all(decoder, *(frame[i : i + 1] for i in range(len(frame))))

    assert items == [LOGIN]


def test_coalesced_frames_in_one_chunk_all_decode_in_order() -> None:
    objs = [{"message": "Heartbeat"}, LOGIN, {"message": "EventAgentReady", "ThisDN": "5001"}]

    items = decode_all(FrameDecoder(), b"".join(encode_frame(obj) for obj in objs))

    assert items == objs


def test_chunk_ending_inside_the_next_frame_keeps_the_rest_for_later() -> None:
    first, second = encode_frame(LOGIN), encode_frame({"message": "Heartbeat"})
    decoder = FrameDecoder()

    assert decode_all(decoder, first + second[:3]) == [LOGIN]
    assert decode_all(decoder, second[3:]) == [{"message": "Heartbeat"}]


def test_zero_length_is_a_fatal_malformed_frame_and_nothing_decodes_afterwards() -> None:
    decoder = FrameDecoder()

    items = decode_all(decoder, HEADER.pack(0) + encode_frame(LOGIN))

    assert len(items) == 1
    error = items[0]
    assert isinstance(error, ProtocolError)
    assert error.code is ErrorCode.MALFORMED_FRAME
    assert error.fatal
    assert "length 0" in error.message
    assert decode_all(decoder, encode_frame(LOGIN)) == []


def test_length_over_the_maximum_is_fatal_before_the_body_arrives() -> None:
    decoder = FrameDecoder(max_frame_size=64)

    items = decode_all(decoder, HEADER.pack(65))

    assert len(items) == 1
    error = items[0]
    assert isinstance(error, ProtocolError)
    assert error.code is ErrorCode.MALFORMED_FRAME
    assert error.fatal
    assert "65" in error.message
    assert decode_all(decoder, b"x" * 65 + encode_frame(LOGIN)) == []


def test_default_maximum_rejects_a_length_one_past_it() -> None:
    items = decode_all(FrameDecoder(), HEADER.pack(MAX_FRAME_SIZE + 1))

    assert len(items) == 1
    assert isinstance(items[0], ProtocolError)
    assert items[0].fatal


def test_frame_of_exactly_the_maximum_length_is_accepted() -> None:
    body = json.dumps({"message": "Heartbeat", "pad": ""}).encode()
    padded = body[:-2] + b"x" * (64 - len(body)) + body[-2:]
    assert len(padded) == 64

    items = decode_all(FrameDecoder(max_frame_size=64), raw_frame(padded))

    assert items == [json.loads(padded)]


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"message": "Heartbeat"', b"\xff\xfe{}", b'{"message": "caf\xe9"}'],
    ids=["not-json", "truncated-json", "invalid-utf8-start", "latin1-not-utf8"],
)
def test_bad_body_is_a_non_fatal_error_and_the_next_frame_still_decodes(body: bytes) -> None:
    decoder = FrameDecoder()

    items = decode_all(decoder, raw_frame(body) + encode_frame(LOGIN))

    assert len(items) == 2
    error, good = items
    assert isinstance(error, ProtocolError)
    assert error.code is ErrorCode.MALFORMED_FRAME
    assert not error.fatal
    assert "not UTF-8 JSON" in error.message
    assert good == LOGIN
    assert decode_all(decoder, encode_frame(LOGIN)) == [LOGIN]


def test_json_that_is_not_an_object_is_passed_up_for_the_message_layer_to_judge() -> None:
    assert decode_all(FrameDecoder(), raw_frame(b"[1,2]"), raw_frame(b"7")) == [[1, 2], 7]
