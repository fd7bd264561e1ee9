"""A DC for WWE tests, in-process on loopback port 0: sip1, gws1 and gws2 (each through a
cuttable T-Lib relay), and the DC's sticky proxy in front of the GWS nodes."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from clients.wwe.client import WweClient
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog, flush_all
from emulator.gws.config import GwsConfig, GwsTimers, UserDirectory
from emulator.gws.server import GwsServer
from emulator.proxy.config import ProxyConfig
from emulator.proxy.server import StickyProxy
from emulator.proxy.upstreams import Upstream
from emulator.sipcluster.config import NodeConfig, Timers
from emulator.sipcluster.service import NodeService
from tests.sipcluster.conftest import LOOPBACK, Relay

SIP_TIMERS = Timers(
    addp_interval=0.2,
    addp_timeout=0.4,
    tc_interval=0.1,
    tc_timeout=0.3,
    ownership_move_delay=0.6,
    after_call_work_period=0.5,
)
GWS_TIMERS = GwsTimers(
    session_timeout=5.0,  # longer than a brief proxy outage: the session survives it
    addp_interval=0.2,
    addp_timeout=0.4,
    reconnect_min=0.05,
    reconnect_max=0.2,
    connect_timeout=2.0,
    cometd_timeout=1.0,
    cometd_max_interval=1.0,
)
# 60 s of WWE give-up time last one second.
FAST_SCALE = 1 / 60


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@dataclass
class Dc:
    sip: NodeService
    relays: dict[str, Relay]
    gws: dict[str, GwsServer]
    proxy: StickyProxy
    clients: list[WweClient] = field(default_factory=list)
    sip_log: io.StringIO = field(default_factory=io.StringIO)

    @property
    def url(self) -> str:
        return f"http://{self.proxy.endpoint}"

    def wwe(self, user: str = "agent1", **options: Any) -> WweClient:
        options.setdefault("time_scale", FAST_SCALE)
        client = WweClient(self.url, user, options.pop("password", user), **options)
        self.clients.append(client)
        return client

    async def inbound_call(self, to: str, caller: str = "+15551230001") -> str:
        """A customer calls ``to`` (POST /calls on sip1's control API); returns the ConnID."""
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

    def sip_saw(self, message: str, dn: str) -> bool:
        flush_all()
        for line in self.sip_log.getvalue().splitlines():
            record = json.loads(line)
            if record.get("message") == message and dn in (record.get("DN"), record.get("ThisDN")):
                return True
        return False

    async def stop_gws(self, name: str) -> None:
        """Stop a GWS node (its sessions die with it; its T-Lib link closes)."""
        await self.gws.pop(name).close()

    async def restart_proxy(self, down_for: float = 0.0) -> None:
        """Stop the proxy and start it again on the same port (a brief outage)."""
        config = self.proxy.config
        port = self.proxy.endpoint.port
        await self.proxy.stop()
        if down_for:
            await asyncio.sleep(down_for)
        self.proxy = StickyProxy(
            ProxyConfig(**{**config.__dict__, "listen": Endpoint(LOOPBACK, port)}),
            JsonLog(config.name, config.dc, io.StringIO()),
        )
        await self.proxy.start()


@asynccontextmanager
async def datacentre(nodes: tuple[str, ...] = ("gws1", "gws2")) -> AsyncIterator[Dc]:
    sip_log = io.StringIO()
    sip = NodeService(
        NodeConfig(
            name="sip1",
            dc="DC1",
            tlib=Endpoint(LOOPBACK, 0),
            tc=Endpoint(LOOPBACK, 0),
            control=Endpoint(LOOPBACK, 0),
            timers=SIP_TIMERS,
        ),
        JsonLog("sip1", "DC1", sip_log),
    )
    await sip.start()
    host, port = sip.endpoints["tlib"].rsplit(":", 1)
    relays: dict[str, Relay] = {}
    gws: dict[str, GwsServer] = {}
    proxy: StickyProxy | None = None
    try:
        for name in nodes:
            relay = relays[f"{name}-sip1"] = Relay(Endpoint(host, int(port)))
            await relay.start()
            config = GwsConfig(
                name=name,
                dc="DC1",
                sip_name="sip1",
                sip_host=LOOPBACK,
                sip_port=relay.port,
                users=UserDirectory.from_options(None, ()),
                timers=GWS_TIMERS,
            )
            server = GwsServer(
                config, http=Endpoint(LOOPBACK, 0), log=JsonLog(name, "DC1", io.StringIO())
            )
            await server.start()
            gws[name] = server
        await eventually(lambda: all(server.node.link.up for server in gws.values()))
        # The proxy reaches each node through a relay too ("proxy-dc1-gwsN": gwsN's NIC).
        for name, server in gws.items():
            relay = relays[f"proxy-dc1-{name}"] = Relay(server.http_endpoint)
            await relay.start()
        proxy = StickyProxy(
            ProxyConfig(
                name="proxy-dc1",
                dc="DC1",
                listen=Endpoint(LOOPBACK, 0),
                upstreams=tuple(
                    Upstream(n, Endpoint(LOOPBACK, relays[f"proxy-dc1-{n}"].port)) for n in gws
                ),
                health_interval=0.1,
                health_timeout=1.0,
                connect_timeout=1.0,
                read_timeout=10.0,
            ),
            JsonLog("proxy-dc1", "DC1", io.StringIO()),
        )
        await proxy.start()
        dc = Dc(sip, relays, gws, proxy, sip_log=sip_log)
        try:
            yield dc
        finally:
            for client in dc.clients:
                await client.close()
            await dc.proxy.stop()
    finally:
        for server in gws.values():
            await server.close()
        for relay in relays.values():
            await relay.close()
        await sip.stop()
