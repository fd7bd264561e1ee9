"""Helpers shared by the SIP integration tests (real loopback sockets)."""

from __future__ import annotations

from emulator.common.addresses import Endpoint
from emulator.sip.builder import make_request, new_call_id, new_tag
from emulator.sip.message import Request
from emulator.sip.ua import UserAgent


def new_request(
    ua: UserAgent, method: str, dest: Endpoint, *, user: str = "7002", body: bytes = b""
) -> Request:
    return make_request(
        method,
        f"sip:{user}@{dest}",
        via=ua.via(),
        from_=f"<sip:caller@{ua.transport.bound.host}>;tag={new_tag()}",
        to=f"<sip:{user}@{dest.host}>",
        call_id=new_call_id("127.0.0.1"),
        cseq=1,
        contact=ua.contact("caller"),
        body=body,
        content_type="application/sdp" if body else None,
    )


def raw_request(
    method: str = "OPTIONS", *, extra: bytes = b"", branch: str = "z9hG4bKraw"
) -> bytes:
    return (
        (
            f"{method} sip:x@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch={branch}\r\n"
            "From: <sip:raw@127.0.0.1>;tag=r\r\n"
            "To: <sip:x@127.0.0.1>\r\n"
            f"Call-ID: raw-{branch}@127.0.0.1\r\n"
            f"CSeq: 1 {method}\r\n"
        ).encode()
        + extra
        + b"Content-Length: 0\r\n\r\n"
    )
