"""The pyee edge of a WWE desktop: what it shows, the events it emits, and waiting on it.

:class:`DesktopView` applies the events of the sans-I/O :class:`~clients.wwe.desktop.Desktop`
and emits them (STYLE §8: after the state changed; an ``"error"`` listener always exists): ``state``
(ConnectionChanged | VoiceChanged), ``message`` (str), ``call`` (Call), ``error`` (VoiceError, or
an exception a listener raised). Callers wait on conditions (``wait_until``) checked after every
change, never on fixed sleeps. ``WweClient`` is a ``DesktopView``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

from clients.wwe.desktop import (
    CallChanged,
    Connection,
    ConnectionChanged,
    Desktop,
    DesktopEvent,
    ErrorReported,
    UserMessage,
    VoiceChanged,
)
from clients.wwe.errors import VoiceError
from clients.wwe.workspace import Call, CallState, UserInfo, VoiceState
from emulator.common.jsonlog import JsonLog


class DesktopView:
    def __init__(self, username: str, log: JsonLog | None) -> None:
        self.username = username
        self.log = log
        self.desktop = Desktop()
        self.events = AsyncIOEventEmitter()
        self.events.on("error", self._unhandled_error)
        self._changed = asyncio.Event()
        self._errors = 0  # EventErrors so far, and the last one (login outcome)
        self._last_error: VoiceError | None = None
        # (loop time, text) of every message shown: when an outcome was observed.
        self.message_times: list[tuple[float, str]] = []

    # --- what the desktop shows --------------------------------------------------------------

    @property
    def connection(self) -> Connection:
        return self.desktop.connection

    @property
    def voice(self) -> VoiceState:
        return self.desktop.voice

    @property
    def calls(self) -> dict[str, Call]:
        return dict(self.desktop.calls)

    @property
    def messages(self) -> list[str]:
        return list(self.desktop.messages)

    @property
    def user(self) -> UserInfo | None:
        return self.desktop.user

    @property
    def node(self) -> str | None:
        """The GWS node serving the session (from ``WorkspaceInitializationComplete``)."""
        return self.desktop.user.gws_node if self.desktop.user else None

    # --- waiting -----------------------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` holds; it is checked after every change of the desktop."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_for_message(self, text: str, timeout: float) -> None:
        await self.wait_until(lambda: text in self.desktop.messages, timeout)

    async def wait_for_connection(self, state: Connection, timeout: float) -> None:
        await self.wait_until(lambda: self.connection is state, timeout)

    async def wait_for_call(
        self, state: CallState, timeout: float, call_id: str | None = None
    ) -> Call:
        """The first call notification (since log-on) with ``state`` (and ``call_id``)."""

        def found() -> Call | None:
            for call in self.desktop.call_log:
                if call.state is state and call_id in (None, call.id):
                    return call
            return None

        await self.wait_until(lambda: found() is not None, timeout)
        call = found()
        assert call is not None
        return call

    # --- emitting ---------------------------------------------------------------------------

    def _dispatch(self, events: list[DesktopEvent]) -> None:
        for event in events:
            if isinstance(event, ConnectionChanged | VoiceChanged):
                self._log("wwe.state", change=event.describe())
                self.events.emit("state", event)
            elif isinstance(event, UserMessage):
                self.message_times.append((asyncio.get_running_loop().time(), event.text))
                self._log("wwe.message", text=event.text)
                self.events.emit("message", event.text)
            elif isinstance(event, CallChanged):
                call = event.call
                self._log("wwe.call", ConnID=call.id, state=str(call.state))
                self.events.emit("call", call)
            elif isinstance(event, ErrorReported):
                self._errors += 1
                self._last_error = event.error
                self._log("wwe.error", code=event.error.code, text=event.error.text)
                self.events.emit("error", event.error)
        if events:
            self._touch()

    def _say(self, text: str) -> None:
        self._dispatch(self.desktop.say(text))

    def _log(self, event: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.event(event, user=self.username, **fields)

    def _unhandled_error(self, error: Exception) -> None:
        pass  # every EventError is also a message; an "error" listener must exist (pyee)

    def _touch(self) -> None:
        """Wake the waiters (also for a report that changed nothing)."""
        self._changed.set()
        self._changed = asyncio.Event()
