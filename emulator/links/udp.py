"""A UDP link's sockets: one listen socket, one upstream socket per client source address.

Each client address gets a session with its own connected upstream socket, so the upstream sees
one stable peer per client and its replies go back to the client they answer (the relay sends
them from the listen socket, the address the client sent to). A session ends after
``udp_idle_timeout`` seconds without a datagram either way, when cut by id, or when the link is cut
with mode reset. While the link is cut or blackholed every datagram is dropped, as on a dead path.

Toxics apply per datagram through the same ``ToxicPipe`` as TCP; deliveries are scheduled on the
loop clock independently, so jitter can reorder datagrams as a real network would. A toxic that
closes or resets (limit_data, timeout, reset_peer) ends the session. Sockets are driven with
``add_reader`` and non-blocking ``send``: a full socket buffer drops the datagram, as UDP does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable, Sequence
from typing import Any

from emulator.links.flow import ConnectionInfo, LinkFlow
from emulator.links.model import Protocol, socket_host
from emulator.links.pipe import Close, Deliver, Reset, ToxicPipe
from emulator.links.sockets import bound_endpoint
from emulator.links.toxics import Stream, Timeout, ToxicSpec

MAX_DATAGRAM = 65535
READ_BATCH = 64

Address = tuple[Any, ...]


class UdpSession:
    def __init__(self, conn_id: int, front: UdpFront, client: Address) -> None:
        self.id = conn_id
        self.client = client
        self._front = front
        self._flow = front.flow
        self._loop = asyncio.get_running_loop()
        self.opened = self.last_activity = self._loop.time()
        self._bytes = dict.fromkeys(Stream, 0)
        self._pipes = {stream: ToxicPipe(stream, self._flow.rng) for stream in Stream}
        self._handles: set[asyncio.TimerHandle] = set()
        self._deadline: asyncio.TimerHandle | None = None
        upstream = self._flow.upstream
        host = socket_host(upstream.host)
        self._sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM
        )
        self._sock.setblocking(False)
        self._sock.connect((host, upstream.port))
        self._loop.add_reader(self._sock.fileno(), self._upstream_readable)
        self._arm_deadline()

    def info(self) -> ConnectionInfo:
        return ConnectionInfo(
            self.id,
            f"{self.client[0]}:{self.client[1]}",
            Protocol.UDP,
            self._bytes[Stream.UPSTREAM],
            self._bytes[Stream.DOWNSTREAM],
            self._loop.time() - self.opened,
            True,
        )

    def from_client(self, data: bytes) -> None:
        self._carry(Stream.UPSTREAM, data)

    def toxics_changed(self, removed: Sequence[ToxicSpec]) -> None:
        for toxic in removed:
            for pipe in self._pipes.values():
                if isinstance(toxic.attributes, Timeout) and pipe.applied(toxic.name):
                    self._front.end_session(self, f"timeout toxic {toxic.name} removed")
                    return
                pipe.forget(toxic.name)
        self._arm_deadline()

    def close(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        if self._deadline is not None:
            self._deadline.cancel()
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def _upstream_readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP port unreachable from an upstream that is not there (yet)
            self._carry(Stream.DOWNSTREAM, data)

    def _carry(self, stream: Stream, data: bytes) -> None:
        now = self._loop.time()
        self.last_activity = now
        if not self._flow.flowing:
            return
        if not self._flow.has_toxics(stream):
            self._send(stream, data)
            return
        for action in self._pipes[stream].feed(self._flow.toxics_for(stream), data, now):
            if isinstance(action, Deliver):
                self._at(action.at, self._send, stream, action.data)
            elif isinstance(action, Close | Reset):
                self._at(action.at, self._front.end_session, self, action.reason)

    def _send(self, stream: Stream, data: bytes) -> None:
        if not self._flow.flowing:
            return
        try:
            if stream is Stream.UPSTREAM:
                self._sock.send(data)
            else:
                self._front.send_to_client(data, self.client)
        except OSError:
            return  # buffer full or upstream refused: the datagram is lost, as UDP allows
        self._bytes[stream] += len(data)

    def _at(self, when: float, callback: Callable[..., None], *args: Any) -> None:
        if when <= self._loop.time():
            callback(*args)
            return

        def fire() -> None:
            self._handles.discard(handle)
            callback(*args)

        handle = self._loop.call_at(when, fire)
        self._handles.add(handle)

    def _arm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        now = self._loop.time()
        deadlines = [
            deadline
            for pipe in self._pipes.values()
            if (deadline := pipe.next_deadline(self._flow.toxics_for(pipe.stream), now))
        ]
        if deadlines:
            at, name = min(deadlines)
            self._deadline = self._loop.call_at(
                at, self._front.end_session, self, f"timeout toxic {name}"
            )


class UdpFront:
    """The listen socket of one UDP link and its per-client sessions."""

    def __init__(self, flow: LinkFlow, sock: socket.socket) -> None:
        self.flow = flow
        self._sock = sock
        self.listen = bound_endpoint(sock)
        self._loop = asyncio.get_running_loop()
        self._sessions: dict[Address, UdpSession] = {}
        self._ids = itertools.count(1)
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    async def start_listening(self) -> None:
        if self._sweeper is None and not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._client_readable)
            self._sweeper = asyncio.create_task(self._sweep(), name=f"link {self.flow.name} sweep")

    def stop_listening(self) -> None:
        """A UDP socket keeps receiving while cut: datagrams are dropped, not refused."""

    def connections(self) -> list[ConnectionInfo]:
        return [session.info() for session in self._sessions.values()]

    def cut_connection(self, conn_id: int) -> bool:
        for session in list(self._sessions.values()):
            if session.id == conn_id:
                self.end_session(session, "connection cut")
                return True
        return False

    def reset_all(self, reason: str) -> None:
        for session in list(self._sessions.values()):
            self.end_session(session, reason)

    def toxics_changed(self, removed: Sequence[ToxicSpec]) -> None:
        for session in list(self._sessions.values()):
            session.toxics_changed(removed)

    def end_session(self, session: UdpSession, reason: str) -> None:
        if self._sessions.get(session.client) is not session:
            return
        del self._sessions[session.client]
        session.close()
        self.flow.log.event(
            "link.connection_closed",
            level="debug",
            link=self.flow.name,
            conn=session.id,
            client=session.info().client,
            reason=reason,
        )

    def send_to_client(self, data: bytes, client: Address) -> None:
        self._sock.sendto(data, client)

    async def aclose(self, *, reset: bool) -> None:
        del reset  # datagrams have no close handshake
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self.reset_all("link closed")
        self._sock.close()

    def _client_readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                data, client = self._sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if not self.flow.flowing:
                continue
            session = self._sessions.get(client)
            if session is None:
                try:
                    session = UdpSession(next(self._ids), self, client)
                except OSError as exc:
                    self.flow.log.warning(
                        "link.upstream_unreachable", link=self.flow.name, error=str(exc)
                    )
                    continue
                self._sessions[client] = session
                self.flow.log.event(
                    "link.connection_opened",
                    level="debug",
                    link=self.flow.name,
                    conn=session.id,
                    client=session.info().client,
                )
            session.from_client(data)

    async def _sweep(self) -> None:
        idle = self.flow.udp_idle_timeout
        while True:
            await asyncio.sleep(max(idle / 4, 0.05))
            horizon = self._loop.time() - idle
            for session in list(self._sessions.values()):
                if session.last_activity < horizon:
                    self.end_session(session, "idle")
