"""RTP packets (RFC 3550 §5.1): the fixed 12-byte header, CSRC list and padding, without I/O.

``RtpPacket.parse`` rejects anything that is not RTP version 2 with ``BadRtpPacket``; callers
count and drop those (a media stream never answers bad input).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")


class RtpError(Exception):
    """Root of the RTP core's exceptions."""


class BadRtpPacket(RtpError):
    """A datagram that is not a valid RTP v2 packet (dropped and counted, never answered)."""


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type < 128:
            raise ValueError(f"payload type {self.payload_type} outside 0..127")
        if not 0 <= self.sequence < 2**16:
            raise ValueError(f"sequence {self.sequence} outside 0..65535")
        if not 0 <= self.timestamp < 2**32 or not 0 <= self.ssrc < 2**32:
            raise ValueError("timestamp and SSRC are 32-bit unsigned")
        if len(self.csrcs) > 15:
            raise ValueError("at most 15 CSRCs")

    def to_bytes(self) -> bytes:
        first = (RTP_VERSION << 6) | len(self.csrcs)
        second = (0x80 if self.marker else 0) | self.payload_type
        header = HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc)
        csrcs = b"".join(struct.pack("!I", csrc) for csrc in self.csrcs)
        return header + csrcs + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < HEADER.size:
            raise BadRtpPacket(f"{len(data)} bytes is shorter than the RTP header")
        first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise BadRtpPacket(f"RTP version {version}, expected 2")
        csrc_count = first & 0x0F
        offset = HEADER.size + 4 * csrc_count
        if len(data) < offset:
            raise BadRtpPacket("CSRC list runs past the end of the packet")
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, HEADER.size)
        if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            if len(data) < offset + 4:
                raise BadRtpPacket("header extension runs past the end of the packet")
            (words,) = struct.unpack_from("!H", data, offset + 2)
            offset += 4 + 4 * words
        end = len(data)
        if first & 0x20:  # padding: the last octet counts the padding octets
            padding = data[-1]
            if padding == 0 or offset + padding > end:
                raise BadRtpPacket("bad padding length")
            end -= padding
        if offset > end:
            raise BadRtpPacket("header extension runs past the end of the packet")
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrcs=tuple(csrcs),
        )
