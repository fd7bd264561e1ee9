"""The PSTN gateway as a library: ``async with Pstn(config) as pstn`` places and answers calls.

Composes the shared SIP and RTP cores with the phones' line (``clients.phoneline``): customer
calls are placed by ``Dialer`` to ``sip:DN@node``; INVITEs for a configured agent number ring an
agent phone on the line (auto-answer, or ``answer`` through the control API), any other number
is answered 404 (RFC 3261 §21.4.5). In-dialog requests of an agent call go to the node its
INVITE names in its Contact (the nodes put their name there), through the gateway's own path to
that node. Every ``keepalive`` seconds the gateway pings each node with OPTIONS (RFC 3261 §11)
and reports whether it answered. State changes are emitted as pyee events at this edge:
``call_ringing``, ``call_answered``, ``call_ended`` (a report each).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

from clients.phoneline.calls import InboundCall, PhoneCall
from clients.phoneline.dialer import Dialer
from clients.phoneline.line import Line
from clients.pstn.config import PstnConfig, check_number
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.rtp.endpoint import MediaTicker
from emulator.sip.builder import make_request, new_call_id, new_tag
from emulator.sip.errors import SipError, SipProtocolError
from emulator.sip.headers import SipUri
from emulator.sip.transport import UdpTransport
from emulator.sip.ua import IncomingRequest, UserAgent


class GatewayLine(Line):
    """The line, with in-dialog requests of agent calls sent to the node named in the INVITE."""

    def bye_destination(self, call: PhoneCall) -> Endpoint:
        if isinstance(call, InboundCall):
            node = self.config.node_named(call.node)
            if node is not None:
                return node.endpoint
        return super().bye_destination(call)


class Pstn:
    def __init__(self, config: PstnConfig, log: JsonLog | None = None) -> None:
        self.config = config
        self.log = log or JsonLog(config.name, config.dc)
        self.events = AsyncIOEventEmitter()
        self.events.on("error", self._on_error)
        self._stack = AsyncExitStack()
        self._transport: UdpTransport | None = None
        self._ua: UserAgent | None = None
        self._line: GatewayLine | None = None
        self._dialer: Dialer | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self.pings: dict[str, dict[str, Any]] = {}  # node -> last OPTIONS outcome

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def sip_bound(self) -> Endpoint:
        assert self._transport is not None, "gateway is not started"
        return self._transport.bound

    @property
    def line(self) -> GatewayLine:
        assert self._line is not None, "gateway is not started"
        return self._line

    async def __aenter__(self) -> Pstn:
        config = self.config
        try:
            self._transport = await self._stack.enter_async_context(
                UdpTransport(config.sip.host, config.sip.port, log=self.log)
            )
            ticker = await self._stack.enter_async_context(MediaTicker())
            self._ua = UserAgent(self._transport, timers=config.timers, log=self.log)
            await self._stack.enter_async_context(self._ua)
        except BaseException:
            await self._stack.aclose()
            raise
        self._line = GatewayLine(config.line(), self._ua, ticker, self.log, self.events.emit)
        self._dialer = Dialer(self._line, self._ua)
        self._ua.on_request = self._on_request
        self._ua.on_ack_timeout = self._line.on_ack_timeout
        self._line.start()
        if config.keepalive > 0:
            self._keepalive = asyncio.create_task(self._ping_nodes())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Stop pinging, end calls (BYE/CANCEL), then close the SIP socket and ticker.
        if self._keepalive is not None:
            self._keepalive.cancel()
            await asyncio.gather(self._keepalive, return_exceptions=True)
        if self._line is not None:
            await self._line.stop()
        await self._stack.aclose()
        self.events.remove_all_listeners()

    # -- calls ----------------------------------------------------------------------------

    async def place(self, body: dict[str, Any]) -> PhoneCall:
        """A customer call from a control body ``{"to": DN, "node": NAME, "from": NUMBER}``."""
        to, node_name = body.get("to"), body.get("node", self.config.nodes[0].name)
        caller = body.get("from", self.config.caller)
        if not all(isinstance(value, str) for value in (to, node_name, caller)):
            raise ValueError("body needs 'to' (a DN), and optionally 'node' and 'from', strings")
        assert isinstance(to, str) and isinstance(node_name, str) and isinstance(caller, str)
        node = self.config.node(node_name)
        assert self._dialer is not None, "gateway is not started"
        return await self._dialer.place(check_number(to, "to"), node, check_number(caller, "from"))

    def reports(self) -> list[dict[str, Any]]:
        return self.line.reports()

    def find(self, key: str) -> PhoneCall:
        return self.line.find(key)

    def answer(self, key: str) -> PhoneCall:
        return self.line.answer(key)

    def release(self, key: str) -> PhoneCall:
        return self.line.release(key)

    def _on_request(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        if request.method == "INVITE" and not request.to_tag:
            number = _user(request.uri)
            if self.config.dn_of(number) is None:
                self.log.warning("call.unknown_number", number=number, caller=request.from_.uri)
                incoming.respond(404, f"No PSTN phone {number or '?'}")
                return
        self.line.on_request(incoming)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        transport, ua = self._transport, self._ua
        assert transport is not None and ua is not None
        calls = self.line.calls.values()
        return {
            "name": self.config.name,
            "dc": self.config.dc,
            "sip": str(transport.bound),
            "nodes": [
                {"name": node.name, "endpoint": str(node.endpoint), **self.pings.get(node.name, {})}
                for node in self.config.nodes
            ],
            "agents": dict(self.config.agents),
            "calls": {
                "active": self.line.active_count(),
                "known": len(self.line.calls),
                "talking": sum(
                    1 for c in calls if not c.ended and c.answered_at and c.rtp.report().talking
                ),
                "lost": sum(1 for call in calls if call.lost),
            },
            "counters": {
                "sip_messages_received": transport.stats.messages_received,
                "sip_garbage_dropped": transport.stats.garbage_dropped,
                "sip_bad_requests_answered": transport.stats.bad_requests_answered,
                "sip_requests_rejected": ua.requests_rejected,
            },
        }

    async def _ping_nodes(self) -> None:
        assert self._ua is not None
        ua = self._ua
        host = ua.transport.bound.host
        while True:
            for node in self.config.nodes:
                request = make_request(
                    "OPTIONS",
                    f"sip:{node.endpoint}",
                    via=ua.via(),
                    from_=f"<sip:{self.config.name}@{host}>;tag={new_tag()}",
                    to=f"<sip:{node.endpoint}>",
                    call_id=new_call_id(host),
                    cseq=1,
                )
                self._spawn_ping(node.name, ua.request(request, node.endpoint))
            await asyncio.sleep(self.config.keepalive)

    def _spawn_ping(self, node: str, reply: Any) -> None:
        async def ping() -> None:
            try:
                response = await reply
            except SipError as error:
                self.pings[node] = {"reachable": False, "reason": str(error)}
                return
            self.pings[node] = {"reachable": True, "status": response.status}

        self.line.spawn(ping())

    def _on_error(self, error: BaseException) -> None:
        self.log.error("pstn.listener_failed", error=repr(error))


def _user(uri: str) -> str:
    try:
        return SipUri.parse(uri).user
    except SipProtocolError:
        return ""
