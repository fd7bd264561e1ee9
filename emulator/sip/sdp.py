"""The smallest useful SDP: one audio stream, PCMU (payload type 0), offer and answer.

Implements the subset of RFC 4566 (``v= o= s= c= t= m= a=``) and RFC 3264 (an answer keeps the
offer's audio stream and picks PCMU/8000) that the lab's phones, SIPp and baresip exchange.  A
body we cannot use raises ``SdpError`` (answered 488 Not Acceptable Here).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from emulator.sip.errors import SdpError

PCMU = 0
CONTENT_TYPE = "application/sdp"


@dataclass(frozen=True)
class AudioSession:
    """Where a party wants to receive RTP, and the payload types it accepts."""

    address: str
    port: int
    payload_types: tuple[int, ...] = (PCMU,)
    session_id: int = 0
    version: int = 0
    ptime_ms: int = 20

    def to_bytes(self, user: str = "drlab") -> bytes:
        session_id = self.session_id or secrets.randbelow(2**31) + 1
        formats = " ".join(str(pt) for pt in self.payload_types)
        lines = [
            "v=0",
            f"o={user} {session_id} {self.version} IN IP4 {self.address}",
            "s=drlab",
            f"c=IN IP4 {self.address}",
            "t=0 0",
            f"m=audio {self.port} RTP/AVP {formats}",
        ]
        if PCMU in self.payload_types:
            lines.append("a=rtpmap:0 PCMU/8000")
        lines += [f"a=ptime:{self.ptime_ms}", "a=sendrecv"]
        return ("\r\n".join(lines) + "\r\n").encode("ascii")


def parse_sdp(body: bytes) -> AudioSession:
    """The first audio stream of an SDP body, with its connection address."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    session_address: str | None = None
    media_address: str | None = None
    port: int | None = None
    payload_types: tuple[int, ...] = ()
    session_id = version = 0
    in_audio = seen_audio = False
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:].strip()
        if kind == "o":
            fields = value.split()
            if len(fields) >= 3 and fields[1].isdigit() and fields[2].isdigit():
                session_id, version = int(fields[1]), int(fields[2])
        elif kind == "c":
            connection = _connection_address(value)
            if in_audio:
                media_address = connection
            elif not seen_audio:
                session_address = connection
        elif kind == "m":
            in_audio = False
            fields = value.split()
            if fields and fields[0] == "audio" and not seen_audio:
                if len(fields) < 4 or not fields[1].isdigit():
                    raise SdpError(f"Bad m= line {value[:40]!r}")
                if not all(fmt.isdigit() for fmt in fields[3:]):
                    raise SdpError(f"Bad payload types in {value[:40]!r}")
                port = int(fields[1])
                payload_types = tuple(int(fmt) for fmt in fields[3:])
                in_audio = seen_audio = True
    if port is None:
        raise SdpError("SDP has no m=audio line")
    address = media_address or session_address
    if address is None:
        raise SdpError("SDP has no c= connection address")
    if not 0 <= port < 65536:
        raise SdpError(f"SDP audio port {port} out of range")
    return AudioSession(address, port, payload_types, session_id, version)


def answer_to(offer: AudioSession, address: str, port: int) -> AudioSession:
    """RFC 3264 §6: accept the offered audio stream with PCMU, or refuse with 488."""
    if offer.port == 0:
        raise SdpError("Offered audio stream is disabled (port 0)")
    if PCMU not in offer.payload_types:
        raise SdpError("No common codec: PCMU/8000 (payload type 0) not offered")
    return AudioSession(address, port, (PCMU,))


def _connection_address(value: str) -> str:
    fields = value.split()
    if len(fields) < 3 or fields[0] != "IN" or fields[1] not in ("IP4", "IP6"):
        raise SdpError(f"Bad c= line {value[:40]!r}")
    return fields[2].split("/")[0]
