"""A sans-I/O T-Lib connection: bytes in, messages and protocol errors out; messages in, bytes out.

The I/O layer (a server for desktops, a client in GWS, a test) feeds received bytes to
``receive_data`` and writes whatever ``send`` returns. A peer's bad input never raises through the
caller: it comes out as a ``ProtocolError`` item, which the caller answers with ``EventError``
(``error_reply``); the connection counts them and asks to be closed (``should_close``) after a
fatal one or once the peer has sent ``max_bad_frames`` bad frames in a row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from emulator.tlib.addp import AddpTimer, Liveness
from emulator.tlib.errors import ProtocolError
from emulator.tlib.framing import FrameDecoder, encode_frame
from emulator.tlib.messages import Event, Heartbeat, Message, decode, encode, error_event

M = TypeVar("M")


class FramedConnection(Generic[M]):
    """A framed, heartbeating connection for any message vocabulary (T-Lib, TC-layer)."""

    def __init__(
        self,
        *,
        addp_interval: float,
        addp_timeout: float,
        now: float,
        max_bad_frames: int = 5,
        decoder: Callable[[Any], M],
        encoder: Callable[[M], dict[str, Any]],
    ) -> None:
        self._decode = decoder
        self._encode = encoder
        self._decoder = FrameDecoder()
        self._addp = AddpTimer.started(addp_interval, addp_timeout, now)
        self._max_bad_frames = max_bad_frames
        self._bad_in_a_row = 0
        self._fatal = False

    @property
    def should_close(self) -> bool:
        return self._fatal or self._bad_in_a_row >= self._max_bad_frames

    def receive_data(self, data: bytes, now: float) -> list[M | ProtocolError]:
        """The messages in ``data``; heartbeats only refresh liveness and are not returned."""
        self._addp.received(now)
        messages: list[M | ProtocolError] = []
        for item in self._decoder.feed(data):
            if isinstance(item, ProtocolError):
                messages.append(self._bad(item))
                continue
            try:
                message = self._decode(item)
            except ProtocolError as exc:
                messages.append(self._bad(exc))
                continue
            self._bad_in_a_row = 0
            if not isinstance(message, Heartbeat):
                messages.append(message)
        return messages

    def _bad(self, error: ProtocolError) -> ProtocolError:
        self._bad_in_a_row += 1
        self._fatal = self._fatal or error.fatal
        return error

    def send(self, message: M, now: float) -> bytes:
        self._addp.sent(now)
        return encode_frame(self._encode(message))

    def send_object(self, obj: Mapping[str, Any], now: float) -> bytes:
        """The frame of a message already in its wire form (relayed, not rebuilt)."""
        self._addp.sent(now)
        return encode_frame(obj)

    def send_heartbeat(self, now: float) -> bytes:
        self._addp.sent(now)
        return encode_frame({"message": Heartbeat.NAME})

    def poll(self, now: float) -> Liveness:
        return self._addp.poll(now)

    def next_deadline(self) -> float:
        return self._addp.next_deadline()

    @staticmethod
    def error_reply(error: ProtocolError) -> Event:
        return error_event(
            error.code, error.message, this_dn=error.this_dn, reference_id=error.reference_id
        )


class TLibConnection(FramedConnection[Message]):
    """The desktop-facing T-Lib connection (DESIGN §2.1)."""

    def __init__(
        self,
        *,
        addp_interval: float,
        addp_timeout: float,
        now: float,
        max_bad_frames: int = 5,
    ) -> None:
        super().__init__(
            addp_interval=addp_interval,
            addp_timeout=addp_timeout,
            now=now,
            max_bad_frames=max_bad_frames,
            decoder=decode,
            encoder=encode,
        )
