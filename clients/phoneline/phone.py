"""What a phone is, whatever it does with its calls: one UDP SIP port, a UA, a line, pyee events.

``LinePhone`` binds the SIP port, starts the shared media ticker and the UA (RFC 3261
transactions) and the line that answers on it (``line.Line`` or a subclass), and closes them in
order: calls end (BYE) before the socket closes. It also serves what the control API asks of a
phone (its calls, answer, release) and the SIP counters of its status. The softphone adds
registration, the PSTN gateway placing calls. Events are emitted after the state changed:
``call_ringing``, ``call_answered``, ``call_ended`` (a report each), with an ``error`` listener.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

from clients.phoneline.calls import PhoneCall
from clients.phoneline.config import PhoneSettings
from clients.phoneline.control import sip_counters
from clients.phoneline.line import Line
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.rtp.endpoint import MediaTicker
from emulator.sip.transport import UdpTransport
from emulator.sip.ua import UserAgent


class LinePhone:
    def __init__(self, settings: PhoneSettings, log: JsonLog | None = None) -> None:
        self.settings = settings
        self.log = log or JsonLog(settings.name, settings.dc)
        self.events = AsyncIOEventEmitter()
        self.events.on("error", self._on_error)
        self._stack = AsyncExitStack()
        self._transport: UdpTransport | None = None
        self._ua: UserAgent | None = None
        self._line: Line | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def sip_bound(self) -> Endpoint:
        assert self._transport is not None, f"{self.name} is not started"
        return self._transport.bound

    @property
    def ua(self) -> UserAgent:
        assert self._ua is not None, f"{self.name} is not started"
        return self._ua

    @property
    def line(self) -> Line:
        assert self._line is not None, f"{self.name} is not started"
        return self._line

    async def open_line(self, line_type: type[Line] = Line) -> Line:
        """Bind the SIP port, start the ticker, the UA and a ``line_type`` answering on it."""
        settings = self.settings
        try:
            transport = await self._stack.enter_async_context(
                UdpTransport(settings.sip.host, settings.sip.port, log=self.log)
            )
            ticker = await self._stack.enter_async_context(MediaTicker())
            ua = UserAgent(transport, timers=settings.timers, log=self.log)
            await self._stack.enter_async_context(ua)
        except BaseException:
            await self._stack.aclose()
            raise
        line = line_type(settings.line(), ua, ticker, self.log, self.events.emit)
        ua.on_request = line.on_request
        ua.on_ack_timeout = line.on_ack_timeout
        self._transport, self._ua, self._line = transport, ua, line
        line.start()
        return line

    async def close_line(self) -> None:
        """End the calls (BYE), then close the SIP socket and the ticker; drop listeners."""
        if self._line is not None:
            await self._line.stop()
        await self._stack.aclose()
        self.events.remove_all_listeners()

    def counters(self) -> dict[str, int]:
        assert self._transport is not None, f"{self.name} is not started"
        return sip_counters(self._transport, self.ua)

    def reports(self) -> list[dict[str, Any]]:
        return self.line.reports()

    def find(self, key: str) -> PhoneCall:
        return self.line.find(key)

    def answer(self, key: str) -> PhoneCall:
        return self.line.answer(key)

    def release(self, key: str) -> PhoneCall:
        return self.line.release(key)

    def _on_error(self, error: BaseException) -> None:
        self.log.error("phone.listener_failed", error=repr(error))
