"""SIP over real loopback UDP and TCP: transports, user agents, bad input on the wire."""

from __future__ import annotations

import asyncio
import socket

import pytest
from sip_test_helpers import new_request, raw_request

from emulator.common.addresses import Endpoint
from emulator.sip.builder import make_cancel
from emulator.sip.dialog import Dialog
from emulator.sip.errors import TransactionTimeout
from emulator.sip.message import Request, Response
from emulator.sip.parser import parse_datagram
from emulator.sip.transaction import TimerConfig
from emulator.sip.transport import TcpTransport, UdpTransport
from emulator.sip.ua import IncomingRequest, UserAgent
from tests.support import eventually

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


class Callee:
    """A UA that answers INVITE 180 then 200 (unless told to only ring), BYE and OPTIONS 200."""

    def __init__(self, *, answer: bool = True) -> None:
        self.answer = answer
        self.seen: list[str] = []
        self.ringing: IncomingRequest | None = None

    def __call__(self, incoming: IncomingRequest) -> None:
        method = incoming.request.method
        self.seen.append(method)
        if method == "INVITE":
            incoming.respond(180)
            self.ringing = incoming
            if self.answer:
                incoming.respond(200, headers=[("Contact", incoming.ua.contact("7002"))])
        elif method in ("BYE", "OPTIONS"):
            incoming.respond(200)
        elif method == "CANCEL" and incoming.cancels is not None:
            incoming.cancels.respond(487)


def make_transport(kind: str) -> UdpTransport | TcpTransport:
    return UdpTransport() if kind == "udp" else TcpTransport()


async def test_transports_bind_port_zero_and_report_the_bound_port() -> None:
    async with UdpTransport("127.0.0.1", 0) as udp, TcpTransport("127.0.0.1", 0) as tcp:
        assert udp.bound.host == "127.0.0.1" and udp.bound.port > 0
        assert tcp.bound.port > 0


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_invite_ringing_answer_ack_and_bye_complete(kind: str) -> None:
    callee = Callee()
    acks: list[Request] = []

    def on_request(incoming: IncomingRequest) -> None:
        if incoming.request.method == "ACK":
            acks.append(incoming.request)
        else:
            callee(incoming)

    a, b = make_transport(kind), make_transport(kind)
    async with (
        a,
        b,
        UserAgent(a, timers=FAST) as caller,
        UserAgent(b, timers=FAST, on_request=on_request),
    ):
        invite = new_request(caller, "INVITE", b.bound)
        provisional: list[Response] = []
        final = await caller.request(invite, b.bound, on_provisional=provisional.append)
        assert final.status == 200
        assert [r.status for r in provisional] == [180]
        assert provisional[0].to_tag == final.to_tag
        dialog = Dialog.as_uac(invite, final)
        caller.send_ack(dialog.ack(invite.cseq.number, via=caller.via()), b.bound)
        await eventually(lambda: len(acks) == 1)
        dialog, bye = dialog.request("BYE", via=caller.via())
        assert (await caller.request(bye, b.bound)).status == 200
    assert callee.seen == ["INVITE", "BYE"]


async def test_udp_request_is_retransmitted_until_answered() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        dest = Endpoint("127.0.0.1", peer.getsockname()[1])
        async with UdpTransport() as transport, UserAgent(transport, timers=FAST) as ua:
            request = new_request(ua, "OPTIONS", dest)
            pending = asyncio.create_task(ua.request(request, dest))
            loop = asyncio.get_running_loop()
            copies = []
            for _ in range(2):  # ignore the first copy, answer the retransmission
                data, addr = await loop.sock_recvfrom(peer, 65536)
                copies.append(parse_datagram(data))
            assert copies[0] == copies[1] == request
            reply = (
                request.to_bytes()
                .split(b"\r\n\r\n")[0]
                .replace(b"OPTIONS sip:7002@" + str(dest).encode() + b" SIP/2.0", b"SIP/2.0 200 OK")
                + b"\r\n\r\n"
            )
            await loop.sock_sendto(peer, reply, addr)
            response = await asyncio.wait_for(pending, 10)
    assert response.status == 200


async def test_udp_request_to_a_silent_peer_times_out_on_timer_f() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        dest = Endpoint("127.0.0.1", silent.getsockname()[1])
        timers = TimerConfig(t1=0.01, t2=0.04, t4=0.05)
        async with UdpTransport() as transport, UserAgent(transport, timers=timers) as ua:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TransactionTimeout, match="timer F"):
                await ua.request(new_request(ua, "REGISTER", dest), dest)
            assert loop.time() - started >= 0.64 - 0.01


async def udp_exchange(target: Endpoint, payload: bytes, timeout: float = 0.5) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.setblocking(False)
        raw.bind(("127.0.0.1", 0))
        await loop.sock_sendto(raw, payload, tuple(target))
        try:
            async with asyncio.timeout(timeout):
                data, _ = await loop.sock_recvfrom(raw, 65536)
        except TimeoutError:
            return None
        return data


