"""The proxy's fast lane: plain keep-alive requests forwarded inside the callbacks that read them.

Every client and upstream connection is a ``StreamReaderProtocol`` whose bytes either feed its
stream — the general path of :mod:`emulator.proxy.server`, run by the connection's task: any body
framing, ``100-continue``, upgrades, the status page, failover, every error answer — or, while the
connection is in the fast lane, are parsed here and written straight to the other side, with no
task wake-up per request or response. The lane takes only the common case: a request whose body
is absent or ``Content-Length``-framed and already buffered, pinned to a healthy upstream that has
an idle kept-alive connection, answered by a final response with a small ``Content-Length`` body.
Anything else goes back to the stream (the request's bytes and all that followed, or the response's
head and all that followed) and the connection's task takes over, so each edge case keeps one
implementation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol, cast

from emulator.proxy.config import ProxyConfig
from emulator.proxy.errors import HttpError
from emulator.proxy.forwarding import bad_gateway_response, client_head, upstream_request
from emulator.proxy.http1 import (
    BodyKind,
    RequestHead,
    parse_request_head,
    parse_response_head,
    request_framing,
    response_framing,
    serialize_request,
)
from emulator.proxy.streams import read_ahead
from emulator.proxy.upstream_conn import UpstreamConn, hand_back
from emulator.proxy.upstreams import Choice, UpstreamPool, UpstreamState

# Response bodies up to this size are read whole and sent with their head.
COALESCED_BODY = 65536


def buffered_size(reader: asyncio.StreamReader) -> int:
    """Bytes the stream holds that nobody has read yet."""
    return len(read_ahead(reader))


class LaneHost(Protocol):
    """What the fast lane needs of the proxy that accepted its connections."""

    config: ProxyConfig
    pool: UpstreamPool

    @property
    def closing(self) -> bool: ...

    def serve(self, side: ClientSide) -> None:
        """Start the connection's task: the general path, run when the lane hands over."""

    def passive_failure(self, name: str, reason: str, upstreams: dict[str, UpstreamConn]) -> None:
        """An upstream failed a request of a connection: mark it and drop its connections."""


@dataclass(frozen=True)
class Respond:
    """Job for the connection's task: the answer to a forwarded request is its to read."""

    request: RequestHead
    choice: Choice
    conn: UpstreamConn


class Close:
    """Job for the connection's task: the connection is done."""


Job = Respond | Close | None  # None: read the next request from the stream


@dataclass
class _InFlight:
    request: RequestHead
    raw: bytes  # as received, to be replayed if the kept-alive upstream had gone
    choice: Choice
    conn: UpstreamConn
    timer: asyncio.TimerHandle


