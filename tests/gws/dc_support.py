"""DC1 in-process on loopback port 0: sip1, gws1 and gws2 (T-Lib clients of sip1) and proxy-dc1
(the sticky proxy in front of both GWS nodes) — the path a desktop really takes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.gws.config import GwsConfig, UserDirectory
from emulator.gws.server import GwsServer
from emulator.proxy.config import ProxyConfig
from emulator.proxy.server import StickyProxy
from emulator.proxy.upstreams import Upstream
from emulator.sipcluster.config import NodeConfig
from emulator.sipcluster.service import NodeService
from tests.gws.conftest import FAST_GWS_TIMERS, eventually, log_lines
from tests.sipcluster.conftest import FAST_TIMERS, LOOPBACK


@dataclass
class Dc:
    sip: NodeService
    gws: dict[str, GwsServer]
    proxy: StickyProxy
    sip_log: io.StringIO
    gws_logs: dict[str, io.StringIO]

    @property
    def base_url(self) -> str:
        return f"http://{self.proxy.endpoint}"

    def gws_events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """Log lines of every GWS node with this event (and these field values)."""
        return [
            line
            for log in self.gws_logs.values()
            for line in log_lines(log)
            if line["event"] == event and all(line.get(k) == v for k, v in fields.items())
        ]

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


@asynccontextmanager
async def datacentre(**gws_options: Any) -> AsyncIterator[Dc]:
    async with AsyncExitStack() as stack:
        sip_log = io.StringIO()
        sip = NodeService(
            NodeConfig(
                name="sip1",
                dc="DC1",
                tlib=Endpoint(LOOPBACK, 0),
                tc=Endpoint(LOOPBACK, 0),
                control=Endpoint(LOOPBACK, 0),
                timers=FAST_TIMERS,
            ),
            JsonLog("sip1", "DC1", sip_log),
        )
        await sip.start()
        stack.push_async_callback(sip.stop)
        host, port = sip.endpoints["tlib"].rsplit(":", 1)
        gws: dict[str, GwsServer] = {}
        logs: dict[str, io.StringIO] = {}
        for name in ("gws1", "gws2"):
            logs[name] = io.StringIO()
            config = GwsConfig(
                name=name,
                dc="DC1",
                sip_name="sip1",
                sip_host=host,
                sip_port=int(port),
                users=UserDirectory.from_options(None, ()),
                timers=FAST_GWS_TIMERS,
                **gws_options,
            )
            server = GwsServer(
                config, http=Endpoint(LOOPBACK, 0), log=JsonLog(name, "DC1", logs[name])
            )
            gws[name] = await stack.enter_async_context(server)
        await eventually(lambda: all(node.node.link.up for node in gws.values()))
        proxy = StickyProxy(
            ProxyConfig(
                name="proxy-dc1",
                dc="DC1",
                listen=Endpoint(LOOPBACK, 0),
                upstreams=tuple(Upstream(n, g.http_endpoint) for n, g in gws.items()),
                health_interval=0.1,
                health_timeout=1.0,
                connect_timeout=1.0,
                read_timeout=10.0,
            ),
            JsonLog("proxy-dc1", "DC1", io.StringIO()),
        )
        await stack.enter_async_context(proxy)
        yield Dc(sip, gws, proxy, sip_log, logs)
