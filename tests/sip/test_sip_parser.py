"""Parser, serializer and validation of the sans-I/O SIP core: bytes in, messages or errors out."""

from __future__ import annotations

import pytest

from emulator.sip.builder import make_error_response, make_request, make_response
from emulator.sip.errors import (
    BadContentLength,
    MalformedMessage,
    MethodNotAllowed,
    MethodNotImplemented,
    MissingHeader,
    SipProtocolError,
)
from emulator.sip.headers import CSeq, Headers, NameAddr, SipUri, Via
from emulator.sip.message import Request, Response
from emulator.sip.parser import StreamParser, parse_datagram, validate_method

INVITE = (
    b"INVITE sip:7002@127.0.0.1:5062 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Customer" <sip:cust@127.0.0.1>;tag=111\r\n'
    b"To: <sip:7002@127.0.0.1>\r\n"
    b"Call-ID: call-1@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:cust@127.0.0.1:5070>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def without_header(raw: bytes, name: bytes) -> bytes:
    return b"\r\n".join(line for line in raw.split(b"\r\n") if not line.startswith(name + b":"))


def test_request_is_parsed_with_headers_and_body() -> None:
    message = parse_datagram(INVITE)
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.uri == "sip:7002@127.0.0.1:5062"
    assert message.call_id == "call-1@127.0.0.1"
    assert message.cseq == CSeq(1, "INVITE")
    assert message.branch == "z9hG4bKabc"
    assert message.from_tag == "111"
    assert message.to_tag is None
    assert message.body == b"v=0\n"


def test_header_lookup_ignores_case_and_accepts_compact_forms() -> None:
    raw = (
        b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
        b"f: <sip:b@127.0.0.1>;tag=9\r\n"
        b"t: <sip:a@127.0.0.1>\r\n"
        b"i: compact@host\r\n"
        b"cseq: 7 OPTIONS\r\n"
        b"l: 0\r\n\r\n"
    )
    message = parse_datagram(raw)
    assert message.call_id == "compact@host"
    assert message.header("CALL-ID") == "compact@host"
    assert message.header("i") == "compact@host"
    assert message.header("content-length") == "0"
    assert message.cseq.number == 7
    assert ("Call-ID", "compact@host") in list(message.headers)


def test_multi_value_via_on_one_line_is_split_in_order() -> None:
    raw = INVITE.replace(
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n",
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc, SIP/2.0/TCP 127.0.0.2:5080;"
        b"branch=z9hG4bKdef\r\nVia: SIP/2.0/UDP 127.0.0.3;branch=z9hG4bKghi\r\n",
    )
    message = parse_datagram(raw)
    assert [via.branch for via in message.vias] == ["z9hG4bKabc", "z9hG4bKdef", "z9hG4bKghi"]
    assert message.vias[1] == Via("TCP", "127.0.0.2", 5080, (("branch", "z9hG4bKdef"),))
    assert message.vias[2].port is None


def test_folded_header_lines_are_joined() -> None:
    raw = INVITE.replace(b"Subject", b"X").replace(
        b"Max-Forwards: 70\r\n", b"Subject: hello\r\n  world\r\nMax-Forwards: 70\r\n"
    )
    assert parse_datagram(raw).header("Subject") == "hello world"


def test_request_round_trips_through_serialisation() -> None:
    message = parse_datagram(INVITE)
    again = parse_datagram(message.to_bytes())
    assert again == message


def test_response_round_trips_and_content_length_follows_the_body() -> None:
    request = parse_datagram(INVITE)
    assert isinstance(request, Request)
    response = make_response(request, 200, to_tag="abc", body=b"hello", content_type="text/x")
    wire = response.to_bytes()
    assert b"Content-Length: 5\r\n" in wire
    parsed = parse_datagram(wire)
    assert isinstance(parsed, Response)
    assert parsed == response
    assert parsed.status == 200 and parsed.reason == "OK"


def test_response_builder_copies_mandatory_headers_and_adds_a_to_tag() -> None:
    request = parse_datagram(INVITE)
    assert isinstance(request, Request)
    response = make_response(request, 180)
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    for name in ("From", "Call-ID", "CSeq"):
        assert response.header(name) == request.header(name)
    assert response.to_tag
    assert response.to.uri == "sip:7002@127.0.0.1"
    assert response.header("Contact") is None
    assert make_response(request, 200, to_tag="fixed").to_tag == "fixed"
    assert make_response(request, 100).to_tag is None


def test_response_builder_keeps_an_existing_to_tag() -> None:
    request = parse_datagram(INVITE.replace(b"To: <sip:7002@127.0.0.1>", b"To: <sip:x@h>;tag=old"))
    assert isinstance(request, Request)
    assert make_response(request, 200, to_tag="new").to_tag == "old"


def test_datagram_with_extra_bytes_is_cut_at_content_length() -> None:
    message = parse_datagram(INVITE + b"trailing")
    assert message.body == b"v=0\n"


def test_datagram_without_content_length_takes_the_rest_as_body() -> None:
    message = parse_datagram(without_header(INVITE, b"Content-Length"))
    assert message.body == b"v=0\n"


@pytest.mark.parametrize(
    "start_line",
    [
        b"INVITE sip:7002@127.0.0.1 SIP/3.0",
        b"INVITE sip:7002@127.0.0.1",
        b"INVITE  SIP/2.0",
        b"INV(ITE sip:7002@127.0.0.1 SIP/2.0",
        b"INVITE not-a-uri SIP/2.0",
    ],
)
def test_malformed_request_line_is_a_400_that_can_still_be_answered(start_line: bytes) -> None:
    raw = start_line + INVITE[INVITE.index(b"\r\n") :]
    with pytest.raises(MalformedMessage) as caught:
        parse_datagram(raw)
    error = caught.value
    assert error.status_code == 400
    assert error.is_request is True
    response = make_error_response(error)
    assert response.status == 400
    assert response.header("Call-ID") == "call-1@127.0.0.1"
    assert response.header("Via") == "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport"


@pytest.mark.parametrize("header", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header_is_a_400_naming_it(header: str) -> None:
    with pytest.raises(MissingHeader) as caught:
        parse_datagram(without_header(INVITE, header.encode()))
    assert caught.value.status_code == 400
    assert caught.value.header == header
    assert header in caught.value.reason
    assert make_error_response(caught.value).reason == f"Missing {header} header"


@pytest.mark.parametrize("value", [b"abc", b"-1", b"99999999", b"4x"])
def test_bad_content_length_is_a_400(value: bytes) -> None:
    with pytest.raises(BadContentLength) as caught:
        parse_datagram(INVITE.replace(b"Content-Length: 4", b"Content-Length: " + value))
    assert caught.value.status_code == 400
    assert caught.value.is_request is True


def test_content_length_longer_than_the_datagram_is_a_400() -> None:
    with pytest.raises(BadContentLength, match="exceeds"):
        parse_datagram(INVITE.replace(b"Content-Length: 4", b"Content-Length: 40"))


def test_cseq_method_must_match_the_request_method() -> None:
    with pytest.raises(MalformedMessage, match="CSeq method"):
        parse_datagram(INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"CSeq: 1 INVITE", b"CSeq: one INVITE"),
        (b"Via: SIP/2.0/UDP", b"Via: HTTP/1.1/UDP"),
        (b"To: <sip:7002@127.0.0.1>", b"To: <sip:7002@127.0.0.1"),
        (b"Max-Forwards: 70", b"Max Forwards 70"),
    ],
)
def test_unreadable_mandatory_header_values_are_400(old: bytes, new: bytes) -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_datagram(INVITE.replace(old, new))
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    "garbage",
    [b"\x16\x03\x01\x02\x00hello", b"hello world", b"\xff\xfe\xfd", b"GET / HTTP/1.1\r\n\r\n"],
)
def test_garbage_is_not_answerable(garbage: bytes) -> None:
    with pytest.raises(SipProtocolError) as caught:
        parse_datagram(garbage)
    assert not caught.value.is_request


