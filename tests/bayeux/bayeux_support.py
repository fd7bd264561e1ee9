"""Test support: a CometD endpoint on a real loopback aiohttp server (port 0)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from emulator.bayeux.aiohttp_server import BayeuxEndpoint
from emulator.bayeux.server_model import ServerConfig

PATH = "/workspace/v3/notifications"


class Served:
    def __init__(self, endpoint: BayeuxEndpoint, runner: web.AppRunner, port: int) -> None:
        self.endpoint = endpoint
        self.runner = runner
        self.port = port
        self.url = f"http://127.0.0.1:{port}{PATH}"
        self.events: list[tuple[str, Any]] = []
        for name in ("client_added", "client_removed", "subscribed", "unsubscribed", "published"):
            endpoint.events.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[[Any], None]:
        def record(event: Any) -> None:
            self.events.append((name, event))

        return record


@asynccontextmanager
async def serve(config: ServerConfig, *, port: int = 0, **options: Any) -> AsyncIterator[Served]:
    endpoint = BayeuxEndpoint(config, **options)
    app = web.Application()
    endpoint.mount(app, PATH)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield Served(endpoint, runner, bound)
    finally:
        await runner.cleanup()


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


FAST = ServerConfig(timeout=2.0, interval=0.0, max_interval=1.0)
