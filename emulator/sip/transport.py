"""Thin asyncio SIP transports: UDP datagrams and TCP streams around the sans-I/O parser.

Implements RFC 3261 §18 as the lab needs it: one message per datagram, Content-Length framing on
TCP (split and coalesced messages), responses sent back to the address the request came from
(symmetric, as RFC 3581 ``rport`` does), so phones behind the fault relay are reachable.

Bad input never escapes: on UDP a datagram that is not answerable SIP is counted and dropped, a
request we can read enough of is answered 400; on TCP garbage is answered 400 and a peer that
keeps sending it (or breaks the framing) is disconnected.  Both transports are async context
managers that report the port they bound (``bound``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sip.builder import make_error_response
from emulator.sip.errors import SipProtocolError, TransportError
from emulator.sip.message import Message
from emulator.sip.parser import StreamParser, parse_datagram

MessageHandler = Callable[[Message, Endpoint, "SipTransport"], None]


@dataclass
class TransportStats:
    messages_received: int = 0
    garbage_dropped: int = 0
    bad_requests_answered: int = 0
    connections_closed_for_garbage: int = 0


class SipTransport(Protocol):
    name: str
    reliable: bool
    stats: TransportStats
    handler: MessageHandler | None

    @property
    def bound(self) -> Endpoint: ...

    async def send(self, message: Message, dest: Endpoint) -> None: ...


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._owner.datagram_received(data, Endpoint(str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: retransmission timers handle it.
        pass


class UdpTransport:
    """SIP over UDP on one socket; ``async with UdpTransport(host, port) as t: t.bound``."""

    name = "UDP"
    reliable = False

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        handler: MessageHandler | None = None,
        log: JsonLog | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self.handler = handler
        self._log = log
        self.stats = TransportStats()
        self._transport: asyncio.DatagramTransport | None = None
        self._bound: Endpoint | None = None

    @property
    def bound(self) -> Endpoint:
        if self._bound is None:
            raise RuntimeError("UDP transport is not started")
        return self._bound

    async def __aenter__(self) -> UdpTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self._host, self._port)
        )
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self._bound = Endpoint(str(sockname[0]), int(sockname[1]))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.handler = None

    async def send(self, message: Message, dest: Endpoint) -> None:
        self.send_now(message, dest)

    def send_now(self, message: Message, dest: Endpoint) -> None:
        if self._transport is None:
            raise TransportError("UDP transport is closed")
        self._transport.sendto(message.to_bytes(), (dest.host, dest.port))

    def datagram_received(self, data: bytes, source: Endpoint) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # RFC 5626 CRLF keep-alive
        try:
            message = parse_datagram(data)
        except SipProtocolError as error:
            if error.is_request:
                self.stats.bad_requests_answered += 1
                self._warn("sip.bad_request", error, source)
                with contextlib.suppress(TransportError):
                    self.send_now(make_error_response(error), source)
            else:
                self.stats.garbage_dropped += 1
                self._warn("sip.garbage_dropped", error, source)
            return
        self.stats.messages_received += 1
        if self.handler is not None:
            self.handler(message, source, self)

    def _warn(self, event: str, error: SipProtocolError, source: Endpoint) -> None:
        if self._log is not None:
            self._log.warning(
                event,
                transport="UDP",
                peer=str(source),
                reason=error.reason,
                status=error.status_code,
            )


class _TcpConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = StreamParser()
        self.consecutive_errors = 0
        peer = writer.get_extra_info("peername")
        self.peer = Endpoint(str(peer[0]), int(peer[1]))


class TcpTransport:
    """SIP over TCP: listens, accepts, and connects on demand; one connection per peer."""

    name = "TCP"
    reliable = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        handler: MessageHandler | None = None,
        log: JsonLog | None = None,
        max_consecutive_errors: int = 3,
    ) -> None:
        self._host = host
        self._port = port
        self.handler = handler
        self._log = log
        self.max_consecutive_errors = max_consecutive_errors
        self.stats = TransportStats()
        self._server: asyncio.Server | None = None
        self._bound: Endpoint | None = None
        self._connections: dict[Endpoint, _TcpConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._connect_locks: dict[Endpoint, asyncio.Lock] = {}

    @property
    def bound(self) -> Endpoint:
        if self._bound is None:
            raise RuntimeError("TCP transport is not started")
        return self._bound

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def __aenter__(self) -> TcpTransport:
        self._server = await asyncio.start_server(self._accepted, self._host, self._port)
        sockname = self._server.sockets[0].getsockname()
        self._bound = Endpoint(str(sockname[0]), int(sockname[1]))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()  # stop accepting first
        for connection in list(self._connections.values()):
            connection.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._connections.clear()
        self.handler = None

    async def send(self, message: Message, dest: Endpoint) -> None:
        connection = self._connections.get(dest)
        if connection is None:
            # One connection per peer even when several messages race to open it.
            lock = self._connect_locks.setdefault(dest, asyncio.Lock())
            async with lock:
                connection = self._connections.get(dest)
                if connection is None:
                    try:
                        reader, writer = await asyncio.open_connection(dest.host, dest.port)
                    except OSError as error:
                        raise TransportError(f"cannot connect to {dest}: {error}") from error
                    connection = self._adopt(reader, writer)
                    self._connections[dest] = connection
        try:
            connection.writer.write(message.to_bytes())
            await connection.writer.drain()
        except (OSError, RuntimeError) as error:
            raise TransportError(f"cannot send to {dest}: {error}") from error

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = self._adopt(reader, writer)
        self._connections[connection.peer] = connection

    def _adopt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _TcpConnection:
        connection = _TcpConnection(reader, writer)
        task = asyncio.create_task(self._read_loop(connection))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return connection

    async def _read_loop(self, connection: _TcpConnection) -> None:
        try:
            while True:
                data = await connection.reader.read(65536)
                if not data:
                    break
                if not self._process(connection, data):
                    self.stats.connections_closed_for_garbage += 1
                    if self._log is not None:
                        self._log.warning(
                            "sip.connection_closed", transport="TCP", peer=str(connection.peer)
                        )
                    break
        except OSError:
            pass
        finally:
            if self._connections.get(connection.peer) is connection:
                del self._connections[connection.peer]
            connection.writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await connection.writer.wait_closed()

    def _process(self, connection: _TcpConnection, data: bytes) -> bool:
        """Handle what ``data`` completes; False when the connection must be closed."""
        for item in connection.parser.feed(data):
            if isinstance(item, SipProtocolError):
                connection.consecutive_errors += 1
                if item.is_request is not False:
                    self.stats.bad_requests_answered += 1
                    connection.writer.write(make_error_response(item).to_bytes())
                else:
                    self.stats.garbage_dropped += 1
                if self._log is not None:
                    self._log.warning(
                        "sip.bad_request",
                        transport="TCP",
                        peer=str(connection.peer),
                        reason=item.reason,
                        status=item.status_code,
                    )
                if (
                    item.fatal_for_stream
                    or connection.consecutive_errors >= self.max_consecutive_errors
                ):
                    return False
                continue
            connection.consecutive_errors = 0
            self.stats.messages_received += 1
            if self.handler is not None:
                self.handler(item, connection.peer, self)
        return True


BIND_ATTEMPTS = 5  # ephemeral ports tried for a UDP + TCP pair before giving up


async def bind_udp_and_tcp(
    host: str, port: int, *, tcp: bool, log: JsonLog | None, stack: contextlib.AsyncExitStack
) -> tuple[UdpTransport, TcpTransport | None]:
    """UDP, and with ``tcp`` TCP on the same port number, entered on ``stack``.

    With port 0 (any), a port whose TCP side another process holds is given back and another
    one tried, a few times; a fixed port that is taken raises at once. Nothing stays bound on
    failure.
    """
    for attempt in range(BIND_ATTEMPTS):
        async with contextlib.AsyncExitStack() as bound:
            udp = await bound.enter_async_context(UdpTransport(host, port, log=log))
            stream = None
            if tcp:
                try:
                    stream = await bound.enter_async_context(
                        TcpTransport(host, udp.bound.port, log=log)
                    )
                except OSError:
                    if port != 0 or attempt == BIND_ATTEMPTS - 1:
                        raise
                    continue
            await stack.enter_async_context(bound.pop_all())
            return udp, stream
    raise AssertionError("unreachable: the last attempt returns or raises")
