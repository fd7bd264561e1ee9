"""Asyncio RTP over UDP: one endpoint per call leg, paced by a shared 20 ms ticker.

``MediaTicker`` owns the one task that paces every stream of a process (a task per stream would
cost 50 wake-ups a second each); ``RtpEndpoint`` binds a UDP port on loopback, sends a 20 ms
PCMU stream to the far end, feeds what arrives into a ``ReceiveMeter`` and reports per call
(RFC 3550 packets; the verdict rules live in ``emulator.rtp.meter``).  Datagrams that are not
RTP v2 are counted and dropped.  Media pacing is never time-scaled.

Logged per call (``call`` is the phone's label): ``media.gap`` ``started`` once the silence
passes the gap threshold and ``ended`` when packets come back (``gap_ms`` the whole gap), and
``media.dropout`` for a shorter silence of at least ``DROPOUT``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.rtp.meter import (
    DEFAULT_GAP_THRESHOLD,
    PACKET_INTERVAL,
    MediaReport,
    ReceiveMeter,
    RtpSender,
)
from emulator.rtp.packet import BadRtpPacket, RtpPacket

MAX_BURST = 5  # packets sent at once to catch up after a late tick; older ones are skipped
# Silence heard between packets that is logged as ``media.dropout`` (under the gap threshold):
# 12 packets of 20 ms missed in a row, well above a loaded machine's scheduling jitter.
DROPOUT = 0.25


class MediaTicker:
    """Paces every registered stream every 20 ms from one owned task."""

    def __init__(self, interval: float = PACKET_INTERVAL) -> None:
        self.interval = interval
        self._streams: set[RtpEndpoint] = set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MediaTicker:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._streams.clear()

    def add(self, stream: RtpEndpoint) -> None:
        self._streams.add(stream)

    def discard(self, stream: RtpEndpoint) -> None:
        self._streams.discard(stream)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            now = loop.time()
            for stream in list(self._streams):
                stream.tick(now)
            next_tick += self.interval
            if next_tick < now:
                next_tick = now + self.interval
            await asyncio.sleep(max(0.0, next_tick - loop.time()))


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: RtpEndpoint) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._owner.datagram_received(data, Endpoint(str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # the far end's port is closed: the meter sees the silence


GapListener = Callable[[str, float], None]


class RtpEndpoint:
    """One RTP leg: ``async with RtpEndpoint(ticker=t) as rtp: rtp.start(remote)``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ticker: MediaTicker | None = None,
        gap_threshold: float = DEFAULT_GAP_THRESHOLD,
        latch: bool = False,
        log: JsonLog | None = None,
        label: str | None = None,
        on_gap: GapListener | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._ticker = ticker
        self._own_ticker: MediaTicker | None = None
        # latch: send to wherever the far end's RTP comes from (symmetric RTP through a relay).
        self.latch = latch
        self._log = log
        self.label = label
        self.on_gap = on_gap
        self.sender = RtpSender()
        self.meter = ReceiveMeter(gap_threshold=gap_threshold)
        self.remote: Endpoint | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._bound: Endpoint | None = None
        self._next_send: float | None = None
        self._in_gap = False
        self._final: MediaReport | None = None
        self.skipped_packets = 0

    @property
    def bound(self) -> Endpoint:
        if self._bound is None:
            raise RuntimeError("RTP endpoint is not started")
        return self._bound

    @property
    def running(self) -> bool:
        return self._next_send is not None

    async def __aenter__(self) -> RtpEndpoint:
        loop = asyncio.get_running_loop()
        if self._ticker is None:
            self._own_ticker = self._ticker = await MediaTicker().__aenter__()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _RtpProtocol(self), local_addr=(self._host, self._port)
            )
        except BaseException:
            if self._own_ticker is not None:
                await self._own_ticker.__aexit__(None, None, None)
            raise
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self._bound = Endpoint(str(sockname[0]), int(sockname[1]))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        if self._own_ticker is not None:
            await self._own_ticker.__aexit__(None, None, None)
            self._own_ticker = None

    def start(self, remote: Endpoint | None) -> None:
        """Start measuring now, and sending 50 packets/s once ``remote`` is known."""
        now = asyncio.get_running_loop().time()
        self.meter.start(now)
        if remote is not None:
            self.remote = remote
        self._next_send = now
        assert self._ticker is not None
        self._ticker.add(self)

    def stop(self) -> MediaReport:
        """Stop sending and freeze the report (idempotent)."""
        if self._final is None:
            now = asyncio.get_running_loop().time()
            if self._ticker is not None:
                self._ticker.discard(self)
            self._next_send = None
            self.meter.stop(now)
            self._final = self.meter.report(now, packets_sent=self.sender.packets_sent)
        return self._final

    def close(self) -> MediaReport:
        """Stop, release the socket, and return the final report (usable without ``async``)."""
        report = self.stop()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        return report

    def report(self) -> MediaReport:
        if self._final is not None:
            return self._final
        now = asyncio.get_running_loop().time()
        return self.meter.report(now, packets_sent=self.sender.packets_sent)

    def silence(self) -> float:
        return self.meter.silence(asyncio.get_running_loop().time())

    def tick(self, now: float) -> None:
        """Send what is due (called by the ticker every 20 ms) and watch for silence."""
        if self._next_send is None:
            return
        if self.remote is not None and self._transport is not None:
            due = 0
            while self._next_send <= now and due < MAX_BURST:
                self._transport.sendto(
                    self.sender.next_packet().to_bytes(), (self.remote.host, self.remote.port)
                )
                self._next_send += PACKET_INTERVAL
                due += 1
            if self._next_send <= now:
                skipped = int((now - self._next_send) / PACKET_INTERVAL) + 1
                self.skipped_packets += skipped
                self._next_send += skipped * PACKET_INTERVAL
        else:
            self._next_send = now + PACKET_INTERVAL
        if not self._in_gap and self.meter.silence(now) > self.meter.gap_threshold:
            self._in_gap = True
            self._gap_event("started", self.meter.silence(now))

    def datagram_received(self, data: bytes, source: Endpoint) -> None:
        if self._final is not None:
            return
        try:
            packet = RtpPacket.parse(data)
        except BadRtpPacket as error:
            self.meter.on_bad_packet()
            if self._log is not None and self.meter.bad_packets <= 3:
                self._log.warning(
                    "rtp.bad_packet", call=self.label, peer=str(source), reason=str(error)
                )
            return
        if self.latch:
            self.remote = source
        now = asyncio.get_running_loop().time()
        gap = self.meter.on_packet(packet, now)
        if self._in_gap:
            self._in_gap = False
            self._gap_event("ended", gap)
        elif gap >= DROPOUT and self._log is not None:
            # Shorter than a gap, but heard: the report plots it on the call (issue 17).
            self._log.event("media.dropout", call=self.label, gap_ms=round(gap * 1000))

    def _gap_event(self, state: str, gap: float) -> None:
        if self._log is not None:
            self._log.warning("media.gap", call=self.label, state=state, gap_ms=round(gap * 1000))
        if self.on_gap is not None:
            self.on_gap(state, gap)
