"""A SIP Cluster node's SIP side: UDP and TCP transports, registrar, B2BUA and media port.

The asyncio layer around the sans-I/O SIP core (``emulator.sip``) and the node's logic
(``node.ClusterNode``): one ``UserAgent`` per transport (RFC 3261 §17 transactions; methods
outside INVITE/ACK/BYE/CANCEL/OPTIONS/REGISTER answered 501 or 405 by the UA, unparseable
requests 400 by the transport, garbage datagrams counted and dropped), REGISTER to
``sip_phones``, calls to ``b2bua``, OPTIONS answered here (§11). It owns two tasks — registration
expiry and the media watchdog — and shuts down in order: refuse new calls, end calls (BYE), give
the BYEs a moment, then close the sockets.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.common.tasks import OwnedTasks
from emulator.sip.transport import SipTransport, UdpTransport, bind_udp_and_tcp
from emulator.sip.ua import IncomingRequest, UserAgent
from emulator.sipcluster.b2bua import B2bua
from emulator.sipcluster.media import MediaPort
from emulator.sipcluster.node import ClusterNode
from emulator.sipcluster.sip_config import SipConfig
from emulator.sipcluster.sip_phones import PhoneDirectory

METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER")
WATCH_INTERVAL = 0.1
BYE_GRACE = 1.0


class SipSide:
    def __init__(self, node: ClusterNode, config: SipConfig, log: JsonLog) -> None:
        self.node = node
        self.config = config
        self.log = log
        self._stack = AsyncExitStack()
        self.transports: list[SipTransport] = []
        self.uas: dict[str, UserAgent] = {}
        self._media: MediaPort | None = None
        self._phones: PhoneDirectory | None = None
        self._b2bua: B2bua | None = None
        self._tasks = OwnedTasks(log, "sip")  # INVITE, BYE and CANCEL transactions
        self._loops: list[asyncio.Task[None]] = []
        self.endpoints: dict[str, str] = {}

    @property
    def b2bua(self) -> B2bua:
        assert self._b2bua is not None, "SIP side is not started"
        return self._b2bua

    @property
    def phones(self) -> PhoneDirectory:
        assert self._phones is not None, "SIP side is not started"
        return self._phones

    @property
    def media(self) -> MediaPort:
        assert self._media is not None, "SIP side is not started"
        return self._media

    async def start(self) -> None:
        config = self.config
        try:
            udp = await self._bind_transports()
            self._media = await self._stack.enter_async_context(
                MediaPort(config.media.host, config.media.port)
            )
            for transport in self.transports:
                ua = UserAgent(
                    transport,
                    timers=config.timers,
                    allowed_methods=METHODS,
                    on_request=self._on_request,
                    on_ack_timeout=self._on_ack_timeout,
                    log=self.log,
                )
                self.uas[transport.name] = await self._stack.enter_async_context(ua)
        except BaseException:
            await self._stack.aclose()
            raise
        self._phones = PhoneDirectory(self.node, config, self.log)
        self._b2bua = B2bua(
            self.node, config, self.uas, self._phones, self._media, self.log, self._tasks.spawn
        )
        self.endpoints = {"sip": str(udp.bound), "media": str(self._media.bound)}
        self._loops = [
            asyncio.create_task(self._expire_loop()),
            asyncio.create_task(self._watch_loop()),
        ]

    async def _bind_transports(self) -> UdpTransport:
        config = self.config
        udp, tcp = await bind_udp_and_tcp(
            config.sip.host, config.sip.port, tcp=config.tcp, log=self.log, stack=self._stack
        )
        self.transports = [udp] if tcp is None else [udp, tcp]
        return udp

    async def stop(self) -> None:
        if self._b2bua is not None:
            self._b2bua.stopping = True
            self._b2bua.end_all()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self._tasks.close(grace=BYE_GRACE)  # the BYEs just sent
        await self._stack.aclose()

    # -- requests -------------------------------------------------------------------------

    def _on_request(self, incoming: IncomingRequest) -> None:
        method = incoming.request.method
        if method == "REGISTER":
            self.phones.register(incoming, self.media.now())
        elif method == "OPTIONS":
            incoming.respond(200, headers=[("Allow", ", ".join(METHODS))])
        else:
            self.b2bua.on_request(incoming)

    def _on_ack_timeout(self, incoming: IncomingRequest) -> None:
        self.b2bua.on_ack_timeout(incoming)

    # -- loops ----------------------------------------------------------------------------

    async def _expire_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.phones.expire(loop.time())
            next_expiry = self.phones.next_expiry()
            delay = 0.5 if next_expiry is None else next_expiry - loop.time()
            await asyncio.sleep(min(max(delay, 0.01), 0.5))

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            self.b2bua.watch_media()

    # -- state ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        now = self.media.now()
        transports = {
            transport.name.lower(): {
                **vars(transport.stats),
                "requests_rejected": self.uas[transport.name].requests_rejected,
            }
            for transport in self.transports
        }
        return {
            "endpoints": self.endpoints,
            "counters": {
                **transports,
                "registers": self.phones.registers,
                "registers_rejected": self.phones.rejected,
                **{f"calls_{key}": value for key, value in self.b2bua.counters.items()},
                "calls_active": len(self.b2bua.calls),
            },
            "media": {
                **self.media.table.counters.as_dict(),
                "active_calls": self.media.table.active_calls,
            },
            "registrations": self.phones.state(now),
            "calls": self.b2bua.state(),
        }
