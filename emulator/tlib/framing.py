"""T-Lib framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON (DESIGN §2.1).

``FrameDecoder`` is fed bytes as they arrive (split or coalesced) and returns whole JSON values or
the ``ProtocolError`` a bad frame deserves. A bad length prefix loses the frame boundaries, so it
is fatal; a frame whose body is not JSON is not (the next frame starts where its length says).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

from emulator.common.jsonfast import make_encoder
from emulator.tlib.errors import ErrorCode, ProtocolError

HEADER = struct.Struct(">I")
MAX_FRAME_SIZE = 1 << 20

# One encoder and decoder for every frame (``json.dumps`` builds a new encoder per call).
_DECODER = json.JSONDecoder()
_encode = make_encoder()
_scan_once: Callable[[str, int], tuple[Any, int]] = getattr(_DECODER, "scan_once")  # noqa: B009


def _decode(text: str) -> Any:
    """``json.loads``, with the common case (nothing around the value) taken first."""
    try:
        value, end = _scan_once(text, 0)
        if end == len(text):
            return value
    except StopIteration:
        pass
    return _DECODER.decode(text)  # whitespace around the value, or the error a bad frame gets


def encode_frame(obj: Any) -> bytes:
    body = _encode(obj).encode()
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buffer = b""
        self._max = max_frame_size
        self._broken = False

    def feed(self, data: bytes) -> list[Any | ProtocolError]:
        """Consume ``data``; return each complete frame's JSON value, or the error it is."""
        if self._broken:
            return []
        # Usually a read holds whole frames and nothing is left over: parse ``data`` in place.
        buffer = self._buffer + data if self._buffer else data
        offset, end = 0, len(buffer)
        items: list[Any | ProtocolError] = []
        while end - offset >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer, offset)
            if length == 0 or length > self._max:
                self._broken = True
                self._buffer = b""
                items.append(
                    ProtocolError(
                        ErrorCode.MALFORMED_FRAME,
                        f"bad frame length {length} (must be 1..{self._max}); closing connection",
                        fatal=True,
                    )
                )
                return items
            start = offset + HEADER.size
            if end < start + length:
                break
            offset = start + length
            try:
                items.append(_decode(buffer[start:offset].decode("utf-8")))
            except (ValueError, RecursionError) as exc:
                # ValueError covers bad UTF-8, bad JSON and over-long integers; RecursionError
                # deeply nested arrays: the frame is bad, the stream is still in step.
                items.append(
                    ProtocolError(ErrorCode.MALFORMED_FRAME, f"frame is not UTF-8 JSON: {exc}")
                )
        self._buffer = buffer[offset:] if offset < end else b""
        return items