async def test_udp_bad_input_is_answered_where_sip_expects_it_and_dropped_otherwise() -> None:
    async with UdpTransport() as transport, UserAgent(transport, on_request=Callee()):
        target = transport.bound
        assert await udp_exchange(target, b"\x00\x01garbage\xff") is None
        assert await udp_exchange(target, b"SIP/2.0 999 Nope\r\n\r\n") is None
        assert transport.stats.garbage_dropped == 2
        bad_line = raw_request().replace(b"OPTIONS sip:x@127.0.0.1 SIP/2.0", b"OPTIONS sip:x@h")
        answer = parse_datagram(await udp_exchange(target, bad_line, 5) or b"")
        assert isinstance(answer, Response) and answer.status == 400
        no_call_id = b"\r\n".join(
            line for line in raw_request().split(b"\r\n") if not line.startswith(b"Call-ID")
        )
        reply = await udp_exchange(target, no_call_id, 5) or b""
        # The answer cannot carry the Call-ID it never got, so it is read as bytes.
        assert reply.startswith(b"SIP/2.0 400 Missing Call-ID header\r\n")
        assert b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKraw\r\n" in reply
        bad_length = raw_request().replace(b"Content-Length: 0", b"Content-Length: 12")
        answer = parse_datagram(await udp_exchange(target, bad_length, 5) or b"")
        assert isinstance(answer, Response) and answer.status == 400
        unknown = raw_request("FROB", branch="z9hG4bKfrob")
        answer = parse_datagram(await udp_exchange(target, unknown, 5) or b"")
        assert isinstance(answer, Response) and answer.status == 501
        known = raw_request("SUBSCRIBE", branch="z9hG4bKsub")
        answer = parse_datagram(await udp_exchange(target, known, 5) or b"")
        assert isinstance(answer, Response) and answer.status == 405
        assert answer.headers.get_all("Allow") == ("ACK", "BYE", "CANCEL", "INVITE", "OPTIONS")
        fine = parse_datagram(await udp_exchange(target, raw_request(), 5) or b"")
        assert isinstance(fine, Response) and fine.status == 200
        assert transport.stats.bad_requests_answered == 3


async def tcp_connect(target: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(target.host, target.port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
    """Status, reason and head of the next response (a 400 to garbage has no SIP headers)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    _, status, reason = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:") and int(line.split(b":")[1]):
            await reader.readexactly(int(line.split(b":")[1]))
    return int(status), reason, head


async def test_tcp_handles_split_and_coalesced_messages() -> None:
    async with TcpTransport() as transport, UserAgent(transport, on_request=Callee()):
        reader, writer = await tcp_connect(transport.bound)
        first = raw_request(branch="z9hG4bKone")
        for index in range(0, len(first), 7):
            writer.write(first[index : index + 7])
            await writer.drain()
        assert (await read_response(reader))[0] == 200
        writer.write(raw_request(branch="z9hG4bKtwo") + raw_request(branch="z9hG4bKthree"))
        heads = [(await read_response(reader))[2], (await read_response(reader))[2]]
        assert [parse_datagram(head).branch for head in heads] == ["z9hG4bKtwo", "z9hG4bKthree"]
        writer.close()
        await writer.wait_closed()


async def test_tcp_garbage_is_answered_400_and_repeated_garbage_closes_the_connection() -> None:
    async with (
        TcpTransport(max_consecutive_errors=3) as transport,
        UserAgent(transport, on_request=Callee()),
    ):
        reader, writer = await tcp_connect(transport.bound)
        writer.write(b"hello there\r\n\r\n")
        assert (await read_response(reader))[0] == 400
        writer.write(raw_request())  # a good message resets the count
        assert (await read_response(reader))[0] == 200
        for _ in range(3):
            writer.write(b"nonsense\r\n\r\n")
        for _ in range(3):
            assert (await read_response(reader))[0] == 400
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()
        await eventually(lambda: transport.stats.connections_closed_for_garbage == 1)


async def test_tcp_bad_content_length_is_answered_400_and_closes_the_connection() -> None:
    async with TcpTransport() as transport, UserAgent(transport, on_request=Callee()):
        reader, writer = await tcp_connect(transport.bound)
        writer.write(raw_request().replace(b"Content-Length: 0", b"Content-Length: -5"))
        status, reason, _ = await read_response(reader)
        assert status == 400 and "Content-Length" in reason
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()


async def test_cancel_gets_200_and_the_invite_ends_with_487() -> None:
    callee = Callee(answer=False)
    async with (
        UdpTransport() as a,
        UdpTransport() as b,
        UserAgent(a, timers=FAST) as caller,
        UserAgent(b, timers=FAST, on_request=callee),
    ):
        invite = new_request(caller, "INVITE", b.bound)
        ringing = asyncio.Event()
        pending = asyncio.create_task(
            caller.request(invite, b.bound, on_provisional=lambda _: ringing.set())
        )
        await asyncio.wait_for(ringing.wait(), 5)
        cancel = make_cancel(invite)
        assert cancel.branch == invite.branch and cancel.cseq.number == invite.cseq.number
        assert (await caller.request(cancel, b.bound)).status == 200
        final = await asyncio.wait_for(pending, 5)
        assert final.status == 487
        unknown = Request("CANCEL", invite.uri, cancel.headers.replace("Via", caller.via()))
        assert (await caller.request(unknown, b.bound)).status == 481
    assert callee.seen == ["INVITE", "CANCEL"]
