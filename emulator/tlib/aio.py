"""Thin asyncio front end of the T-Lib core: a framed, heartbeating stream and a desktop client.

``TLibStream`` is used by both sides (the SIP node's desktop server and every client); it owns its
heartbeat task and reports why it ended. ``TLibClient`` is what GWS, tests and benchmarks use to
talk to a node: ``request`` sends a request and waits for the event echoing its ReferenceID, while
every event is also put on ``events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar

from emulator.tlib.addp import Liveness
from emulator.tlib.connection import FramedConnection
from emulator.tlib.errors import ProtocolError
from emulator.tlib.messages import Event, Message, Request, decode, encode

M = TypeVar("M")

DEFAULT_ADDP_INTERVAL = 10.0
DEFAULT_ADDP_TIMEOUT = 10.0


class StreamClosed(ConnectionError):
    """The T-Lib stream ended: peer closed, reset, or declared dead by ADDP."""


class FramedStream(Generic[M]):
    """One framed connection over an asyncio stream, with ADDP heartbeats both ways."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        decoder: Callable[[Any], M],
        encoder: Callable[[M], dict[str, Any]],
        addp_interval: float = DEFAULT_ADDP_INTERVAL,
        addp_timeout: float = DEFAULT_ADDP_TIMEOUT,
        max_bad_frames: int = 5,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._reader = reader
        self._writer = writer
        self.core = FramedConnection(
            addp_interval=addp_interval,
            addp_timeout=addp_timeout,
            now=self._loop.time(),
            max_bad_frames=max_bad_frames,
            decoder=decoder,
            encoder=encoder,
        )
        self.close_reason = ""
        self._closed = asyncio.Event()
        self._heartbeat_task = asyncio.create_task(self._heartbeat())

    @property
    def peer(self) -> str:
        address = self._writer.get_extra_info("peername")
        return f"{address[0]}:{address[1]}" if address else "?"

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def send(self, message: M) -> None:
        if self.closed:
            return
        self._writer.write(self.core.send(message, self._loop.time()))

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    async def receive(self) -> list[M | ProtocolError]:
        """Wait for the next chunk of bytes and return what it held (maybe nothing yet)."""
        if self.closed:
            raise StreamClosed(self.close_reason)
        try:
            data = await self._reader.read(65536)
        except (ConnectionError, OSError) as exc:
            self.close(f"connection lost: {exc}")
            raise StreamClosed(self.close_reason) from None
        if not data:
            self.close("connection closed by peer")
            raise StreamClosed(self.close_reason)
        return list(self.core.receive_data(data, self._loop.time()))

    async def _heartbeat(self) -> None:
        while not self.closed:
            delay = max(0.0, self.core.next_deadline() - self._loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._closed.wait()
            if self.closed:
                return
            verdict = self.core.poll(self._loop.time())
            if verdict is Liveness.PEER_DEAD:
                # Abort: a graceful close would wait for a silent peer to read queued bytes.
                self.close("peer silent: ADDP timeout", abort=True)
                return
            if verdict is Liveness.SEND_HEARTBEAT:
                self._writer.write(self.core.send_heartbeat(self._loop.time()))

    def close(self, reason: str, *, abort: bool = False) -> None:
        if self.closed:
            return
        self.close_reason = reason
        self._closed.set()
        if abort:
            self._writer.transport.abort()
        else:
            self._writer.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()
        if asyncio.current_task() is not self._heartbeat_task:
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


class TLibStream(FramedStream[Message]):
    """A T-Lib connection (desktop <-> SIP node) over an asyncio stream."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        addp_interval: float = DEFAULT_ADDP_INTERVAL,
        addp_timeout: float = DEFAULT_ADDP_TIMEOUT,
        max_bad_frames: int = 5,
    ) -> None:
        super().__init__(
            reader,
            writer,
            decoder=decode,
            encoder=encode,
            addp_interval=addp_interval,
            addp_timeout=addp_timeout,
            max_bad_frames=max_bad_frames,
        )


class TLibClient:
    """A desktop's T-Lib connection to one SIP node."""

    def __init__(self, stream: TLibStream) -> None:
        self.stream = stream
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._reference_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Event]] = {}
        self._listeners: list[Callable[[Event], None]] = []
        self._reader_task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        addp_interval: float = DEFAULT_ADDP_INTERVAL,
        addp_timeout: float = DEFAULT_ADDP_TIMEOUT,
    ) -> Self:
        reader, writer = await asyncio.open_connection(host, port)
        stream = TLibStream(reader, writer, addp_interval=addp_interval, addp_timeout=addp_timeout)
        return cls(stream)

    def next_reference_id(self) -> int:
        return next(self._reference_ids)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    async def request(self, request: Request, timeout: float = 10.0) -> Event:
        """Send ``request`` and return the event that carries its ReferenceID back."""
        if self.stream.closed:
            raise StreamClosed(self.stream.close_reason)
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._pending[request.reference_id] = future
        try:
            async with asyncio.timeout(timeout):
                self.stream.send(request)
                await self.stream.drain()
                return await future
        finally:
            self._pending.pop(request.reference_id, None)

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """Consume ``events`` until one matches ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if predicate(event):
                    return event

    async def _read_loop(self) -> None:
        try:
            while True:
                for item in await self.stream.receive():
                    if isinstance(item, Event):
                        self._dispatch(item)
        except StreamClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(StreamClosed(self.stream.close_reason))

    def _dispatch(self, event: Event) -> None:
        self.events.put_nowait(event)
        for listener in list(self._listeners):
            listener(event)
        if event.reference_id is not None:
            future = self._pending.get(event.reference_id)
            if future is not None and not future.done():
                future.set_result(event)

    async def close(self) -> None:
        self.stream.close("client closed")
        await self.stream.wait_closed()
        self._reader_task.cancel()
        await asyncio.gather(self._reader_task, return_exceptions=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
