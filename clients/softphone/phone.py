"""The softphone as a library: ``async with Softphone(config) as phone`` registers and answers.

Composes the shared SIP and RTP cores (``emulator.sip``, ``emulator.rtp``) with the softphone's
registration loop (``registering``) and line (``line``).  State changes are emitted as pyee
events at this edge: ``registered(registrar)``, ``registration_failed(registrar, reason)``,
``call_ringing(report)``, ``call_answered(report)``, ``call_ended(report)``.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

from clients.phoneline.calls import PhoneCall
from clients.phoneline.line import Line
from clients.softphone.config import SoftphoneConfig
from clients.softphone.registering import Registering
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.rtp.endpoint import MediaTicker
from emulator.sip.transport import UdpTransport
from emulator.sip.ua import UserAgent


class Softphone:
    def __init__(self, config: SoftphoneConfig, log: JsonLog | None = None) -> None:
        self.config = config
        self.log = log or JsonLog(config.name, config.dc)
        self.events = AsyncIOEventEmitter()
        self.events.on("error", self._on_error)
        self._stack = AsyncExitStack()
        self._transport: UdpTransport | None = None
        self._ua: UserAgent | None = None
        self._registering: Registering | None = None
        self._line: Line | None = None

    @property
    def sip_bound(self) -> Endpoint:
        assert self._transport is not None, "softphone is not started"
        return self._transport.bound

    @property
    def line(self) -> Line:
        assert self._line is not None, "softphone is not started"
        return self._line

    @property
    def registering(self) -> Registering:
        assert self._registering is not None, "softphone is not started"
        return self._registering

    async def __aenter__(self) -> Softphone:
        config = self.config
        try:
            self._transport = await self._stack.enter_async_context(
                UdpTransport(config.sip.host, config.sip.port, log=self.log)
            )
            ticker = await self._stack.enter_async_context(MediaTicker())
            self._ua = UserAgent(
                self._transport,
                timers=config.timers,
                allowed_methods=("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"),
                log=self.log,
            )
            await self._stack.enter_async_context(self._ua)
            self._line = Line(config.line(), self._ua, ticker, self.log, self.events.emit)
            self._ua.on_request = self._line.on_request
            self._ua.on_ack_timeout = self._line.on_ack_timeout
            self._registering = Registering(config, self._ua, self.log, self.events.emit)
        except BaseException:
            await self._stack.aclose()
            raise
        self._line.start()
        self._registering.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Stop registering first, then end calls (BYE), then close the SIP socket and ticker.
        if self._registering is not None:
            await self._registering.stop()
        if self._line is not None:
            await self._line.stop()
        await self._stack.aclose()
        self.events.remove_all_listeners()

    def status(self) -> dict[str, Any]:
        registration = self.registering.status()
        transport = self._transport
        assert transport is not None and self._ua is not None
        return {
            "name": self.config.name,
            "dc": self.config.dc,
            "dn": self.config.dn,
            "sip": str(transport.bound),
            "registrar": registration["registrar"],
            "registered": registration["registered"],
            "registration": registration,
            "registrars": [
                {"name": entry.name, "endpoint": str(entry.endpoint)}
                for entry in self.config.registrars
            ],
            "calls": {"active": self.line.active_count(), "known": len(self.line.calls)},
            "counters": {
                "sip_messages_received": transport.stats.messages_received,
                "sip_garbage_dropped": transport.stats.garbage_dropped,
                "sip_bad_requests_answered": transport.stats.bad_requests_answered,
                "sip_requests_rejected": self._ua.requests_rejected,
            },
        }

    @property
    def name(self) -> str:
        return self.config.name

    def reports(self) -> list[dict[str, Any]]:
        return self.line.reports()

    def find(self, key: str) -> PhoneCall:
        return self.line.find(key)

    def answer(self, key: str) -> PhoneCall:
        return self.line.answer(key)

    def release(self, key: str) -> PhoneCall:
        return self.line.release(key)

    def _on_error(self, error: BaseException) -> None:
        self.log.error("softphone.listener_failed", error=repr(error))
