"""Bayeux wire model: JSON in, frozen messages out, and back, with precise errors."""

from __future__ import annotations

import json

import pytest

from emulator.bayeux import channels
from emulator.bayeux.messages import (
    Advice,
    MalformedMessage,
    Message,
    PayloadError,
    Reconnect,
    decode_payload,
    encode_messages,
    parse_messages,
)


def test_message_round_trips_every_field_and_unknown_ones() -> None:
    raw = {
        "channel": "/meta/handshake",
        "id": "1",
        "clientId": "abc",
        "successful": True,
        "version": "1.0",
        "minimumVersion": "1.0",
        "supportedConnectionTypes": ["websocket", "long-polling"],
        "advice": {"reconnect": "retry", "interval": 0, "timeout": 30000, "hosts": ["h"]},
        "ext": {"ack": True},
        "authSuccessful": True,
    }
    (message,) = parse_messages(json.dumps([raw]))
    assert message.advice == Advice(
        reconnect=Reconnect.RETRY, timeout_ms=30000, interval_ms=0, extra={"hosts": ["h"]}
    )
    assert message.extra == {"authSuccessful": True}
    assert json.loads(encode_messages([message])) == [raw]


def test_a_single_object_payload_is_accepted() -> None:
    assert decode_payload(b'{"channel": "/a", "data": 1}') == [{"channel": "/a", "data": 1}]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\xff\xfe", "400::payload is not UTF-8"),
        (b"[", "400::payload is not valid JSON (Expecting value)"),
        (b"42", "400::payload must be a JSON array of Bayeux message objects"),
        (b"[]", "400::payload has no messages"),
    ],
)
def test_unusable_payloads_name_the_problem(payload: bytes, error: str) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_payload(payload)
    assert caught.value.error == error


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"id": "1"}, "400::message has no channel"),
        ({"channel": 3}, "400::channel must be a string"),
        ({"channel": "/a", "clientId": 5}, "400:/a:clientId must be a string"),
        ({"channel": "/a", "advice": {"reconnect": "maybe"}}, "400:maybe:advice.reconnect"),
        ({"channel": "/a", "advice": {"timeout": "soon"}}, "400::advice.timeout must be"),
        ({"channel": "/meta/subscribe", "subscription": [1]}, "400:/meta/subscribe:subscription"),
        ({"channel": "/a", "successful": "yes"}, "400:/a:successful must be a boolean"),
        ({"channel": "/a", "id": True}, "400:/a:id must be a string or an integer"),
    ],
)
def test_malformed_messages_name_the_field(raw: dict[str, object], error: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        Message.from_json(raw)
    assert caught.value.error.startswith(error)


def test_advice_overlay_keeps_fields_the_newer_advice_lacks() -> None:
    base = Advice(reconnect=Reconnect.RETRY, timeout_ms=60000, interval_ms=0)
    assert base.overlay(Advice(reconnect=Reconnect.HANDSHAKE)) == Advice(
        reconnect=Reconnect.HANDSHAKE, timeout_ms=60000, interval_ms=0
    )


def test_channel_patterns_match_one_or_many_trailing_segments() -> None:
    assert channels.matches("/foo/*", "/foo/bar")
    assert not channels.matches("/foo/*", "/foo/bar/baz")
    assert not channels.matches("/foo/*", "/foo")
    assert channels.matches("/foo/**", "/foo/bar/baz")
    assert not channels.matches("/foo/**", "/foobar/baz")
    assert channels.covers("/workspace/v3/**", "/workspace/v3/media/*")
    assert not channels.covers("/workspace/v3/*", "/workspace/v3/media/chat")


def test_channel_names_follow_the_spec_grammar() -> None:
    assert channels.is_valid_name("/workspace/v3/voice")
    assert not channels.is_valid_name("/a/*")
    assert channels.is_valid_pattern("/a/**")
    assert not channels.is_valid_pattern("/a/**/b")
    assert not channels.is_valid_pattern("no-slash")
    assert not channels.is_valid_pattern("/a//b")
    assert channels.kind_of("/service/echo") is channels.ChannelKind.SERVICE
