"""asyncio CometD client over aiohttp (``websocket``, ``long-polling``) around the client core.

Used by the WWE client (``clients/wwe/``) and by tests. One driver task follows the core's
advice (handshake, connect, retry after ``interval`` plus backoff, re-handshake on
``402::Unknown client``) and, after a new handshake, re-subscribes the channels the application
asked for. Application requests (subscribe, publish) travel beside the held connect.

pyee events on :attr:`BayeuxClient.events`: ``state`` (new ClientState, old ClientState),
``message`` (Message: every delivered event), ``handshake`` (Message: successful reply),
``handshake_failed`` (str), ``connect_failed`` (str), ``error`` (Exception).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from pyee.asyncio import AsyncIOEventEmitter

from emulator.bayeux.client_core import (
    ClientCore,
    ClientEvent,
    ClientState,
    ConnectFailed,
    Delivery,
    HandshakeFailed,
    HandshakeSucceeded,
    NextAction,
    PublishReply,
    StateChanged,
    Step,
    SubscriptionReply,
)
from emulator.bayeux.client_transports import (
    ClientTransport,
    LongPollingTransport,
    TransportError,
    TransportUnsupported,
    WebSocketTransport,
)
from emulator.bayeux.messages import (
    LONG_POLLING,
    WEBSOCKET,
    BayeuxError,
    Message,
    ProtocolError,
    UsageError,
)


class HandshakeRefused(ProtocolError):
    """The server answered the handshake unsuccessfully, or it could not be reached."""


class RequestFailed(ProtocolError):
    """A subscribe, unsubscribe or publish was answered unsuccessfully (or not at all)."""

    def __init__(self, error: str, reply: Message) -> None:
        super().__init__(error)
        self.reply = reply


class BayeuxClient:
    """A CometD client for one URL, e.g. ``http://127.0.0.1:8080/workspace/v3/notifications``.

    Pass an ``aiohttp.ClientSession`` to share cookies with REST calls (GWS needs its
    ``WORKSPACE_SESSIONID`` cookie on the handshake; a session created here uses an unsafe cookie
    jar so cookies set by ``127.0.0.1`` are kept). All durations are seconds, already scaled.
    """

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        connection_types: Iterable[str] = (WEBSOCKET, LONG_POLLING),
        headers: Mapping[str, str] | None = None,
        max_network_delay: float = 10.0,
        backoff_increment: float = 1.0,
        max_backoff: float = 60.0,
        append_message_type: bool = True,
        handshake_ext: dict[str, Any] | None = None,
        resubscribe: bool = True,
    ) -> None:
        self.url = url
        self.core = ClientCore(
            connection_types=connection_types,
            backoff_increment=backoff_increment,
            max_backoff=max_backoff,
            handshake_ext=handshake_ext,
        )
        self.events = AsyncIOEventEmitter()
        self.events.on("error", self._ignore_error)
        self.max_network_delay = max_network_delay
        self.resubscribe = resubscribe
        self._own_session = session is None
        self._session = session
        self._headers = dict(headers or {})
        self._append = append_message_type
        self._transports: dict[str, ClientTransport] = {}
        self._driver: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._handshake_outcome: asyncio.Future[Message] | None = None
        self._state_changed = asyncio.Event()
        self._closed = False

    # --- properties --------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self.core.state

    @property
    def client_id(self) -> str | None:
        return self.core.client_id

    @property
    def connection_type(self) -> str:
        return self.core.connection_type

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> BayeuxClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with contextlib.suppress(BayeuxError):
            await self.disconnect()
        await self.close()

    async def handshake(self, timeout: float | None = None) -> Message:
        """Handshake (and keep connecting in the background); returns the successful reply.

        Raises :class:`HandshakeRefused` if this attempt fails; the driver then carries on as
        the advice says (a refusal with ``reconnect: none`` stops it).
        """
        if self._closed:
            raise UsageError("client is closed")
        if self.core.state not in (ClientState.UNCONNECTED, ClientState.DISCONNECTED):
            raise UsageError(f"cannot handshake in state {self.core.state.value}")
        loop = asyncio.get_running_loop()
        self._handshake_outcome = loop.create_future()
        outcome = self._handshake_outcome
        self.core.next_action = NextAction(Step.HANDSHAKE, 0.0)
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive(), name="bayeux-client-driver")
        self._kick.set()
        async with asyncio.timeout(timeout or self.max_network_delay * 2):
            return await outcome

    async def wait_for_state(self, *states: ClientState, timeout: float) -> ClientState:
        async with asyncio.timeout(timeout):
            while self.core.state not in states:
                self._state_changed.clear()
                await self._state_changed.wait()
        return self.core.state

    async def disconnect(self) -> None:
        """Send /meta/disconnect (best effort) and stop the driver."""
        message, events = self.core.disconnect()
        self._dispatch(events)
        await self._stop_driver()
        if message is not None:
            with contextlib.suppress(TransportError):
                await self._transport().exchange([message], timeout=self.max_network_delay)

    async def close(self) -> None:
        """Drop everything without telling the server (a closed browser tab)."""
        self._closed = True
        await self._stop_driver()
        for transport in self._transports.values():
            await transport.close()
        self._transports.clear()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None
        self.events.remove_all_listeners()

    async def _stop_driver(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None and driver is not asyncio.current_task():
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver

    # --- requests ----------------------------------------------------------------------------

    async def subscribe(self, channel: str) -> Message:
        """Subscribe (and re-subscribe after every new handshake); raises RequestFailed."""
        try:
            return await self._request(self.core.subscribe(channel))
        except RequestFailed:
            self.core.subscriptions.discard(channel)  # a refused channel is not re-sent
            raise

    async def unsubscribe(self, channel: str) -> Message:
        return await self._request(self.core.unsubscribe(channel))

    async def publish(self, channel: str, data: Any) -> Message:
        return await self._request(self.core.publish(channel, data))

    async def _request(self, message: Message) -> Message:
        replies = await self._send([message], timeout=self.max_network_delay)
        for reply in replies:
            if reply.id == message.id:
                if not reply.successful:
                    raise RequestFailed(reply.error or "request failed", reply)
                return reply
        raise RequestFailed("no reply", Message(channel=message.channel, id=message.id))

    async def _send(self, messages: list[Message], *, timeout: float) -> list[Message]:
        """Exchange a batch; feed the outcome to the core; return the replies it produced."""
        try:
            received = await self._transport().exchange(messages, timeout=timeout)
        except TransportError as exc:
            events = self.core.transport_failed(messages, str(exc))
        else:
            events = self.core.receive(received)
        self._dispatch(events)
        return [
            event.reply for event in events if isinstance(event, SubscriptionReply | PublishReply)
        ]

    # --- driver ------------------------------------------------------------------------------

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        return self._session

    def _transport(self, kind: str | None = None) -> ClientTransport:
        kind = kind or self.core.connection_type
        transport = self._transports.get(kind)
        if transport is None:
            if kind == WEBSOCKET:
                transport = WebSocketTransport(
                    self._session_or_new(),
                    self.url,
                    headers=self._headers,
                    on_unsolicited=self._on_unsolicited,
                    on_closed=self._on_ws_closed,
                )
            else:
                transport = LongPollingTransport(
                    self._session_or_new(),
                    self.url,
                    headers=self._headers,
                    append_message_type=self._append,
                )
            self._transports[kind] = transport
        return transport

    async def _drive(self) -> None:
        while True:
            action = self.core.next_action
            if action.step is Step.NONE:
                self._kick.clear()
                await self._kick.wait()
                continue
            if action.delay > 0:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + action.delay
                # Only a new action (handshake() was called) cuts the advised delay short.
                while self.core.next_action is action and loop.time() < deadline:
                    self._kick.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(deadline):
                            await self._kick.wait()
                if self.core.next_action is not action:
                    continue
            if action.step is Step.HANDSHAKE:
                await self._handshake_once()
            else:
                message = self.core.connect()
                timeout = (self.core.advice.timeout_ms or 0) / 1000 + self.max_network_delay
                await self._send([message], timeout=timeout)

    async def _handshake_once(self) -> None:
        message, events = self.core.handshake()
        self._dispatch(events)
        kind = self.core.connection_types[0]
        try:
            received = await self._transport(kind).exchange(
                [message], timeout=self.max_network_delay
            )
        except TransportUnsupported as exc:
            # Like CometD: no WebSocket there, fall back to the next transport at once.
            remaining = tuple(k for k in self.core.connection_types if k != kind)
            if not remaining:
                self._dispatch(self.core.transport_failed([message], str(exc)))
                return
            self.core.connection_types = remaining
            events = self.core.transport_failed([message], str(exc))
            self._dispatch([e for e in events if not isinstance(e, HandshakeFailed)])
            self.core.next_action = NextAction(Step.HANDSHAKE, 0.0)
            return
        except TransportError as exc:
            self._dispatch(self.core.transport_failed([message], str(exc)))
            return
        self._dispatch(self.core.receive(received))
        if self.core.client_id is not None and self.core.connection_type != kind:
            stale = self._transports.pop(kind, None)
            if stale is not None:
                await stale.close()
        if self.core.client_id is not None and self.resubscribe and self.core.subscriptions:
            await self._send(self.core.resubscribe(), timeout=self.max_network_delay)

    def _on_unsolicited(self, messages: list[Message]) -> None:
        self._dispatch(self.core.receive(messages))

    def _on_ws_closed(self, reason: str) -> None:
        pass  # pending requests already failed; the driver retries per advice

    def _ignore_error(self, error: Exception) -> None:
        pass

    def _dispatch(self, events: list[ClientEvent]) -> None:
        for event in events:
            if isinstance(event, StateChanged):
                self._state_changed.set()
                self.events.emit("state", event.new, event.old)
            elif isinstance(event, Delivery):
                self.events.emit("message", event.message)
            elif isinstance(event, HandshakeSucceeded):
                self.events.emit("handshake", event.reply)
                self._settle_handshake(event.reply, None)
            elif isinstance(event, HandshakeFailed):
                self.events.emit("handshake_failed", event.error)
                self._settle_handshake(None, event.error)
            elif isinstance(event, ConnectFailed):
                self.events.emit("connect_failed", event.error)

    def _settle_handshake(self, reply: Message | None, error: str | None) -> None:
        outcome, self._handshake_outcome = self._handshake_outcome, None
        if outcome is None or outcome.done():
            return
        if reply is not None:
            outcome.set_result(reply)
        else:
            outcome.set_exception(HandshakeRefused(error or "handshake failed"))
