"""DC1 in-process on loopback port 0: sip1, gws1 and gws2 (T-Lib clients of sip1) and proxy-dc1
(the sticky proxy in front of both GWS nodes) — the path a desktop really takes.

``build`` is the one builder of that DC: ``relayed`` puts a cuttable relay on each GWS node's
T-Lib link ("gwsN-sip1") and on the proxy's path to it ("proxy-dc1-gwsN": gwsN's NIC), as the
WWE client's tests (``tests/clients/wwe/wwe_test_lab.py``) need; ``make`` may be a subclass of
``Dc`` with more helpers."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.gws.config import GwsTimers
from emulator.gws.server import GwsServer
from emulator.proxy.config import ProxyConfig
from emulator.proxy.server import StickyProxy
from emulator.proxy.upstreams import Upstream
from emulator.sipcluster.config import Timers
from emulator.sipcluster.service import NodeService
from tests.gws.conftest import FAST_GWS_TIMERS, gws_node, log_events, log_lines, sip1, tlib_of
from tests.sipcluster.conftest import FAST_TIMERS, Relay
from tests.support import LOOPBACK, eventually


@dataclass
class Dc:
    sip: NodeService
    gws: dict[str, GwsServer]
    proxy: StickyProxy
    sip_log: io.StringIO
    gws_logs: dict[str, io.StringIO]
    relays: dict[str, Relay] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{self.proxy.endpoint}"

    def gws_events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """Log lines of every GWS node with this event (and these field values)."""
        lines = (line for log in self.gws_logs.values() for line in log_lines(log))
        return log_events(lines, event, **fields)

    def sip_events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """sip1's log lines with this event (and these field values)."""
        return log_events(log_lines(self.sip_log), event, **fields)

    def sip_saw(self, message: str, dn: str) -> bool:
        return any(
            line.get("message") == message and dn in (line.get("DN"), line.get("ThisDN"))
            for line in log_lines(self.sip_log)
        )

    async def inbound_call(self, to: str, caller: str = "+15551230001") -> str:
        """A customer calls ``to`` through sip1's control API (POST /calls); the ConnID."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://{self.sip.endpoints['control']}/calls", json={"to": to, "from": caller}
            ) as response,
        ):
            body = await response.json()
            assert response.status == 201, body
        conn_id: str = body["ConnID"]
        return conn_id


D = TypeVar("D", bound=Dc)


def datacentre(**gws_options: Any) -> AbstractAsyncContextManager[Dc]:
    """gws1 and gws2 straight to sip1 and straight from the proxy, at the GWS tests' timers;
    ``gws_options`` are further ``GwsConfig`` fields of both nodes."""
    return build(Dc, **gws_options)


@asynccontextmanager
async def build(
    make: type[D],
    nodes: tuple[str, ...] = ("gws1", "gws2"),
    *,
    sip_timers: Timers = FAST_TIMERS,
    gws_timers: GwsTimers = FAST_GWS_TIMERS,
    relayed: bool = False,
    **gws_options: Any,
) -> AsyncIterator[D]:
    """Start the DC, yield it, and stop what it then holds (``dc.proxy`` may have been
    replaced, a node popped from ``dc.gws`` already closed)."""
    sip, sip_log = sip1(sip_timers)
    await sip.start()
    relays: dict[str, Relay] = {}
    gws: dict[str, GwsServer] = {}
    logs: dict[str, io.StringIO] = {}
    try:
        for name in nodes:
            tlib = tlib_of(sip)
            if relayed:
                relay = relays[f"{name}-sip1"] = Relay(tlib)
                await relay.start()
                tlib = Endpoint(LOOPBACK, relay.port)
            server, logs[name] = gws_node(name, tlib, gws_timers, **gws_options)
            await server.start()
            gws[name] = server
        await eventually(lambda: all(server.node.link.up for server in gws.values()), timeout=8)
        upstreams = {name: server.http_endpoint for name, server in gws.items()}
        if relayed:
            for name, server in gws.items():
                relay = relays[f"proxy-dc1-{name}"] = Relay(server.http_endpoint)
                await relay.start()
                upstreams[name] = Endpoint(LOOPBACK, relay.port)
        proxy = StickyProxy(
            ProxyConfig(
                name="proxy-dc1",
                dc="DC1",
                listen=Endpoint(LOOPBACK, 0),
                upstreams=tuple(Upstream(n, e) for n, e in upstreams.items()),
                health_interval=0.1,
                health_timeout=1.0,
                connect_timeout=1.0,
                read_timeout=10.0,
            ),
            JsonLog("proxy-dc1", "DC1", io.StringIO()),
        )
        await proxy.start()
        dc = make(sip, gws, proxy, sip_log, logs, relays)
        try:
            yield dc
        finally:
            await dc.proxy.stop()
    finally:
        for server in gws.values():
            await server.close()
        for relay in relays.values():
            await relay.close()
        await sip.stop()
