"""A DC for WWE tests, in-process on loopback port 0: ``tests.gws.dc_support``'s DC1 (sip1, gws1
and gws2, the DC's sticky proxy in front of the GWS nodes) with every GWS node's T-Lib link and
the proxy's path to it through a cuttable relay, and WWE clients that the DC closes."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from clients.wwe.client import WweClient
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.proxy.config import ProxyConfig
from emulator.proxy.server import StickyProxy
from tests.gws import conftest as gws_support
from tests.gws.dc_support import Dc, build
from tests.sipcluster.conftest import FAST_TIMERS
from tests.support import LOOPBACK

SIP_TIMERS = replace(FAST_TIMERS, after_call_work_period=0.5)
# A session longer than a brief proxy outage: the session survives it.
GWS_TIMERS = replace(gws_support.FAST_GWS_TIMERS, session_timeout=5.0, cometd_max_interval=1.0)
# 60 s of WWE give-up time last one second.
FAST_SCALE = 1 / 60


@dataclass
class WweDc(Dc):
    clients: list[WweClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base_url

    def wwe(self, user: str = "agent1", **options: Any) -> WweClient:
        options.setdefault("time_scale", FAST_SCALE)
        client = WweClient(self.url, user, options.pop("password", user), **options)
        self.clients.append(client)
        return client

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
async def datacentre(nodes: tuple[str, ...] = ("gws1", "gws2")) -> AsyncIterator[WweDc]:
    dc_of = build(WweDc, nodes, sip_timers=SIP_TIMERS, gws_timers=GWS_TIMERS, relayed=True)
    async with dc_of as dc:
        try:
            yield dc
        finally:
            for client in dc.clients:
                await client.close()