def test_malformed_status_line_is_never_answered() -> None:
    raw = b"SIP/2.0 2000 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n"
    with pytest.raises(MalformedMessage) as caught:
        parse_datagram(raw)
    assert caught.value.is_request is False


def test_unknown_method_is_501_and_known_but_unaccepted_method_is_405() -> None:
    allowed = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"})
    invite = parse_datagram(INVITE)
    assert isinstance(invite, Request)
    validate_method(invite, allowed)
    fancy = parse_datagram(INVITE.replace(b"INVITE", b"FROBNICATE"))
    assert isinstance(fancy, Request)
    with pytest.raises(MethodNotImplemented) as not_implemented:
        validate_method(fancy, allowed)
    assert make_error_response(not_implemented.value).status == 501
    register = parse_datagram(INVITE.replace(b"INVITE", b"REGISTER"))
    assert isinstance(register, Request)
    with pytest.raises(MethodNotAllowed) as not_allowed:
        validate_method(register, allowed)
    answer = make_error_response(not_allowed.value)
    assert answer.status == 405
    assert answer.header("Allow") == "ACK, BYE, CANCEL, INVITE, OPTIONS"


def test_stream_parser_reassembles_a_message_split_byte_by_byte() -> None:
    parser = StreamParser()
    results = []
    for index in range(len(INVITE)):
        results += parser.feed(INVITE[index : index + 1])
    assert results == [parse_datagram(INVITE)]


