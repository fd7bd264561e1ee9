"""Test support: named aiohttp upstreams behind a real StickyProxy, all on loopback port 0."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import WSMsgType, web

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog, flush_all
from emulator.proxy.config import ProxyConfig
from emulator.proxy.server import StickyProxy
from emulator.proxy.upstreams import Upstream


class FakeNode:
    """An upstream that says who it is; its /health answer is switchable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.healthy = True
        self.seen_headers: list[dict[str, str]] = []
        self.stream_gate = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/whoami", self._whoami)
        app.router.add_post("/echo", self._echo)
        app.router.add_post("/slow", self._slow)
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/ws", self._ws)
        return app

    async def start(self, port: int = 0) -> None:
        self.runner = web.AppRunner(self.app(), shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def upstream(self) -> Upstream:
        return Upstream(self.name, Endpoint("127.0.0.1", self.port))

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503, text=self.name)

    async def _whoami(self, request: web.Request) -> web.Response:
        self.seen_headers.append(dict(request.headers))
        return web.json_response({"upstream": self.name})

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=body, headers={"X-Upstream": self.name})

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("delay", "1")))
        return web.json_response({"upstream": self.name, "held": True})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"first;")
        await self.stream_gate.wait()
        await response.write(b"second")
        await response.write_eof()
        return response

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for frame in ws:
            if frame.type is WSMsgType.TEXT:
                await ws.send_str(f"{self.name}:{frame.data}")
            elif frame.type is WSMsgType.BINARY:
                await ws.send_bytes(frame.data[::-1])
        return ws


class Lab:
    def __init__(self, proxy: StickyProxy, nodes: list[FakeNode], log: io.StringIO) -> None:
        self.proxy = proxy
        self.nodes = {node.name: node for node in nodes}
        self._log = log
        self.base = f"http://{proxy.endpoint}"

    def logs(self, event: str | None = None) -> list[dict[str, Any]]:
        flush_all()
        records = [json.loads(line) for line in self._log.getvalue().splitlines() if line]
        return [r for r in records if event is None or r["event"] == event]


@asynccontextmanager
async def proxied(names: tuple[str, ...] = ("gws1", "gws2"), **config: Any) -> AsyncIterator[Lab]:
    nodes = [FakeNode(name) for name in names]
    for node in nodes:
        await node.start()
    log_stream = io.StringIO()
    proxy = StickyProxy(
        ProxyConfig(
            **{
                "name": "proxy-test",
                "dc": "DC1",
                "listen": Endpoint("127.0.0.1", 0),
                "upstreams": tuple(node.upstream for node in nodes),
                "health_interval": 0.1,
                "health_timeout": 2.0,
                "connect_timeout": 2.0,
                "read_timeout": 10.0,
                **config,
            }
        ),
        JsonLog("proxy-test", "DC1", stream=log_stream),
    )
    try:
        async with proxy:
            yield Lab(proxy, nodes, log_stream)
    finally:
        for node in nodes:
            node.stream_gate.set()
            await node.stop()


async def raw_exchange(endpoint: Endpoint, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything the proxy answers until it closes."""
    reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()
