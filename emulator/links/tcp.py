"""A TCP link's sockets: the listener and one relayed connection per accepted client.

``TcpFront`` owns the listening socket and a task per connection. A reset cut closes the listener
(new clients get ECONNREFUSED, as from a firewall REJECT) and keeps the port bound by a
non-listening placeholder so nothing else takes it; healing listens on that same socket again.
Existing connections are reset (SO_LINGER 0, RST both ways).

``TcpConnection`` connects upstream once the link flows and pumps each direction with a reader
and a deliverer task joined by a bounded queue: the reader stamps chunks with the loop clock, the
deliverer runs them through the stream's ``ToxicPipe`` and sleeps until each action is due (so
latency is pipelined, as in Toxiproxy). With no toxic on the stream and nothing queued, the reader
writes straight through, which keeps the added per-hop latency small.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal

from emulator.links.flow import ConnectionInfo, LinkFlow
from emulator.links.model import Protocol, socket_host
from emulator.links.pipe import Close, Deliver, EndOfStream, Reset, ToxicPipe
from emulator.links.sockets import (
    bind_socket,
    bound_endpoint,
    listen_error,
    peer_gone,
    set_reset_on_close,
)
from emulator.links.toxics import Stream, Timeout, ToxicSpec

CHUNK_SIZE = 65536
QUEUE_CHUNKS = 64
SHUTDOWN_GRACE = 2.0

Ending = Literal["close", "reset"]
_Item = tuple[float, bytes] | None


class TcpConnection:
    def __init__(
        self,
        conn_id: int,
        flow: LinkFlow,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.id = conn_id
        self._flow = flow
        self._loop = asyncio.get_running_loop()
        self._client = (reader, writer)
        self._upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.client = f"{peer[0]}:{peer[1]}"
        self._opened = self._loop.time()
        self._bytes = dict.fromkeys(Stream, 0)
        self._pipes = {stream: ToxicPipe(stream, flow.rng) for stream in Stream}
        self._queues: dict[Stream, asyncio.Queue[_Item]] = {
            stream: asyncio.Queue(QUEUE_CHUNKS) for stream in Stream
        }
        self._busy = dict.fromkeys(Stream, False)
        self._finished: set[Stream] = set()
        self._ending: Ending | None = None
        self._reason = ""
        self._ended = asyncio.Event()
        self._toxics_changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def info(self) -> ConnectionInfo:
        return ConnectionInfo(
            self.id,
            self.client,
            Protocol.TCP,
            self._bytes[Stream.UPSTREAM],
            self._bytes[Stream.DOWNSTREAM],
            self._loop.time() - self._opened,
            self._upstream is not None,
        )

    def end(self, ending: Ending, reason: str) -> None:
        """Close (FIN) or reset (RST) both sides; a reset wins over a close under way."""
        if self._ending is None or ending == "reset":
            self._ending, self._reason = ending, reason
        self._ended.set()
        task = self.task
        if self._upstream is None and task is not None and task is not asyncio.current_task():
            task.cancel()  # still waiting for the link to flow or for upstream

    def toxics_changed(self, removed: Sequence[ToxicSpec]) -> None:
        for toxic in removed:
            for pipe in self._pipes.values():
                # As in Toxiproxy, removing a timeout toxic closes what it held: data was lost.
                if isinstance(toxic.attributes, Timeout) and pipe.applied(toxic.name):
                    self.end("close", f"timeout toxic {toxic.name} removed")
                pipe.forget(toxic.name)
        self._toxics_changed.set()

    async def run(self) -> None:
        try:
            self._upstream = await self._connect_upstream()
            if self._upstream is None:
                return
            up_reader, up_writer = self._upstream
            client_reader, client_writer = self._client
            bodies = [
                self._read(Stream.UPSTREAM, client_reader, up_writer),
                self._deliver(Stream.UPSTREAM, up_writer),
                self._read(Stream.DOWNSTREAM, up_reader, client_writer),
                self._deliver(Stream.DOWNSTREAM, client_writer),
                self._watch_deadlines(),
            ]
            tasks = [asyncio.create_task(self._guard(body)) for body in bodies]
            try:
                await self._ended.wait()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._shut()

    async def _connect_upstream(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        if not self._flow.flowing:
            await self._flow.until_flowing()
            # Accepted while blackholed: a client that gave up meanwhile never reached the
            # upstream (its SYN was lost, in network terms), so its stale bytes must not either.
            if peer_gone(self._client[1].get_extra_info("socket")):
                self.end("reset", "client left during the outage")
                return None
        upstream = self._flow.upstream
        try:
            async with asyncio.timeout(self._flow.connect_timeout):
                return await asyncio.open_connection(socket_host(upstream.host), upstream.port)
        except (OSError, TimeoutError) as exc:
            # The client sees what it would see connecting directly to a dead service: a reset.
            self._flow.log.warning(
                "link.upstream_unreachable",
                link=self._flow.name,
                upstream=str(upstream),
                client=self.client,
                error=str(exc) or type(exc).__name__,
            )
            self.end("reset", "upstream unreachable")
            return None

    async def _guard(self, body: Coroutine[Any, Any, None]) -> None:
        try:
            await body
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.end("reset", f"peer error: {exc!r}")
        except Exception as exc:  # a bug must end this connection, never the relay
            self._flow.log.error("link.connection_error", link=self._flow.name, error=repr(exc))
            self.end("reset", f"internal error: {exc!r}")

    async def _read(
        self, stream: Stream, source: asyncio.StreamReader, dest: asyncio.StreamWriter
    ) -> None:
        queue = self._queues[stream]
        while True:
            await self._flow.until_flowing()
            data = await source.read(CHUNK_SIZE)
            if not data:
                await queue.put(None)
                return
            fast = not self._busy[stream] and queue.empty() and not self._flow.has_toxics(stream)
            if not fast:
                await queue.put((self._loop.time(), data))
                continue
            await self._flow.until_flowing()
            dest.write(data)
            self._bytes[stream] += len(data)
            await dest.drain()

    async def _deliver(self, stream: Stream, dest: asyncio.StreamWriter) -> None:
        queue, pipe = self._queues[stream], self._pipes[stream]
        while True:
            item = await queue.get()
            self._busy[stream] = True
            toxics = self._flow.toxics_for(stream)
            if item is None:
                actions = pipe.finish(toxics, self._loop.time())
            else:
                actions = pipe.feed(toxics, item[1], item[0])
            for action in actions:
                delay = action.at - self._loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._flow.until_flowing()
                if isinstance(action, Deliver):
                    dest.write(action.data)
                    self._bytes[stream] += len(action.data)
                    await dest.drain()
                elif isinstance(action, EndOfStream):
                    self._half_close(stream, dest)
                elif isinstance(action, Close):
                    self.end("close", action.reason)
                elif isinstance(action, Reset):
                    self.end("reset", action.reason)
            self._busy[stream] = False

    def _half_close(self, stream: Stream, dest: asyncio.StreamWriter) -> None:
        if dest.can_write_eof():
            dest.write_eof()
        self._finished.add(stream)
        if len(self._finished) == len(Stream):
            self.end("close", "both sides closed")

    async def _watch_deadlines(self) -> None:
        while True:
            self._toxics_changed.clear()
            now = self._loop.time()
            deadlines = [
                deadline
                for pipe in self._pipes.values()
                if (deadline := pipe.next_deadline(self._flow.toxics_for(pipe.stream), now))
            ]
            if not deadlines:
                await self._toxics_changed.wait()
                continue
            at, name = min(deadlines)
            try:
                async with asyncio.timeout_at(at):
                    await self._toxics_changed.wait()
            except TimeoutError:
                self.end("close", f"timeout toxic {name}")
                return

    def _shut(self) -> None:
        ending = self._ending or "reset"
        writers = [self._client[1]] + ([self._upstream[1]] if self._upstream else [])
        for writer in writers:
            if ending == "reset":
                set_reset_on_close(writer.get_extra_info("socket"))
                writer.transport.abort()
            else:
                writer.close()
        self._flow.log.event(
            "link.connection_closed",
            level="debug",
            link=self._flow.name,
            conn=self.id,
            client=self.client,
            how=ending,
            reason=self._reason or "relay stopped",
            bytes_upstream=self._bytes[Stream.UPSTREAM],
            bytes_downstream=self._bytes[Stream.DOWNSTREAM],
        )


class TcpFront:
    """The listener of one TCP link and its connections."""

    def __init__(self, flow: LinkFlow, sock: socket.socket) -> None:
        self._flow = flow
        self._sock: socket.socket | None = sock  # bound; listening only while served
        self.listen = bound_endpoint(sock)
        self._server: asyncio.Server | None = None
        self._connections: dict[int, TcpConnection] = {}
        self._ids = itertools.count(1)

    async def start_listening(self) -> None:
        if self._server is not None:
            return
        sock = self._sock if self._sock is not None else bind_socket(self.listen, Protocol.TCP)
        self._sock = None
        try:
            self._server = await asyncio.start_server(self._accepted, sock=sock, backlog=512)
        except OSError as exc:
            sock.close()
            raise listen_error(self.listen, exc) from None

    def stop_listening(self) -> None:
        if self._server is None:
            return
        self._server.close()  # closes the listening socket now: new clients are refused
        self._server = None
        try:
            self._sock = bind_socket(self.listen, Protocol.TCP)
        except Exception as exc:
            self._flow.log.warning("link.port_not_held", link=self._flow.name, error=str(exc))

    def connections(self) -> list[ConnectionInfo]:
        return [conn.info() for conn in self._connections.values()]

    def cut_connection(self, conn_id: int) -> bool:
        conn = self._connections.get(conn_id)
        if conn is None:
            return False
        conn.end("reset", "connection cut")
        return True

    def reset_all(self, reason: str) -> None:
        for conn in list(self._connections.values()):
            conn.end("reset", reason)

    def toxics_changed(self, removed: Sequence[ToxicSpec]) -> None:
        for conn in list(self._connections.values()):
            conn.toxics_changed(removed)

    async def aclose(self, *, reset: bool) -> None:
        self.stop_listening()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        tasks = [conn.task for conn in self._connections.values() if conn.task is not None]
        for conn in list(self._connections.values()):
            conn.end("reset" if reset else "close", "link closed")
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted just before a reset cut closed the listener
            set_reset_on_close(writer.get_extra_info("socket"))
            writer.transport.abort()
            return
        conn = TcpConnection(next(self._ids), self._flow, reader, writer)
        self._connections[conn.id] = conn
        conn.task = asyncio.create_task(conn.run(), name=f"link {self._flow.name} #{conn.id}")
        conn.task.add_done_callback(self._forget(conn.id))
        self._flow.log.event(
            "link.connection_opened",
            level="debug",
            link=self._flow.name,
            conn=conn.id,
            client=conn.client,
        )

    def _forget(self, conn_id: int) -> Callable[[asyncio.Task[None]], None]:
        def forget(task: asyncio.Task[None]) -> None:
            self._connections.pop(conn_id, None)
            if not task.cancelled() and task.exception() is not None:
                self._flow.log.error(
                    "link.connection_error", link=self._flow.name, error=repr(task.exception())
                )

        return forget
