"""CometD through the sticky proxy: both transports, and recovery when the pinned node dies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from emulator.bayeux.client import BayeuxClient
from emulator.bayeux.client_core import ClientState
from emulator.bayeux.messages import Message
from emulator.bayeux.server import BayeuxEndpoint
from emulator.bayeux.server_model import ServerConfig
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.proxy.config import ProxyConfig
from emulator.proxy.server import StickyProxy
from emulator.proxy.upstreams import Upstream
from tests.support import eventually

PATH = "/workspace/v3/notifications"


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


class CometdNode:
    def __init__(self, name: str) -> None:
        self.name = name
        self.endpoint = BayeuxEndpoint(ServerConfig(timeout=1.0, max_interval=2.0))
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        self.endpoint.mount(app, PATH)
        app.router.add_get("/health", _health)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@asynccontextmanager
async def cometd_lab() -> AsyncIterator[tuple[StickyProxy, dict[str, CometdNode]]]:
    nodes = {name: CometdNode(name) for name in ("gws1", "gws2")}
    for node in nodes.values():
        await node.start()
    config = ProxyConfig(
        name="proxy-dc1",
        dc="DC1",
        listen=Endpoint("127.0.0.1", 0),
        upstreams=tuple(Upstream(n.name, Endpoint("127.0.0.1", n.port)) for n in nodes.values()),
        health_interval=0.1,
        read_timeout=5.0,
    )
    try:
        async with StickyProxy(config, JsonLog("proxy-dc1", "DC1", stream=_Null())) as proxy:
            yield proxy, nodes
    finally:
        for node in nodes.values():
            await node.stop()


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


def serving_node(nodes: dict[str, CometdNode], client: BayeuxClient) -> CometdNode:
    return next(n for n in nodes.values() if client.client_id in n.endpoint.client_ids())


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
async def test_cometd_client_survives_the_death_of_its_pinned_node(transport: str) -> None:
    async with (
        cometd_lab() as (proxy, nodes),
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session,
    ):
        client = BayeuxClient(
            f"http://{proxy.endpoint}{PATH}",
            session=session,
            connection_types=(transport,),
            max_network_delay=2.0,
            backoff_increment=0.05,
            max_backoff=0.2,
        )
        received: list[Message] = []
        client.events.on("message", received.append)
        try:
            await client.handshake()
            await client.subscribe("/workspace/v3/voice")
            await client.wait_for_state(ClientState.CONNECTED, timeout=5)
            first = serving_node(nodes, client)
            first.endpoint.broadcast("/workspace/v3/voice", {"from": first.name})
            await eventually(lambda: len(received) == 1)

            await first.stop()
            # 402 from the other node, new handshake there, subscriptions re-sent.
            await eventually(
                lambda: any(
                    client.client_id in n.endpoint.client_ids()
                    for n in nodes.values()
                    if n is not first
                )
            )
            second = serving_node(nodes, client)
            await eventually(
                lambda: bool(second.endpoint.core.subscriptions(client.client_id or ""))
            )
            second.endpoint.broadcast("/workspace/v3/voice", {"from": second.name})
            await eventually(lambda: len(received) == 2)
            assert [m.data["from"] for m in received] == [first.name, second.name]
            cookies = {c.key: c.value for c in session.cookie_jar}
            assert cookies["DRLAB_UPSTREAM"] == second.name
        finally:
            await client.close()
