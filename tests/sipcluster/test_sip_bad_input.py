"""A peer's bad input to a node's SIP and RTP ports, sent while a call is in progress.

Issue "Bad input": malformed start lines, missing mandatory headers, bad Content-Length and
unknown methods are answered 400/405/501; garbage datagrams and RTP with a bad version are
dropped and counted in the node's control state; none of it disturbs the call in progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from emulator.common.addresses import Endpoint
from emulator.rtp.packet import RtpPacket
from emulator.sip.message import Response
from emulator.sip.parser import StreamParser, parse_datagram
from tests.sipcluster.sip_lab import SipLab, agent2_lab, ep, talk
from tests.support import eventually

HEADERS = {
    "Via": "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-bad{n}",
    "From": "<sip:intruder@127.0.0.1>;tag=x{n}",
    "To": "<sip:7002@127.0.0.1>",
    "Call-ID": "bad-{n}@127.0.0.1",
    "CSeq": "1 {method}",
}


def request(method: str = "OPTIONS", *, omit: str = "", start: str = "", extra: str = "") -> bytes:
    request.counter += 1  # type: ignore[attr-defined]
    n = request.counter  # type: ignore[attr-defined]
    lines = [start or f"{method} sip:7002@127.0.0.1 SIP/2.0"]
    lines += [
        f"{name}: {value.format(n=n, method=method)}"
        for name, value in HEADERS.items()
        if name != omit
    ]
    lines.append(extra or "Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


request.counter = 0  # type: ignore[attr-defined]

# (what is wrong, datagram, status it is answered with)
ANSWERED = [
    ("malformed start line", request(start="INVITE sip:7002@127.0.0.1 SIP/3.0"), 400),
    ("request line without a URI", request(start="OPTIONS SIP/2.0"), 400),
    *[(f"missing {name}", request(omit=name), 400) for name in HEADERS],
    ("non-numeric Content-Length", request(extra="Content-Length: many"), 400),
    ("Content-Length beyond the body", request(extra="Content-Length: 400"), 400),
    ("CSeq method not the request's", request(start="BYE sip:7002@127.0.0.1 SIP/2.0"), 400),
    ("unknown method", request("FROBNICATE"), 501),
    ("known method the node does not take", request("SUBSCRIBE"), 405),
]
GARBAGE = [
    b"\x00\x01\x02 binary noise",
    b"hello there\r\n\r\n",
    b"SIP/2.0 999 Not A Status\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n",
]


class Probe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.received.put_nowait(data)

    async def ask(self, data: bytes, dest: Endpoint) -> tuple[int, bytes]:
        """The status of the answer, and the answer (read raw: a 400 to a request without
        Via has no Via either, which a strict parser would refuse)."""
        assert self.transport is not None
        self.transport.sendto(data, dest)
        answer = await asyncio.wait_for(self.received.get(), 5)
        assert answer.startswith(b"SIP/2.0 "), answer
        return int(answer.split(b" ", 2)[1]), answer


@asynccontextmanager
async def probe() -> AsyncIterator[Probe]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Probe, local_addr=("127.0.0.1", 0))
    protocol.transport = transport
    try:
        yield protocol
    finally:
        transport.close()


def media_latched(state: dict[str, Any]) -> bool:
    calls = [c for c in state["sip"]["calls"] if c["state"] == "connected"]
    return len(calls) == 1 and all(d["source"] for d in calls[0]["media"].values())


@asynccontextmanager
async def call_in_progress() -> AsyncIterator[SipLab]:
    async with agent2_lab(login=False) as (lab, phone, pstn, _):
        call = await pstn.place({"to": "7002", "node": "sip2"})
        await eventually(lambda: pstn.find(call.id).state.value == "active", timeout=5)
        await eventually(lambda: phone.line.active_count() == 1, timeout=5)
        # Both legs have latched (symmetric RTP): a call in progress, not one still setting up,
        # whose relayed leg would latch the first RTP it sees (media.py rule 4).
        await eventually(lambda: media_latched(lab.state("sip2")), timeout=5)
        yield lab
        # The call went on through all of it: talking both ways at both phones and the node.
        assert pstn.find(call.id).state.value == "active"
        report = pstn.find(call.id).report()["media"]
        assert report["talking"] and report["packets_lost"] == 0, report
        phone_call = next(c for c in phone.reports() if c["state"] == "active")
        assert phone_call["media"]["talking"], phone_call
        node_call = next(c for c in lab.state("sip2")["sip"]["calls"] if c["state"] != "ended")
        assert node_call["state"] == "connected"
        assert all(direction["talking"] for direction in node_call["media"].values())


async def test_bad_sip_datagrams_are_answered_or_dropped_and_counted_during_a_call() -> None:
    async with call_in_progress() as lab, probe() as peer:
        node = lab.sip("sip2")
        for what, datagram, status in ANSWERED:
            answered, answer = await peer.ask(datagram, node)
            assert answered == status, f"{what}: {answer!r}"
            if status == 405:
                assert b"Allow: " in answer and b"REGISTER" in answer
            if not what.startswith("missing"):  # what could be copied makes a valid response
                assert isinstance(parse_datagram(answer), Response)
        assert peer.transport is not None
        for datagram in GARBAGE:
            peer.transport.sendto(datagram, node)
        await eventually(
            lambda: lab.state("sip2")["sip"]["counters"]["udp"]["garbage_dropped"] == len(GARBAGE),
            timeout=5,
        )
        assert peer.received.empty()  # garbage is never answered
        counters = lab.state("sip2")["sip"]["counters"]["udp"]
        assert counters["bad_requests_answered"] + counters["requests_rejected"] == len(ANSWERED)
        await talk(0.5)


async def test_bad_rtp_and_rtp_from_strangers_are_dropped_and_counted_during_a_call() -> None:
    async with call_in_progress() as lab, probe() as peer:
        media = ep(lab.nodes["sip2"].endpoints["media"])
        assert peer.transport is not None
        good = RtpPacket(0, 1, 160, 0xDEADBEEF, b"\xff" * 160).to_bytes()
        for datagram in (b"\x00" * 172, bytes([0x40]) + good[1:], b"\x80", b"INVITE junk"):
            peer.transport.sendto(datagram, media)  # versions 0 and 1, too short, not RTP
        peer.transport.sendto(good, media)  # RTP v2, but from nobody in a call
        await eventually(lambda: lab.state("sip2")["sip"]["media"]["bad_packets"] == 4, timeout=5)
        await eventually(
            lambda: lab.state("sip2")["sip"]["media"]["unknown_source"] >= 1, timeout=5
        )
        await talk(0.5)
        assert peer.received.empty()  # nothing was forwarded to the stranger


async def test_tcp_garbage_is_answered_and_a_broken_stream_closed_during_a_call() -> None:
    async with call_in_progress() as lab:
        node = lab.sip("sip2")
        reader, writer = await asyncio.open_connection(*node)
        parser = StreamParser()
        writer.write(request("FROBNICATE") + request(start="GET / HTTP/1.1"))
        answers: list[int] = []
        while len(answers) < 2:
            data = await asyncio.wait_for(reader.read(65536), 5)
            answers += [item.status for item in parser.feed(data) if isinstance(item, Response)]
        assert sorted(answers) == [400, 501]  # the transport answers 400 before the UA its 501
        writer.write(request(extra="Content-Length: nope"))  # framing lost: answered, closed
        rest = await asyncio.wait_for(reader.read(), 5)
        assert [m.status for m in parser.feed(rest) if isinstance(m, Response)] == [400]
        writer.close()
        tcp = lab.state("sip2")["sip"]["counters"]["tcp"]
        assert tcp["connections_closed_for_garbage"] == 1
        await talk(0.3)
