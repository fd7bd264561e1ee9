"""Client-side CometD transports over aiohttp: ``long-polling`` (HTTP POST) and ``websocket``.

Both offer one operation, ``exchange(messages, timeout)``: send a batch and return the replies to
it. Long-polling returns everything in the HTTP response (replies and any events the server put
in it); a WebSocket returns the replies matched by message id and hands every other message
(pushed events, stray replies) to ``on_unsolicited``. Every aiohttp/OSError failure is translated
here, at this one boundary, into :class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from emulator.bayeux.messages import (
    LONG_POLLING,
    WEBSOCKET,
    BayeuxError,
    Message,
    ProtocolError,
    encode_messages,
    parse_messages,
)


class TransportError(BayeuxError):
    """The request could not get its replies (refused, reset, timed out, not Bayeux)."""


class TransportUnsupported(TransportError):
    """The server answered the WebSocket upgrade with a client error: it has no such transport."""


class LongPollingTransport:
    name = LONG_POLLING

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        headers: Mapping[str, str],
        append_message_type: bool,
    ) -> None:
        self._session = session
        self._url = url.rstrip("/")
        self._headers = {"Content-Type": "application/json;charset=UTF-8", **headers}
        self._append = append_message_type

    def _url_for(self, messages: Sequence[Message]) -> str:
        # As the CometD JS client does: /handshake, /connect, /disconnect after the base URL.
        first = messages[0].channel if len(messages) == 1 else ""
        if self._append and first in ("/meta/handshake", "/meta/connect", "/meta/disconnect"):
            return f"{self._url}/{first.rsplit('/', 1)[1]}"
        return self._url

    async def exchange(self, messages: Sequence[Message], *, timeout: float) -> list[Message]:
        try:
            async with (
                asyncio.timeout(timeout),
                self._session.post(
                    self._url_for(messages), data=encode_messages(messages), headers=self._headers
                ) as response,
            ):
                body = await response.read()
                if response.status != 200:
                    text = body[:200].decode("utf-8", "replace")
                    raise TransportError(f"HTTP {response.status}: {text}")
        except TimeoutError:
            raise TransportError(f"no reply within {timeout:.3g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        try:
            return parse_messages(body)
        except ProtocolError as exc:
            raise TransportError(f"server sent a bad Bayeux payload: {exc.error}") from None

    async def close(self) -> None:
        return None


@dataclass(eq=False)
class _Socket:
    """One open WebSocket, its reader task and the replies still awaited on it."""

    ws: aiohttp.ClientWebSocketResponse
    pending: dict[str, asyncio.Future[Message]] = field(default_factory=dict)

    def fail_pending(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        for waiter in pending.values():
            if not waiter.done():
                waiter.set_exception(TransportError(reason))


class WebSocketTransport:
    """CometD's ``websocket`` transport: one socket at a time, replies matched by message id.

    A reply that does not come in time means the path may be dead — a black-holed socket never
    errors by itself — so, like the CometD JS client ("Message Timeout"), the socket is dropped
    at once and the next exchange opens a new one. Closing the dropped socket (a close frame,
    at most ``close_timeout`` for the answer, then an abort) runs in a task this transport owns.
    """

    name = WEBSOCKET

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        headers: Mapping[str, str],
        on_unsolicited: Callable[[list[Message]], None],
        on_closed: Callable[[str], None],
        close_timeout: float = 1.0,
    ) -> None:
        self._session = session
        self._url = "ws" + url[4:] if url.startswith("http") else url
        self._headers = dict(headers)
        self._on_unsolicited = on_unsolicited
        self._on_closed = on_closed
        self._close_timeout = close_timeout
        self._socket: _Socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # readers and closers
        self._open_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()

    def _own(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, timeout: float) -> _Socket:
        async with self._open_lock:
            if self._socket is not None and not self._socket.ws.closed:
                return self._socket
            try:
                async with asyncio.timeout(timeout):
                    ws = await self._session.ws_connect(
                        self._url, headers=self._headers, autoping=True, max_msg_size=0
                    )
            except aiohttp.WSServerHandshakeError as exc:
                if 400 <= exc.status < 500 and exc.status not in (401, 403, 408, 429):
                    raise TransportUnsupported(
                        f"WebSocket upgrade refused: HTTP {exc.status}"
                    ) from None
                raise TransportError(f"WebSocket upgrade failed: HTTP {exc.status}") from None
            except TimeoutError:
                raise TransportError(f"WebSocket not open within {timeout:.3g} s") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise TransportError(f"{type(exc).__name__}: {exc}") from None
            socket = self._socket = _Socket(ws)
            self._own(self._read(socket), "bayeux-ws-reader")
            return socket

    async def _read(self, socket: _Socket) -> None:
        ws = socket.ws
        reason = "WebSocket closed"
        try:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    messages = parse_messages(frame.data)
                except ProtocolError as exc:
                    reason = f"server sent a bad Bayeux payload: {exc.error}"
                    break
                unsolicited: list[Message] = []
                for message in messages:
                    waiter = socket.pending.pop(str(message.id), None) if message.is_reply else None
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
                    else:
                        unsolicited.append(message)
                if unsolicited:
                    self._on_unsolicited(unsolicited)
            if ws.close_code is not None:
                reason = f"WebSocket closed with code {ws.close_code}"
        except (aiohttp.ClientError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            socket.fail_pending(reason)
            if self._socket is socket:
                self._socket = None
                self._on_closed(reason)

    def _drop(self, socket: _Socket, reason: str) -> None:
        """Stop using ``socket`` now; close it in the background."""
        if self._socket is socket:
            self._socket = None
        socket.fail_pending(reason)
        self._own(self._close_quietly(socket.ws), "bayeux-ws-closer")

    async def _close_quietly(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # A timeout while waiting for the close answer makes aiohttp abort the connection.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._close_timeout):
                await ws.close(code=aiohttp.WSCloseCode.OK, message=b"Message Timeout")

    async def exchange(self, messages: Sequence[Message], *, timeout: float) -> list[Message]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        socket = await self._open(timeout)
        waiters = {str(message.id): loop.create_future() for message in messages}
        socket.pending.update(waiters)
        try:
            async with self._send_lock:
                await socket.ws.send_str(encode_messages(messages))
            async with asyncio.timeout_at(deadline):
                return list(await asyncio.gather(*waiters.values()))
        except TimeoutError:
            reason = f"no reply within {timeout:.3g} s"
            self._drop(socket, f"{reason}: WebSocket dropped")
            raise TransportError(reason) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        finally:
            for key, waiter in waiters.items():
                if socket.pending.get(key) is waiter:
                    del socket.pending[key]
                if not waiter.done():
                    waiter.cancel()
                elif not waiter.cancelled():
                    waiter.exception()  # consumed so asyncio does not log it as never retrieved

    async def close(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            self._own(self._close_quietly(socket.ws), "bayeux-ws-closer")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


ClientTransport = LongPollingTransport | WebSocketTransport
