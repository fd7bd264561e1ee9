"""The media side of "agents keep talking", without I/O: RTP sender state and a receive meter.

``RtpSender`` produces a 20 ms PCMU stream (RFC 3550 §5.1: sequence +1 and timestamp +160 per
packet at 8 kHz; 50 packets/s).  Packetisation is media, never a DR timer, so it is never scaled.

``ReceiveMeter`` measures what arrived: packets received, loss from the extended sequence numbers
(RFC 3550 §6.4.1 and Appendix A.1, simplified: a jump beyond ``MAX_DROPOUT`` restarts the
count, an SSRC change starts a new source), and the longest gap between received packets,
including the silence from the start of the measurement to the first packet and from the last
packet to the end.  The verdict "talking" is: RTP was sent and received, and no gap was longer
than ``gap_threshold`` (1 s by default).  Every method takes ``now`` from the I/O layer's clock.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any

from emulator.rtp.packet import RtpPacket

PACKET_INTERVAL = 0.020
SAMPLES_PER_PACKET = 160  # 20 ms at 8000 Hz
PCMU_SILENCE = b"\xff" * SAMPLES_PER_PACKET
MAX_DROPOUT = 3000
MAX_MISORDER = 100
DEFAULT_GAP_THRESHOLD = 1.0


class RtpSender:
    """Sequence and timestamp bookkeeping for one outgoing stream."""

    def __init__(
        self, *, ssrc: int | None = None, payload_type: int = 0, sequence: int | None = None
    ) -> None:
        self.ssrc = ssrc if ssrc is not None else secrets.randbits(32)
        self.payload_type = payload_type
        self._sequence = sequence if sequence is not None else secrets.randbelow(2**15)
        self._timestamp = secrets.randbits(31)
        self.packets_sent = 0

    def next_packet(self, payload: bytes = PCMU_SILENCE) -> RtpPacket:
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence=self._sequence,
            timestamp=self._timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=self.packets_sent == 0,
        )
        self._sequence = (self._sequence + 1) % 2**16
        self._timestamp = (self._timestamp + SAMPLES_PER_PACKET) % 2**32
        self.packets_sent += 1
        return packet


@dataclass(frozen=True)
class MediaReport:
    packets_sent: int
    packets_received: int
    packets_lost: int
    loss_ratio: float
    longest_gap_ms: float
    bad_packets: int
    duration_ms: float
    talking: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Source:
    base: int  # extended sequence number of the first packet of the current run
    highest: int  # highest extended sequence number seen
    received: int = 0
    closed_expected: int = 0  # expected packets of earlier runs (before a resync)
    closed_received: int = 0

    @property
    def expected(self) -> int:
        return self.closed_expected + self.highest - self.base + 1


class ReceiveMeter:
    """Counts, loss and gaps of the RTP received during one call."""

    def __init__(self, *, gap_threshold: float = DEFAULT_GAP_THRESHOLD) -> None:
        self.gap_threshold = gap_threshold
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.last_arrival: float | None = None
        self.packets_received = 0
        self.duplicates = 0
        self.bad_packets = 0
        self.longest_gap = 0.0
        self.gaps_over_threshold = 0
        self._sources: dict[int, _Source] = {}

    def start(self, now: float) -> None:
        if self.started_at is None:
            self.started_at = now

    def stop(self, now: float) -> None:
        if self.stopped_at is None and self.started_at is not None:
            self._close_gap(now)
            self.stopped_at = now

    def on_bad_packet(self) -> None:
        self.bad_packets += 1

    def silence(self, now: float) -> float:
        """How long nothing has arrived (since the start when nothing ever did)."""
        reference = self.last_arrival if self.last_arrival is not None else self.started_at
        return 0.0 if reference is None else max(0.0, now - reference)

    def on_packet(self, packet: RtpPacket, now: float) -> float:
        """Account one packet; returns the gap (s) that preceded it."""
        self.start(now)
        if self.stopped_at is not None:
            return 0.0
        gap = self.silence(now)
        self._close_gap(now)
        self.last_arrival = now
        self.packets_received += 1
        source = self._sources.get(packet.ssrc)
        if source is None:
            self._sources[packet.ssrc] = _Source(packet.sequence, packet.sequence, received=1)
            return gap
        highest_low = source.highest & 0xFFFF
        delta = (packet.sequence - highest_low) % 2**16
        if 0 < delta < MAX_DROPOUT:
            source.highest += delta
            source.received += 1
        elif delta == 0 or delta > 2**16 - MAX_MISORDER:
            # duplicate or reordered: it arrived, but does not extend the range
            if delta == 0:
                self.duplicates += 1
                self.packets_received -= 1
            else:
                source.received += 1
        else:
            # the sender restarted its sequence: close this run, start a new one
            source.closed_expected += source.highest - source.base + 1
            source.closed_received += source.received
            extended = source.highest + delta
            source.base = source.highest = extended
            source.received = 1
        return gap

    def _close_gap(self, now: float) -> None:
        gap = self.silence(now)
        self.longest_gap = max(self.longest_gap, gap)
        if gap > self.gap_threshold:
            self.gaps_over_threshold += 1

    @property
    def packets_lost(self) -> int:
        expected = sum(source.expected for source in self._sources.values())
        received = sum(
            source.received + source.closed_received for source in self._sources.values()
        )
        return max(0, expected - received)

    def report(self, now: float, *, packets_sent: int) -> MediaReport:
        end = self.stopped_at if self.stopped_at is not None else now
        longest = max(self.longest_gap, self.silence(end)) if self.started_at is not None else 0.0
        lost = self.packets_lost
        expected = lost + self.packets_received
        duration = 0.0 if self.started_at is None else end - self.started_at
        return MediaReport(
            packets_sent=packets_sent,
            packets_received=self.packets_received,
            packets_lost=lost,
            loss_ratio=round(lost / expected, 6) if expected else 0.0,
            longest_gap_ms=round(longest * 1000, 1),
            bad_packets=self.bad_packets,
            duration_ms=round(duration * 1000, 1),
            talking=packets_sent > 0
            and self.packets_received > 0
            and longest <= self.gap_threshold,
        )
