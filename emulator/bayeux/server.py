"""CometD server transports on aiohttp: long-polling POST and WebSocket around :class:`ServerCore`.

Mounted at a path (GWS: ``/workspace/v3/notifications``) it answers

* ``POST <path>`` and ``POST <path>/<anything>`` (the CometD JS client appends ``/handshake``,
  ``/connect``, ``/disconnect`` — or just ``/`` for other messages — to the URL) with a JSON
  array body: the Bayeux ``long-polling`` transport, holding ``/meta/connect`` until a message
  is queued or the advice timeout passes;
* ``GET <path>`` with ``Upgrade: websocket``: the CometD ``websocket`` transport, one JSON array
  per text frame; events are pushed as soon as they are published, the connect is held the same
  way.

The protocol lives in the sans-I/O core; this module only moves bytes, owns the waiting tasks and
the expiry sweep, and emits pyee events: ``client_added`` (ClientAdded), ``client_removed``
(ClientRemoved), ``subscribed`` (ClientSubscribed), ``unsubscribed`` (ClientUnsubscribed),
``published`` (ClientPublished) and ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web
from pyee.asyncio import AsyncIOEventEmitter

from emulator.bayeux.messages import (
    LONG_POLLING,
    WEBSOCKET,
    ErrorCode,
    Message,
    bayeux_error,
    encode_messages,
)
from emulator.bayeux.server_core import ServerCore
from emulator.bayeux.server_model import (
    Authorizer,
    ClientAdded,
    ClientPublished,
    ClientRemoved,
    ClientSubscribed,
    ClientUnsubscribed,
    Credentials,
    Exchange,
    Hold,
    ServerConfig,
    ServerEvent,
)
from emulator.common.jsonlog import JsonLog

_EVENT_NAMES: dict[type, str] = {
    ClientAdded: "client_added",
    ClientRemoved: "client_removed",
    ClientSubscribed: "subscribed",
    ClientUnsubscribed: "unsubscribed",
    ClientPublished: "published",
}
_JSON = "application/json"
# Above this many unsent bytes a WebSocket's frames wait for aiohttp's flow control.
_WS_HIGH_WATER = 1 << 16


def _text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame, as a server sends it (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def _new_client_id() -> str:
    return secrets.token_hex(16)  # 128 random bits, as the spec recommends


@dataclass(eq=False)
class _Socket:
    """One WebSocket and the Bayeux clients that speak over it."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    clients: set[str] = field(default_factory=set)
    holds: dict[str, Hold] = field(default_factory=dict)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class BayeuxEndpoint:
    """A CometD endpoint for one aiohttp application.

    ``publish(client_id, channel, data)`` delivers to one client, ``broadcast(channel, data)`` to
    its subscribers, ``remove_client(client_id)`` ends a client (its held connect is answered with
    ``reconnect: none``). Call :meth:`mount` before the app starts; the app's startup/shutdown
    signals start the expiry sweep and, on shutdown, answer every held connect and close every
    WebSocket with 1001.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        authorize: Authorizer | None = None,
        new_client_id: Callable[[], str] = _new_client_id,
        log: JsonLog | None = None,
        max_payload: int = 1 << 20,
        sweep_interval: float | None = None,
        on_request: Callable[[web.Request], None] | None = None,
    ) -> None:
        self.core = ServerCore(config, new_client_id=new_client_id, authorize=authorize)
        self.events = AsyncIOEventEmitter()
        self.events.on("error", self._on_listener_error)
        self.log = log
        self.max_payload = max_payload
        # Told of every HTTP request the endpoint serves (a long-poll, a WebSocket upgrade).
        self.on_request = on_request
        self.sweep_interval = (
            sweep_interval if sweep_interval is not None else min(1.0, config.max_interval / 4)
        )
        self._wakers: dict[str, set[asyncio.Event]] = {}
        self._sockets: set[_Socket] = set()
        self._socket_of: dict[str, _Socket] = {}  # the WebSocket each client speaks over
        self._sweeper: asyncio.Task[None] | None = None

    # --- application API ---------------------------------------------------------------------

    def mount(self, app: web.Application, path: str) -> None:
        path = path.rstrip("/")
        kinds = self.core.config.connection_types
        if LONG_POLLING in kinds:
            app.router.add_post(path, self._handle_post)
            # CometD JS posts to "<path>/" + "handshake"|"connect"|"disconnect"|"" (note the slash).
            app.router.add_post(path + "/{message_type:.*}", self._handle_post)
        if WEBSOCKET in kinds:
            app.router.add_get(path, self._handle_get)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)

    def publish(self, client_id: str, channel: str, data: object) -> bool:
        """Deliver an event to one client; False if there is no such client."""
        queued = self.core.publish(client_id, channel, data)
        if queued:
            socket = self._socket_of.get(client_id)
            if socket is not None and self._can_write_now(socket):
                # The hot path: the event leaves in this call, not after a sender wake-up.
                self._write_now(socket, self.core.drain(client_id))
            else:
                self._wake(client_id)
        return queued

    def broadcast(self, channel: str, data: object) -> int:
        targets = self.core.broadcast(channel, data)
        for client_id in targets:
            self._wake(client_id)
        return len(targets)

    def remove_client(self, client_id: str) -> bool:
        removed = self.core.remove(client_id, self._now())
        if removed is None:
            return False
        self._wake(client_id)
        self._emit((removed,))
        return True

    def client_ids(self) -> tuple[str, ...]:
        return self.core.client_ids()

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="bayeux-expiry-sweep")

    async def stop(self) -> None:
        """Answer every held connect, close every WebSocket, stop the sweep."""
        self.core.close()
        for events in self._wakers.values():
            for event in events:
                event.set()
        for socket in list(self._sockets):
            socket.wake.set()
            with contextlib.suppress(Exception):
                await socket.ws.close(code=1001, message=b"server shutting down")
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self.events.remove_all_listeners()
        self.events.on("error", self._on_listener_error)

    async def _on_startup(self, app: web.Application) -> None:
        await self.start()

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.stop()

    # --- plumbing ----------------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _on_listener_error(self, error: Exception) -> None:
        if self.log is not None:
            self.log.error("cometd.listener_error", error=repr(error))

    def _wake(self, client_id: str) -> None:
        for event in self._wakers.get(client_id, ()):
            event.set()

    def _register(self, client_id: str, event: asyncio.Event) -> None:
        self._wakers.setdefault(client_id, set()).add(event)

    def _unregister(self, client_id: str, event: asyncio.Event) -> None:
        events = self._wakers.get(client_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._wakers[client_id]

    def _emit(self, events: Iterable[ServerEvent]) -> None:
        for event in events:
            if self.log is not None:
                if isinstance(event, ClientAdded):
                    self.log.event("cometd.client.added", client_id=event.client_id)
                elif isinstance(event, ClientRemoved):
                    self.log.event(
                        "cometd.client.removed", client_id=event.client_id, reason=event.reason
                    )
            self.events.emit(_EVENT_NAMES[type(event)], event)

    def _settle(self, exchange: Exchange, remote: str) -> None:
        """After any payload: wake whoever waits for the clients it touched, log bad input."""
        for client_id in exchange.client_ids:
            self._wake(client_id)
        for event in exchange.events:
            if isinstance(event, ClientRemoved):
                self._wake(event.client_id)
        if self.log is not None:
            for reply in exchange.replies:
                if reply.successful is False and reply.error:
                    self.log.warning(
                        "cometd.request.failed",
                        channel=reply.channel,
                        error=reply.error,
                        remote=remote,
                    )
        self._emit(exchange.events)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            removed = self.core.expire(self._now())
            for event in removed:
                self._wake(event.client_id)
            self._emit(removed)

    @staticmethod
    def _credentials(request: web.Request) -> Credentials:
        return Credentials(
            headers={key.lower(): value for key, value in request.headers.items()},
            cookies=dict(request.cookies),
            remote=request.remote or "",
        )

    @staticmethod
    def _json_response(messages: Sequence[Message], status: int = 200) -> web.Response:
        return web.Response(
            status=status, text=encode_messages(messages), content_type=_JSON, charset="utf-8"
        )

    # --- long-polling ------------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > self.max_payload:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _form_payload(body: bytes) -> str:
        """Spec: long-polling MAY send messages as ``message`` form parameters."""
        parts: list[object] = []
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            if key != "message":
                continue
            try:
                decoded = json.loads(value)
            except ValueError:
                return value  # let the core report the precise JSON error
            parts.extend(decoded if isinstance(decoded, list) else [decoded])
        return json.dumps(parts)

    async def _handle_post(self, request: web.Request) -> web.StreamResponse:
        if self.on_request is not None:
            self.on_request(request)
        body = await self._read_body(request)
        if body is None:
            error = bayeux_error(
                ErrorCode.TOO_LARGE, f"payload larger than {self.max_payload} bytes"
            )
            reply = Message(channel="/meta/unsuccessful", successful=False, error=error)
            return self._json_response([reply], status=413)
        payload: bytes | str = body
        if request.content_type == "application/x-www-form-urlencoded":
            payload = self._form_payload(body)
        credentials = self._credentials(request)
        exchange = self.core.receive(payload, now=self._now(), credentials=credentials)
        self._settle(exchange, credentials.remote)
        if exchange.bad_payload:
            return self._json_response(exchange.replies, status=400)
        messages = list(exchange.replies)
        if exchange.hold is not None:
            released = await self._wait_for_release(exchange.hold, request)
            if released is None:
                return web.Response(status=499, text="client went away")
            messages.extend(released)
        return self._json_response(messages)

    async def _wait_for_release(
        self, hold: Hold, request: web.Request
    ) -> tuple[Message, ...] | None:
        wake = asyncio.Event()
        self._register(hold.client_id, wake)
        released: tuple[Message, ...] | None = None
        try:
            while not self.core.is_ready(hold, self._now()):
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, hold.deadline - self._now())):
                        await wake.wait()
            transport = request.transport
            if transport is not None and not transport.is_closing():
                released = self.core.release(hold, self._now())
            return released
        finally:
            self._unregister(hold.client_id, wake)
            if released is None:
                # The client hung up (or the handler was cancelled): keep its queue for the
                # next connect and start its max-interval clock.
                self.core.abandon(hold, self._now())

    # --- WebSocket ---------------------------------------------------------------------------

    async def _handle_get(self, request: web.Request) -> web.StreamResponse:
        if self.on_request is not None:
            self.on_request(request)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(
                text="CometD endpoint: POST for long-polling or GET with Upgrade: websocket\n"
            )
        ws = web.WebSocketResponse(max_msg_size=self.max_payload)
        await ws.prepare(request)
        socket = _Socket(ws, request.transport)
        self._sockets.add(socket)
        credentials = self._credentials(request)
        sender = asyncio.create_task(self._ws_sender(socket), name="bayeux-ws-sender")
        try:
            async for frame in ws:
                if frame.type is WSMsgType.TEXT:
                    await self._ws_receive(socket, frame.data, credentials)
                elif frame.type is WSMsgType.BINARY:
                    error = bayeux_error(ErrorCode.BAD_REQUEST, "binary frames are not Bayeux")
                    reply = Message(channel="/meta/unsuccessful", successful=False, error=error)
                    await self._ws_send(socket, [reply])
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._sockets.discard(socket)
            now = self._now()
            for hold in socket.holds.values():
                self.core.abandon(hold, now)
            for client_id in list(socket.clients):
                self._release_socket(socket, client_id)
        return ws

    async def _ws_receive(self, socket: _Socket, text: str, credentials: Credentials) -> None:
        exchange = self.core.receive(text, now=self._now(), credentials=credentials)
        for client_id in exchange.client_ids:
            self._claim(socket, client_id)
        if exchange.replies:
            await self._ws_send(socket, exchange.replies)
        if exchange.hold is not None:
            socket.holds[exchange.hold.client_id] = exchange.hold
        self._settle(exchange, credentials.remote)
        socket.wake.set()

    def _claim(self, socket: _Socket, client_id: str) -> None:
        """Events of ``client_id`` go out on ``socket`` from now on.

        A client that comes back on a new WebSocket (its old one timed out on a black-holed
        path, which the server cannot see) leaves the old socket, so the old socket's sender
        cannot take its events and write them into the void.
        """
        previous = self._socket_of.get(client_id)
        if previous is socket:
            return
        if previous is not None:
            previous.clients.discard(client_id)
            previous.holds.pop(client_id, None)  # superseded by the connect on the new socket
            self._unregister(client_id, previous.wake)
        self._socket_of[client_id] = socket
        socket.clients.add(client_id)
        self._register(client_id, socket.wake)

    def _release_socket(self, socket: _Socket, client_id: str) -> None:
        socket.clients.discard(client_id)
        self._unregister(client_id, socket.wake)
        if self._socket_of.get(client_id) is socket:
            del self._socket_of[client_id]

    @staticmethod
    def _can_write_now(socket: _Socket) -> bool:
        """Whether a frame may go straight into the socket's transport: nothing can reorder or
        hold it (compressed frames go through aiohttp's locked compressor; a full send buffer
        waits for aiohttp's flow control)."""
        transport = socket.transport
        return not (
            socket.ws.compress
            or socket.ws.closed
            or transport is None
            or transport.is_closing()
            or socket.send_lock.locked()
            or transport.get_write_buffer_size() > _WS_HIGH_WATER
        )

    @staticmethod
    def _write_now(socket: _Socket, messages: Sequence[Message]) -> None:
        if messages and socket.transport is not None:
            socket.transport.write(_text_frame(encode_messages(messages).encode()))

    async def _ws_send(self, socket: _Socket, messages: Sequence[Message]) -> None:
        if not messages or socket.ws.closed:
            return
        if self._can_write_now(socket):
            self._write_now(socket, messages)
            return
        async with socket.send_lock:
            with contextlib.suppress(ConnectionError):
                await socket.ws.send_str(encode_messages(messages))

    async def _ws_sender(self, socket: _Socket) -> None:
        """Push queued events at once; answer held connects when they are due."""
        while not socket.ws.closed:
            socket.wake.clear()
            now = self._now()
            outgoing: list[Message] = []
            for client_id in sorted(socket.clients):
                outgoing.extend(self.core.drain(client_id))
            for client_id, hold in list(socket.holds.items()):
                if self.core.is_ready(hold, now):
                    outgoing.extend(self.core.release(hold, now))
                    del socket.holds[client_id]
            for client_id in [c for c in socket.clients if not self.core.has_client(c)]:
                self._release_socket(socket, client_id)
            await self._ws_send(socket, outgoing)
            deadlines = [hold.deadline for hold in socket.holds.values()]
            timeout = max(0.0, min(deadlines) - self._now()) if deadlines else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await socket.wake.wait()