def test_stream_parser_separates_coalesced_messages_and_ignores_keepalives() -> None:
    parser = StreamParser()
    bye = INVITE.replace(b"INVITE", b"BYE").replace(b"Content-Length: 4", b"Content-Length: 0")
    bye = bye[: bye.index(b"\r\n\r\n") + 4]
    results = parser.feed(b"\r\n\r\n" + INVITE + b"\r\n" + bye + INVITE[:30])
    assert [getattr(m, "method", None) for m in results] == ["INVITE", "BYE"]
    assert parser.feed(INVITE[30:]) == [parse_datagram(INVITE)]


def test_stream_parser_answers_a_bad_message_and_carries_on() -> None:
    parser = StreamParser()
    broken = without_header(INVITE, b"Call-ID")
    results = parser.feed(broken + INVITE)
    assert isinstance(results[0], MissingHeader)
    assert not results[0].fatal_for_stream
    assert results[1] == parse_datagram(INVITE)


def test_stream_parser_gives_up_on_bad_content_length() -> None:
    parser = StreamParser()
    results = parser.feed(INVITE.replace(b"Content-Length: 4", b"Content-Length: x") + INVITE)
    assert len(results) == 1
    assert isinstance(results[0], BadContentLength)
    assert results[0].fatal_for_stream
    assert parser.broken
    assert parser.feed(INVITE) == []


def test_stream_parser_gives_up_on_an_endless_header_section() -> None:
    parser = StreamParser()
    results = parser.feed(b"A" * 20000)
    assert len(results) == 1 and results[0].fatal_for_stream  # type: ignore[union-attr]


def test_header_value_helpers() -> None:
    uri = SipUri.parse("sip:7002@127.0.0.1:5062;transport=udp")
    assert (uri.user, uri.host, uri.port, uri.param("transport")) == (
        "7002",
        "127.0.0.1",
        5062,
        "udp",
    )
    assert str(uri) == "sip:7002@127.0.0.1:5062;transport=udp"
    assert SipUri.parse("sip:host").user == ""
    with pytest.raises(MalformedMessage):
        SipUri.parse("http://x")
    addr = NameAddr.parse('"Agent Two" <sip:7002@h>;tag=xyz')
    assert (addr.display, addr.uri, addr.tag) == ("Agent Two", "sip:7002@h", "xyz")
    assert NameAddr.parse("sip:7002@h;tag=t").tag == "t"
    headers = Headers.of([("v", "a"), ("Via", "b"), ("X-Custom", "1")])
    assert headers.get_all("VIA") == ("a", "b")
    assert headers.replace("via", "c").items == (("Via", "c"), ("X-Custom", "1"))
    assert "x-custom" in headers


def test_request_builder_produces_a_parseable_request() -> None:
    request = make_request(
        "REGISTER",
        "sip:127.0.0.1",
        via="SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKx",
        from_="<sip:7002@127.0.0.1>;tag=a",
        to="<sip:7002@127.0.0.1>",
        call_id="reg@h",
        cseq=3,
        contact="<sip:7002@127.0.0.1:5062>",
        headers=[("Expires", "60")],
    )
    assert parse_datagram(request.to_bytes()) == request


def test_response_builder_keeps_the_peers_to_text_and_appends_the_tag() -> None:
    request = parse_datagram(INVITE.replace(b"To: <sip:7002@127.0.0.1>", b"To: 7002 <sip:7002@h>"))
    assert isinstance(request, Request)
    assert make_response(request, 180, to_tag="t1").header("To") == "7002 <sip:7002@h>;tag=t1"
