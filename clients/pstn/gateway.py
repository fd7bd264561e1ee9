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
from typing import Any

from clients.phoneline.calls import InboundCall, PhoneCall
from clients.phoneline.dialer import Dialer
from clients.phoneline.line import Line
from clients.phoneline.phone import LinePhone
from clients.pstn.config import PstnConfig, check_number
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sip.builder import make_request, new_call_id, new_tag
from emulator.sip.errors import SipError, SipProtocolError
from emulator.sip.headers import SipUri
from emulator.sip.ua import IncomingRequest


class GatewayLine(Line):
    """The line, with in-dialog requests of agent calls sent to the node named in the INVITE."""

    def bye_destination(self, call: PhoneCall) -> Endpoint:
        if isinstance(call, InboundCall):
            node = self.config.node_named(call.node)
            if node is not None:
                return node.endpoint
        return super().bye_destination(call)


class Pstn(LinePhone):
    def __init__(self, config: PstnConfig, log: JsonLog | None = None) -> None:
        super().__init__(config, log)
        self.config = config
        self._dialer: Dialer | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self.pings: dict[str, dict[str, Any]] = {}  # node -> last OPTIONS outcome

    async def __aenter__(self) -> Pstn:
        line = await self.open_line(GatewayLine)
        self._dialer = Dialer(line, self.ua)
        self.ua.on_request = self._on_request
        if self.config.keepalive > 0:
            self._keepalive = asyncio.create_task(self._ping_nodes())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Stop pinging, end calls (BYE/CANCEL), then close the SIP socket and ticker.
        if self._keepalive is not None:
            self._keepalive.cancel()
            await asyncio.gather(self._keepalive, return_exceptions=True)
        await self.close_line()

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
        calls = self.line.calls.values()
        return {
            "name": self.config.name,
            "dc": self.config.dc,
            "sip": str(self.sip_bound),
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
            "counters": self.counters(),
        }

    async def _ping_nodes(self) -> None:
        ua = self.ua
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


def _user(uri: str) -> str:
    try:
        return SipUri.parse(uri).user
    except SipProtocolError:
        return ""
