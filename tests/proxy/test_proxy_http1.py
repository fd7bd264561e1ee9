"""HTTP/1.1 heads and framing for the proxy: bytes in, heads/framing/errors out."""

from __future__ import annotations

import pytest

from emulator.proxy.errors import HttpError
from emulator.proxy.http1 import (
    BodyKind,
    Framing,
    ResponseHead,
    forwardable,
    parse_chunk_size,
    parse_request_head,
    parse_response_head,
    request_framing,
    response_framing,
    serialize_request,
)


def test_request_head_parses_fields_cookies_and_upgrade() -> None:
    head = parse_request_head(
        b"GET /workspace/v3/notifications?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
        b"Cookie: WORKSPACE_SESSIONID=abc; DRLAB_UPSTREAM=gws2\r\n\r\n"
    )
    assert head.method == "GET" and head.path == "/workspace/v3/notifications"
    assert head.is_upgrade and head.keep_alive
    assert head.cookies() == {"WORKSPACE_SESSIONID": "abc", "DRLAB_UPSTREAM": "gws2"}
    assert parse_request_head(serialize_request(head)) == head


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
        (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", 400, "malformed header field"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "obsolete line folding"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 request without Host header"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP version HTTP/2.0 not supported"),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed method"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400, "control character"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"),
    ],
)
def test_malformed_request_heads_are_refused_with_a_status(
    data: bytes, status: int, reason: str
) -> None:
    with pytest.raises(HttpError) as caught:
        parse_request_head(data)
    assert caught.value.status == status
    assert caught.value.reason.startswith(reason)


def test_request_framing_follows_rfc_9112() -> None:
    def framing(extra: bytes) -> Framing:
        return request_framing(
            parse_request_head(b"POST / HTTP/1.1\r\nHost: a\r\n" + extra + b"\r\n")
        )

    assert framing(b"") == Framing(BodyKind.NONE)
    assert framing(b"Content-Length: 12\r\n") == Framing(BodyKind.LENGTH, 12)
    assert framing(b"Transfer-Encoding: chunked\r\n") == Framing(BodyKind.CHUNKED)
    for bad in (
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: -1\r\n",
    ):
        with pytest.raises(HttpError) as caught:
            framing(bad)
        assert caught.value.status == 400
    with pytest.raises(HttpError) as caught:
        framing(b"Transfer-Encoding: gzip\r\n")
    assert caught.value.status == 501


def test_response_framing_knows_bodiless_responses() -> None:
    def head(status: int, fields: bytes = b"") -> ResponseHead:
        return parse_response_head(b"HTTP/1.1 %d X\r\n" % status + fields + b"\r\n")

    assert response_framing(head(204), "GET").kind is BodyKind.NONE
    assert response_framing(head(101), "GET").kind is BodyKind.NONE
    assert response_framing(head(200, b"Content-Length: 3\r\n"), "HEAD").kind is BodyKind.NONE
    assert response_framing(head(200), "GET").kind is BodyKind.UNTIL_CLOSE
    assert response_framing(head(200, b"Transfer-Encoding: chunked\r\n"), "GET").kind is (
        BodyKind.CHUNKED
    )


def test_malformed_upstream_status_line_is_a_502() -> None:
    with pytest.raises(HttpError) as caught:
        parse_response_head(b"HTTP/1.1 abc\r\n\r\n")
    assert caught.value.status == 502


def test_chunk_sizes_and_their_errors() -> None:
    assert parse_chunk_size(b"1a;name=value\r\n") == 26
    assert parse_chunk_size(b"0\r\n") == 0
    with pytest.raises(HttpError):
        parse_chunk_size(b"zz\r\n")


def test_hop_by_hop_fields_are_dropped_unless_upgrading() -> None:
    headers = (
        ("Connection", "Upgrade, X-Private"),
        ("Upgrade", "websocket"),
        ("Keep-Alive", "timeout=5"),
        ("X-Private", "secret"),
        ("Cookie", "a=b"),
    )
    assert forwardable(headers, keep_upgrade=False) == (("Cookie", "a=b"),)
    assert forwardable(headers, keep_upgrade=True) == (
        ("Connection", "Upgrade, X-Private"),
        ("Upgrade", "websocket"),
        ("Cookie", "a=b"),
    )
