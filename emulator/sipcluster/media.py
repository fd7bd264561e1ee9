"""The call node's RTP relay: every phone-facing stream of a node on one UDP port, bridged per call.

Implements the media half of the B2BUA (DESIGN §2.4, issue "RTP relay on the call node"): each
call has a customer leg and an agent leg; a packet arriving from one leg's peer is forwarded
unchanged to the other leg's peer (an RFC 3550 §7.1 translator without mixing) and measured per
direction with the ``ReceiveMeter`` the phones use. One port per node (not a port pair per call)
is what lets the lab route all of a phone's media through one static relay link per node.

Which leg a datagram belongs to is learned from where it comes from (symmetric RTP, RFC 4961):
1. a source already latched to a leg;
2. a leg whose SDP address is that source (a direct path, no relay);
3. a leg whose peer announced that SSRC (``a=ssrc``, RFC 5576), or that had it before from
   another source (the relay renewed its session) — the leg re-latches;
4. else the oldest leg with no usable SDP address (reached through a relay, or none given) still
   waiting for its first packet that announced no SSRC. A leg on a known direct path is only
   ever latched by rule 2, so a stranger's RTP cannot take its place.
Media to a leg goes to its latched source; before the first packet, only to its SDP address
when the path is direct (``send_before_latch``), never around the relay.

``MediaTable`` is sans-I/O (bytes, sources and ``now`` in; forwards and reports out);
``MediaPort`` is the asyncio socket. Datagrams that are not RTP v2 are counted and dropped.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any

from emulator.common.addresses import Endpoint
from emulator.common.udp import bind_datagram
from emulator.rtp.meter import ReceiveMeter
from emulator.rtp.packet import BadRtpPacket, RtpPacket


class Side(enum.StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"


@dataclass
class MediaLeg:
    call: str
    side: Side
    meter: ReceiveMeter
    expected: Endpoint | None = None  # the peer's SDP address
    send_before_latch: bool = True  # direct path: the SDP address may be used before latching
    announced_ssrc: int | None = None
    source: Endpoint | None = None  # latched: where the peer's RTP really comes from
    ssrc: int | None = None
    forwarded: int = 0  # packets sent to this leg's peer
    other: MediaLeg | None = None

    @property
    def target(self) -> Endpoint | None:
        if self.source is not None:
            return self.source
        return self.expected if self.send_before_latch else None


@dataclass
class MediaCounters:
    packets_received: int = 0
    packets_forwarded: int = 0
    bad_packets: int = 0  # not RTP v2: dropped
    unknown_source: int = 0  # RTP that belongs to no call: dropped
    no_target: int = 0  # the other leg's peer is not known yet: dropped
    relatched: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(frozen=True)
class Forward:
    data: bytes
    target: Endpoint


@dataclass
class _CallMedia:
    customer: MediaLeg
    agent: MediaLeg
    reports: dict[str, Any] | None = None


@dataclass
class MediaTable:
    gap_threshold: float = 1.0
    counters: MediaCounters = field(default_factory=MediaCounters)
    _calls: dict[str, _CallMedia] = field(default_factory=dict)
    _by_source: dict[Endpoint, MediaLeg] = field(default_factory=dict)
    _waiting: list[MediaLeg] = field(default_factory=list)  # legs without a first packet

    def open_call(self, call: str, now: float) -> tuple[MediaLeg, MediaLeg]:
        customer = MediaLeg(call, Side.CUSTOMER, ReceiveMeter(gap_threshold=self.gap_threshold))
        agent = MediaLeg(call, Side.AGENT, ReceiveMeter(gap_threshold=self.gap_threshold))
        customer.other, agent.other = agent, customer
        for leg in (customer, agent):
            leg.meter.start(now)
            self._waiting.append(leg)
        self._calls[call] = _CallMedia(customer, agent)
        return customer, agent

    def leg(self, call: str, side: Side) -> MediaLeg | None:
        media = self._calls.get(call)
        if media is None:
            return None
        return media.customer if side is Side.CUSTOMER else media.agent

    def close_call(self, call: str, now: float) -> dict[str, Any]:
        """Forget the call's legs and return its final per-direction report."""
        media = self._calls.pop(call, None)
        if media is None:
            return {}
        report = self.report(media, now)
        for leg in (media.customer, media.agent):
            leg.meter.stop(now)
            if leg.source is not None and self._by_source.get(leg.source) is leg:
                del self._by_source[leg.source]
            if leg in self._waiting:
                self._waiting.remove(leg)
        return report

    def call_report(self, call: str, now: float) -> dict[str, Any]:
        media = self._calls.get(call)
        return {} if media is None else self.report(media, now)

    def report(self, media: _CallMedia, now: float) -> dict[str, Any]:
        def direction(leg: MediaLeg) -> dict[str, Any]:
            assert leg.other is not None
            report = leg.meter.report(now, packets_sent=leg.other.forwarded).as_dict()
            report["source"] = str(leg.source) if leg.source is not None else None
            return report

        return {
            "customer_to_agent": direction(media.customer),
            "agent_to_customer": direction(media.agent),
        }

    def silent_call(self, call: str, now: float, timeout: float) -> Side | None:
        """The side whose media stopped for longer than ``timeout`` (after it had started)."""
        media = self._calls.get(call)
        if media is None or timeout <= 0:
            return None
        for leg in (media.customer, media.agent):
            if leg.meter.last_arrival is not None and leg.meter.silence(now) > timeout:
                return leg.side
        return None

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def receive(self, data: bytes, source: Endpoint, now: float) -> Forward | None:
        try:
            packet = RtpPacket.parse(data)
        except BadRtpPacket:
            self.counters.bad_packets += 1
            return None
        self.counters.packets_received += 1
        leg = self._by_source.get(source) or self._identify(packet, source)
        if leg is None:
            self.counters.unknown_source += 1
            return None
        leg.meter.on_packet(packet, now)
        leg.ssrc = packet.ssrc
        other = leg.other
        target = other.target if other is not None else None
        if other is None or target is None:
            self.counters.no_target += 1
            return None
        other.forwarded += 1
        self.counters.packets_forwarded += 1
        return Forward(data, target)

    def _identify(self, packet: RtpPacket, source: Endpoint) -> MediaLeg | None:
        direct = next((leg for leg in self._waiting if leg.expected == source), None)
        if direct is not None:
            return self._latch(direct, source)
        for media in self._calls.values():
            for leg in (media.customer, media.agent):
                if packet.ssrc in (leg.announced_ssrc, leg.ssrc):
                    return self._latch(leg, source)
        oldest = next(
            (
                leg
                for leg in self._waiting
                if leg.announced_ssrc is None
                and not (leg.send_before_latch and leg.expected is not None)
            ),
            None,
        )
        return self._latch(oldest, source) if oldest is not None else None

    def _latch(self, leg: MediaLeg, source: Endpoint) -> MediaLeg:
        if leg.source is not None:
            self.counters.relatched += 1
            if self._by_source.get(leg.source) is leg:
                del self._by_source[leg.source]
        leg.source = source
        self._by_source[source] = leg
        if leg in self._waiting:
            self._waiting.remove(leg)
        return leg


class MediaPort(asyncio.DatagramProtocol):
    """``async with MediaPort(host, port) as media``: the node's phone-facing RTP socket."""

    def __init__(self, host: str, port: int, *, gap_threshold: float = 1.0) -> None:
        self._host = host
        self._port = port
        self.table = MediaTable(gap_threshold=gap_threshold)
        self._transport: asyncio.DatagramTransport | None = None
        self._bound: Endpoint | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def bound(self) -> Endpoint:
        if self._bound is None:
            raise RuntimeError("media port is not started")
        return self._bound

    async def __aenter__(self) -> MediaPort:
        self._loop = asyncio.get_running_loop()
        self._transport, self._bound = await bind_datagram(lambda: self, self._host, self._port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        forward = self.table.receive(data, Endpoint(str(addr[0]), int(addr[1])), self.now())
        if forward is not None and self._transport is not None:
            self._transport.sendto(forward.data, (forward.target.host, forward.target.port))

    def error_received(self, exc: Exception) -> None:
        pass  # a peer's port is closed: its meter sees the silence