class ClientSide(asyncio.StreamReaderProtocol):
    """A client connection of the proxy, in the fast lane or handed to its task."""

    def __init__(
        self, proxy: LaneHost, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(reader, loop=loop)
        self.proxy = proxy
        self.loop = loop
        self.reader = reader
        self.writer: asyncio.StreamWriter | None = None
        self.transport: asyncio.Transport | None = None
        self.client_ip = "unknown"
        self.upstreams: dict[str, UpstreamConn] = {}
        self.fast = True
        self.buffer = bytearray()
        self._eof = False
        self._paused = False
        self._flight: _InFlight | None = None
        self._job: Job = None
        self._waiter: asyncio.Future[Job] | None = None

    # --- protocol callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.writer = asyncio.StreamWriter(self.transport, self, self.reader, self.loop)
        peer = transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else "unknown"
        self.proxy.serve(self)

    def data_received(self, data: bytes) -> None:
        if not self.fast:
            super().data_received(data)
            return
        self.buffer += data
        if self._flight is None:
            self._forward()
        elif len(self.buffer) > self._buffer_limit() and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.fast:
            self._eof = True
            if self._flight is None:
                self._to_task(None)
            return True
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        flight = self._flight
        if flight is not None:
            self._land(flight)
            self._drop(flight.conn)  # its answer has nowhere to go
        if self.fast:
            self._to_task(None)
        super().connection_lost(exc)

    # --- the connection's task ---------------------------------------------------------------

    async def next_job(self) -> Job:
        """Wait until the fast lane hands the connection to its task, and say why."""
        if self.fast:
            self._waiter = self.loop.create_future()
            try:
                return await self._waiter
            finally:
                self._waiter = None
        job, self._job = self._job, None
        return job

    def may_go_fast(self) -> bool:
        return not (
            self.proxy.closing
            or self.reader.at_eof()
            or buffered_size(self.reader)
            or self.reader.exception() is not None
        )

    def go_fast(self) -> None:
        self.fast = True

    def _to_task(self, job: Job) -> None:
        """Leave the fast lane: the stream gets the unconsumed bytes, the task gets ``job``."""
        self.fast = False
        hand_back(self.buffer, self.reader)
        if self._eof:
            self.reader.feed_eof()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(job)
        else:
            self._job = job

    # --- requests ----------------------------------------------------------------------------

    def _buffer_limit(self) -> int:
        return self.proxy.config.max_head + self.proxy.config.max_buffered_body

    def _forward(self) -> None:
        """Forward the buffered request if the fast lane can; else hand over or wait for more."""
        config = self.proxy.config
        buffer = self.buffer
        if not buffer:
            if self._eof:
                self._to_task(None)
            return
        end = buffer.find(b"\r\n\r\n")
        if (
            buffer.startswith(b"\r\n")
            or end + 4 > config.max_head
            or (end < 0 and len(buffer) > config.max_head)
        ):
            self._to_task(None)
            return
        if end < 0:
            return
        head_end = end + 4
        try:
            request = parse_request_head(bytes(buffer[:head_end]))
            framing = request_framing(request)
        except HttpError:
            self._to_task(None)  # the task answers it
            return
        if (
            request.is_upgrade
            or framing.kind not in (BodyKind.NONE, BodyKind.LENGTH)
            or framing.length > config.max_buffered_body
            or request.get("Expect") is not None
            or request.path == config.status_path
        ):
            self._to_task(None)
            return
        total = head_end + framing.length
        if len(buffer) < total:
            return  # the rest of the body is on its way
        pinned = request.cookies().get(config.cookie_name)
        conn = self.upstreams.get(pinned) if pinned is not None else None
        if (
            conn is None
            or not conn.usable
            or conn.side.client is not None
            or buffered_size(conn.reader)
            or self.proxy.pool.state(conn.name) is not UpstreamState.UP
        ):
            self._to_task(None)
            return
        choice = self.proxy.pool.choose(conn.name)
        if choice is None or choice.upstream.name != conn.name:  # cannot be: it is UP
            self._to_task(None)
            return
        raw = bytes(buffer[:total])
        del buffer[:total]
        outgoing = upstream_request(request, self.client_ip)
        timer = self.loop.call_later(config.read_timeout, self._timed_out)
        self._flight = _InFlight(request, raw, choice, conn, timer)
        conn.side.client = self
        conn.writer.write(serialize_request(outgoing) + raw[head_end:])

    def _land(self, flight: _InFlight) -> None:
        flight.timer.cancel()
        flight.conn.side.client = None
        self._flight = None

    def _drop(self, conn: UpstreamConn) -> None:
        if self.upstreams.get(conn.name) is conn:
            del self.upstreams[conn.name]
        conn.close()

    def _timed_out(self) -> None:
        flight = self._flight
        if flight is None:
            return
        self._land(flight)
        reason = f"no response within {self.proxy.config.read_timeout:.3g} s"
        self.proxy.passive_failure(flight.conn.name, reason, self.upstreams)
        if self.transport is not None:
            self.transport.write(bad_gateway_response(flight.conn.name, reason))
        self._to_task(Close())

    # --- responses ---------------------------------------------------------------------------

    def on_upstream_gone(self) -> None:
        flight = self._flight
        if flight is None:
            return
        self._land(flight)
        side = flight.conn.side
        if side.buffer:
            side.to_stream()  # a partial answer: the task reports it
            self._to_task(Respond(flight.request, flight.choice, flight.conn))
            return
        # The kept-alive connection had closed under the request: the task sends it again on a
        # fresh one (once, as for any reused connection).
        self._drop(flight.conn)
        self.buffer[:0] = flight.raw
        self._to_task(None)

    def on_response_data(self) -> None:
        flight = self._flight
        if flight is None:
            return
        side = flight.conn.side
        buffer = side.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > self.proxy.config.max_head:
                self._response_to_task(flight)
            return
        head_end = end + 4
        try:
            response = parse_response_head(bytes(buffer[:head_end]))
            framing = response_framing(response, flight.request.method)
        except HttpError:
            self._response_to_task(flight)
            return
        if (
            response.status < 200
            or framing.kind not in (BodyKind.NONE, BodyKind.LENGTH)
            or framing.length > COALESCED_BODY
        ):
            self._response_to_task(flight)
            return
        total = head_end + framing.length
        if len(buffer) < total:
            return
        body = bytes(buffer[head_end:total])
        del buffer[:total]
        self._land(flight)
        keep = flight.request.keep_alive and not self.proxy.closing
        head = client_head(response, flight.choice, self.proxy.config.cookie_name, keep=keep)
        if self.transport is not None:
            self.transport.write(head + body)
        if buffer or not response.keep_alive:
            buffer.clear()  # bytes nobody asked for: the connection cannot be trusted
            self._drop(flight.conn)
        if not keep:
            self._to_task(Close())
            return
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._forward()

    def _response_to_task(self, flight: _InFlight) -> None:
        self._land(flight)
        flight.conn.side.to_stream()
        self._to_task(Respond(flight.request, flight.choice, flight.conn))
