"""Thin asyncio front end of the T-Lib core: a framed, heartbeating connection and a desktop client.

``FramedStream`` is an asyncio ``BufferedProtocol`` used by both sides (the SIP node's desktop and
TC-layer servers, and every client). It receives into one reusable buffer (``recv_into``: no
256 KiB allocation per read, as a ``StreamReader`` makes) and hands what each read held either to
a callback, in the same loop step (``deliver_to``: the hot path, no task wake-up per message), or
to whoever awaits ``receive`` (handshakes, tests). Its ADDP heartbeats run on a loop timer, and it
reports why it ended. ``TLibClient`` is what GWS, tests and benchmarks use to talk to a node:
``request`` sends a request and waits for the event echoing its ReferenceID, while every event is
also put on ``events``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from typing import Any, Generic, Self, TypeVar, cast

from emulator.tlib.addp import Liveness
from emulator.tlib.connection_core import FramedConnection
from emulator.tlib.errors import ProtocolError, TLibError
from emulator.tlib.messages import Event, Message, Request, decode, encode

M = TypeVar("M")

DEFAULT_ADDP_INTERVAL = 10.0
DEFAULT_ADDP_TIMEOUT = 10.0
READ_BUFFER_SIZE = 65536


class StreamClosed(TLibError, ConnectionError):
    """The T-Lib stream ended: peer closed, reset, or declared dead by ADDP."""


class FramedStream(asyncio.BufferedProtocol, Generic[M]):
    """One framed connection over an asyncio transport, with ADDP heartbeats both ways.

    Create it as the protocol of ``loop.create_connection``/``create_server``. Until
    ``deliver_to`` is called, received items queue up for ``receive``.
    """

    def __init__(
        self,
        *,
        decoder: Callable[[Any], M],
        encoder: Callable[[M], dict[str, Any]],
        addp_interval: float = DEFAULT_ADDP_INTERVAL,
        addp_timeout: float = DEFAULT_ADDP_TIMEOUT,
        max_bad_frames: int = 5,
        on_connected: Callable[[Any], None] | None = None,  # called with this stream
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.core = FramedConnection(
            addp_interval=addp_interval,
            addp_timeout=addp_timeout,
            now=self._loop.time(),
            max_bad_frames=max_bad_frames,
            decoder=decoder,
            encoder=encoder,
        )
        self.close_reason = ""
        self._on_connected = on_connected
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray(READ_BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._closed = False
        self._ended = self._loop.create_future()  # closed by us or lost, whichever came first
        self._lost = self._loop.create_future()  # the transport is gone
        self._addp_timer: asyncio.TimerHandle | None = None
        self._receiver: Callable[[list[M | ProtocolError]], None] | None = None
        self._received: list[M | ProtocolError] = []
        self._chunks = 0  # reads not yet returned by ``receive``
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._close_listeners: list[Callable[[], None]] = []

    # -- asyncio protocol callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._arm_addp()
        if self._on_connected is not None:
            self._on_connected(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        items = self.core.receive_data(bytes(self._view[:nbytes]), self._loop.time())
        if self._receiver is None:
            self._received += items
            self._chunks += 1
            self._wake_reader()
        elif items:
            self._receiver(items)

    def eof_received(self) -> bool:
        self.close("connection closed by peer")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(f"connection lost: {exc}" if exc is not None else "connection closed by peer")
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        # Backpressure: a peer that does not read what we write is not read from either.
        if self._writable is None or self._writable.done():
            self._writable = self._loop.create_future()
        if self._transport is not None and self._receiver is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if self._transport is not None and self._receiver is not None and not self._closed:
            self._transport.resume_reading()

    # -- the stream's API -------------------------------------------------------------------

    @property
    def peer(self) -> str:
        address = self._transport.get_extra_info("peername") if self._transport else None
        return f"{address[0]}:{address[1]}" if address else "?"

    @property
    def closed(self) -> bool:
        return self._closed

    def deliver_to(self, receiver: Callable[[list[M | ProtocolError]], None]) -> None:
        """From now on hand each read's items to ``receiver`` (items already queued first)."""
        self._receiver = receiver
        items, self._received, self._chunks = self._received, [], 0
        if items:
            receiver(items)

    def on_close(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` once the stream is closed or lost (at once if it already is)."""
        if self._closed:
            listener()
        else:
            self._close_listeners.append(listener)

    def send(self, message: M) -> None:
        if self._closed or self._transport is None:
            return
        self._transport.write(self.core.send(message, self._loop.time()))

    def send_object(self, obj: Mapping[str, Any]) -> None:
        """Send a message already in its wire form (a relayed one)."""
        if self._closed or self._transport is None:
            return
        self._transport.write(self.core.send_object(obj, self._loop.time()))

    async def drain(self) -> None:
        if self._writable is not None and not self._writable.done():
            await self._writable

    async def receive(self) -> list[M | ProtocolError]:
        """Wait for the next chunk of bytes and return what it held (maybe nothing yet)."""
        while not self._chunks:
            if self._closed:
                raise StreamClosed(self.close_reason)
            self._readable = self._loop.create_future()
            await self._readable
        items, self._received, self._chunks = self._received, [], 0
        return items

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    def _arm_addp(self) -> None:
        if self._closed:
            return
        deadline = max(self.core.next_deadline(), self._loop.time() + 0.001)
        self._addp_timer = self._loop.call_at(deadline, self._addp_due)

    def _addp_due(self) -> None:
        if self._closed or self._transport is None:
            return
        verdict = self.core.poll(self._loop.time())
        if verdict is Liveness.PEER_DEAD:
            # Abort: a graceful close would wait for a silent peer to read queued bytes.
            self.close("peer silent: ADDP timeout", abort=True)
            return
        if verdict is Liveness.SEND_HEARTBEAT:
            self._transport.write(self.core.send_heartbeat(self._loop.time()))
        self._arm_addp()

    def close(self, reason: str, *, abort: bool = False) -> None:
        if self._transport is not None and (abort or not self._closed):
            if abort:
                self._transport.abort()
            else:
                self._transport.close()
        self._end(reason)

    def _end(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        if self._addp_timer is not None:
            self._addp_timer.cancel()
        self._wake_reader()
        self._ended.set_result(None)
        listeners, self._close_listeners = self._close_listeners, []
        for listener in listeners:
            listener()

    async def wait_ended(self) -> None:
        """Until the stream is closed (by either side, or by ADDP) or its connection is lost."""
        await asyncio.shield(self._ended)

    async def wait_closed(self) -> None:
        """Until the connection is gone (a graceful close first writes out what is queued)."""
        await asyncio.shield(self._lost)


class TLibStream(FramedStream[Message]):
    """A T-Lib connection (desktop <-> SIP node) over an asyncio transport."""

    def __init__(
        self,
        *,
        addp_interval: float = DEFAULT_ADDP_INTERVAL,
        addp_timeout: float = DEFAULT_ADDP_TIMEOUT,
        max_bad_frames: int = 5,
        on_connected: Callable[[TLibStream], None] | None = None,
    ) -> None:
        super().__init__(
            decoder=decode,
            encoder=encode,
            addp_interval=addp_interval,
            addp_timeout=addp_timeout,
            max_bad_frames=max_bad_frames,
            on_connected=on_connected,
        )

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        addp_interval: float = DEFAULT_ADDP_INTERVAL,
        addp_timeout: float = DEFAULT_ADDP_TIMEOUT,
    ) -> TLibStream:
        loop = asyncio.get_running_loop()
        _, stream = await loop.create_connection(
            lambda: cls(addp_interval=addp_interval, addp_timeout=addp_timeout), host, port
        )
        return stream


class TLibClient:
    """A desktop's T-Lib connection to one SIP node."""

    def __init__(self, stream: TLibStream) -> None:
        self.stream = stream
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._reference_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Event]] = {}
        self._listeners: list[Callable[[Event], None]] = []
        stream.deliver_to(self._received)
        stream.on_close(self._fail_pending)

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        addp_interval: float = DEFAULT_ADDP_INTERVAL,
        addp_timeout: float = DEFAULT_ADDP_TIMEOUT,
    ) -> Self:
        stream = await TLibStream.connect(
            host, port, addp_interval=addp_interval, addp_timeout=addp_timeout
        )
        return cls(stream)

    def next_reference_id(self) -> int:
        return next(self._reference_ids)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    async def request(self, request: Request, timeout: float = 10.0) -> Event:
        """Send ``request`` and return the event that carries its ReferenceID back."""
        if self.stream.closed:
            raise StreamClosed(self.stream.close_reason)
        future: asyncio.Future[Event] = self._loop.create_future()
        self._pending[request.reference_id] = future
        # One timer handle rather than ``asyncio.timeout``: this is every request's hot path.
        expiry = self._loop.call_later(timeout, _expire, future)
        try:
            self.stream.send(request)
            await self.stream.drain()
            return await future
        finally:
            expiry.cancel()
            self._pending.pop(request.reference_id, None)

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """Consume ``events`` until one matches ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if predicate(event):
                    return event

    def _received(self, items: list[Message | ProtocolError]) -> None:
        for item in items:
            if isinstance(item, Event):
                self._dispatch(item)

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(StreamClosed(self.stream.close_reason))

    def _dispatch(self, event: Event) -> None:
        self.events.put_nowait(event)
        if self._listeners:
            for listener in list(self._listeners):
                listener(event)
        if event.reference_id is not None:
            future = self._pending.get(event.reference_id)
            if future is not None and not future.done():
                future.set_result(event)

    async def close(self) -> None:
        self.stream.close("client closed")
        await self.stream.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _expire(future: asyncio.Future[Event]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
