"""A standalone SIP registrar: the ``Registrar`` binding table behind a ``UserAgent`` on UDP/TCP.

Answers REGISTER (RFC 3261 §10.3) and OPTIONS (§11) and refuses other methods 405/501, expires
bindings on the loop clock, and reports changes through ``on_change``.  The SIP Cluster node
embeds the same pieces; this service is the minimal registrar for tests, SIPp runs and labs
without a cluster.  ``answering = False`` makes it a silent peer (requests are ignored, as a
black-holed or frozen node would), so a client's failover can be exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AsyncExitStack

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale
from emulator.sip.message import Message
from emulator.sip.registrar_core import RegisterOutcome, Registrar
from emulator.sip.transaction import TimerConfig
from emulator.sip.transport import SipTransport, TcpTransport, UdpTransport, bind_udp_and_tcp
from emulator.sip.ua import IncomingRequest, UserAgent

ChangeListener = Callable[[RegisterOutcome], None]


class RegistrarService:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "registrar",
        scale: TimeScale | None = None,
        tcp: bool = False,
        log: JsonLog | None = None,
        on_change: ChangeListener | None = None,
        min_expires: int = 1,
    ) -> None:
        self.name = name
        self._host = host
        self._port = port
        self._tcp = tcp
        self._log = log
        self.on_change = on_change
        self.registrar = Registrar(scale=scale, min_expires=min_expires)
        self.answering = True
        self.registers_answered = 0
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self._stack = AsyncExitStack()
        self._expiry_task: asyncio.Task[None] | None = None

    @property
    def bound(self) -> Endpoint:
        assert self.udp is not None
        return self.udp.bound

    async def __aenter__(self) -> RegistrarService:
        try:
            await self._bind()
        except BaseException:
            await self._stack.aclose()  # a failed start leaves no socket open
            raise
        self._expiry_task = asyncio.create_task(self._expire_loop())
        return self

    async def _bind(self) -> None:
        self.udp, self.tcp = await bind_udp_and_tcp(
            self._host, self._port, tcp=self._tcp, log=self._log, stack=self._stack
        )
        transports: list[SipTransport] = [self.udp] if self.tcp is None else [self.udp, self.tcp]
        for transport in transports:
            ua = UserAgent(
                transport,
                timers=TimerConfig(),
                allowed_methods=("REGISTER", "OPTIONS", "ACK", "CANCEL"),
                on_request=self._on_request,
                log=self._log,
            )
            await self._stack.enter_async_context(ua)
            handler = transport.handler
            assert handler is not None
            transport.handler = self._gate(handler)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry_task
        await self._stack.aclose()

    def _gate(
        self, handler: Callable[[Message, Endpoint, SipTransport], None]
    ) -> Callable[[Message, Endpoint, SipTransport], None]:
        def gated(message: Message, source: Endpoint, transport: SipTransport) -> None:
            if self.answering:
                handler(message, source, transport)

        return gated

    def _on_request(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        if request.method == "OPTIONS":
            incoming.respond(200, headers=[("Allow", "REGISTER, OPTIONS")])
            return
        if request.method != "REGISTER":
            return  # ACK / CANCEL: nothing of ours to end
        now = asyncio.get_running_loop().time()
        outcome = self.registrar.process(request, now, source=incoming.source)
        incoming.send_response(outcome.response)
        self.registers_answered += 1
        if self._log is not None:
            self._log.event(
                "sip.register",
                registrar=self.name,
                DN=outcome.aor,
                status=outcome.response.status,
                contact=[b.contact for b in outcome.added] or None,
                removed=len(outcome.removed) or None,
            )
        if self.on_change is not None and (outcome.added or outcome.removed):
            self.on_change(outcome)

    async def _expire_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for binding in self.registrar.expire(loop.time()):
                if self._log is not None:
                    self._log.event("sip.register.expired", registrar=self.name, DN=binding.aor)
            next_expiry = self.registrar.next_expiry()
            delay = 0.05 if next_expiry is None else max(0.01, next_expiry - loop.time())
            await asyncio.sleep(min(delay, 0.5))
