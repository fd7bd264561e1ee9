"""T-Lib framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON (DESIGN §2.1).

``FrameDecoder`` is fed bytes as they arrive (split or coalesced) and yields whole JSON values or
the ``ProtocolError`` a bad frame deserves. A bad length prefix loses the frame boundaries, so it
is fatal; a frame whose body is not JSON is not (the next frame starts where its length says).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

from emulator.tlib.errors import ErrorCode, ProtocolError

HEADER = struct.Struct(">I")
MAX_FRAME_SIZE = 1 << 20


def encode_frame(obj: Any) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_frame_size
        self._broken = False

    def feed(self, data: bytes) -> Iterator[Any | ProtocolError]:
        """Consume ``data``; yield each complete frame's JSON value, or the error it is."""
        if self._broken:
            return
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length == 0 or length > self._max:
                self._broken = True
                self._buffer.clear()
                yield ProtocolError(
                    ErrorCode.MALFORMED_FRAME,
                    f"bad frame length {length} (must be 1..{self._max}); closing connection",
                    fatal=True,
                )
                return
            if len(self._buffer) < HEADER.size + length:
                return
            body = bytes(self._buffer[HEADER.size : HEADER.size + length])
            del self._buffer[: HEADER.size + length]
            try:
                yield json.loads(body.decode("utf-8"))
            except (ValueError, RecursionError) as exc:
                # ValueError covers bad UTF-8, bad JSON and over-long integers; RecursionError
                # deeply nested arrays: the frame is bad, the stream is still in step.
                yield ProtocolError(ErrorCode.MALFORMED_FRAME, f"frame is not UTF-8 JSON: {exc}")
