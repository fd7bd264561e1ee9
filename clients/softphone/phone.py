"""The softphone as a library: ``async with Softphone(config) as phone`` registers and answers.

Composes the shared SIP and RTP cores (``emulator.sip``, ``emulator.rtp``) with the softphone's
registration loop (``registering``) and a phone line (``clients.phoneline``).  State changes are
emitted as pyee events at this edge: ``registered(registrar)``, ``registration_failed(registrar,
reason)``, ``unregistered(registrar)`` (on stop), ``call_ringing(report)``,
``call_answered(report)``, ``call_ended(report)``.
"""

from __future__ import annotations

from typing import Any

from clients.phoneline.phone import LinePhone
from clients.softphone.config import SoftphoneConfig
from clients.softphone.registration import Registering
from emulator.common.jsonlog import JsonLog


class Softphone(LinePhone):
    def __init__(self, config: SoftphoneConfig, log: JsonLog | None = None) -> None:
        super().__init__(config, log)
        self.config = config
        self._registering: Registering | None = None

    @property
    def registering(self) -> Registering:
        assert self._registering is not None, "softphone is not started"
        return self._registering

    async def __aenter__(self) -> Softphone:
        await self.open_line()
        self._registering = Registering(self.config, self.ua, self.log, self.events.emit)
        self._registering.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Stop registering first, then end calls (BYE), then close the SIP socket and ticker.
        if self._registering is not None:
            await self._registering.stop()
        await self.close_line()

    def status(self) -> dict[str, Any]:
        registration = self.registering.status()
        return {
            "name": self.config.name,
            "dc": self.config.dc,
            "dn": self.config.dn,
            "sip": str(self.sip_bound),
            "registrar": registration["registrar"],
            "registered": registration["registered"],
            "registration": registration,
            "registrars": [
                {"name": entry.name, "endpoint": str(entry.endpoint)}
                for entry in self.config.registrars
            ],
            "calls": {"active": self.line.active_count(), "known": len(self.line.calls)},
            "counters": self.counters(),
        }
