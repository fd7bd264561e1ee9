"""The call node's RTP relay: two UDP legs, what arrives on one leaves by the other.

Implements the media half of a B2BUA (DESIGN §2.4, issue "RTP relay on the call node"): the
customer's leg and the agent's leg each get a loopback port (offered in that leg's SDP); packets
are forwarded unchanged (RFC 3550 translator without mixing, §7.1) and measured per direction
with the same ``ReceiveMeter`` the phones use, so a node can report loss and gaps too.  Each leg
sends to the address its SDP gave and, with ``latch`` (default), to wherever that leg's media
really comes from, which keeps media flowing through the fault relay's UDP links.  Datagrams
that are not RTP v2 are counted and dropped, never forwarded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.rtp.meter import DEFAULT_GAP_THRESHOLD, MediaReport, ReceiveMeter
from emulator.rtp.packet import BadRtpPacket, RtpPacket


class _Leg(asyncio.DatagramProtocol):
    def __init__(self, relay: RtpRelay, name: str, gap_threshold: float) -> None:
        self.relay = relay
        self.name = name
        self.meter = ReceiveMeter(gap_threshold=gap_threshold)
        self.remote: Endpoint | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.bound: Endpoint | None = None
        self.forwarded = 0  # packets sent out of this leg

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.relay.received(self, data, Endpoint(str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # the far end's port is closed: the meter sees the silence


def _protocol_factory(leg: _Leg) -> Callable[[], _Leg]:
    return lambda: leg


class RtpRelay:
    """``async with RtpRelay() as relay``: ``relay.a.bound`` / ``relay.b.bound`` go into SDP."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        latch: bool = True,
        gap_threshold: float = DEFAULT_GAP_THRESHOLD,
        log: JsonLog | None = None,
        label: str | None = None,
    ) -> None:
        self._host = host
        self.latch = latch
        self._log = log
        self.label = label
        self.a = _Leg(self, "a", gap_threshold)
        self.b = _Leg(self, "b", gap_threshold)
        self._final: dict[str, MediaReport] | None = None

    async def __aenter__(self) -> RtpRelay:
        loop = asyncio.get_running_loop()
        try:
            for leg in (self.a, self.b):
                transport, _ = await loop.create_datagram_endpoint(
                    _protocol_factory(leg), local_addr=(self._host, 0)
                )
                leg.transport = transport
                sockname = transport.get_extra_info("sockname")
                leg.bound = Endpoint(str(sockname[0]), int(sockname[1]))
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, *, a_remote: Endpoint | None = None, b_remote: Endpoint | None = None) -> None:
        """Start measuring; the remotes are the addresses each leg's SDP gave (if known)."""
        now = asyncio.get_running_loop().time()
        for leg, remote in ((self.a, a_remote), (self.b, b_remote)):
            if remote is not None:
                leg.remote = remote
            leg.meter.start(now)

    def close(self) -> dict[str, MediaReport]:
        """Stop relaying, release both ports, and return the per-direction reports."""
        if self._final is None:
            now = asyncio.get_running_loop().time()
            for leg in (self.a, self.b):
                leg.meter.stop(now)
            self._final = self._reports(now)
        for leg in (self.a, self.b):
            if leg.transport is not None:
                leg.transport.close()
                leg.transport = None
        return self._final

    def report(self) -> dict[str, MediaReport]:
        """``a_to_b``: media that came in on leg a (and went out of b); ``b_to_a`` likewise."""
        if self._final is not None:
            return self._final
        return self._reports(asyncio.get_running_loop().time())

    def received(self, leg: _Leg, data: bytes, source: Endpoint) -> None:
        if self._final is not None:
            return
        try:
            packet = RtpPacket.parse(data)
        except BadRtpPacket as error:
            leg.meter.on_bad_packet()
            if self._log is not None and leg.meter.bad_packets <= 3:
                self._log.warning(
                    "rtp.bad_packet",
                    call=self.label,
                    leg=leg.name,
                    peer=str(source),
                    reason=str(error),
                )
            return
        if self.latch:
            leg.remote = source
        leg.meter.on_packet(packet, asyncio.get_running_loop().time())
        other = self.b if leg is self.a else self.a
        if other.remote is not None and other.transport is not None:
            other.transport.sendto(data, (other.remote.host, other.remote.port))
            other.forwarded += 1

    def _reports(self, now: float) -> dict[str, MediaReport]:
        return {
            "a_to_b": self.a.meter.report(now, packets_sent=self.b.forwarded),
            "b_to_a": self.b.meter.report(now, packets_sent=self.a.forwarded),
        }
