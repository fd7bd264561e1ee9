"""Test support: a CometD endpoint on a real loopback aiohttp server (port 0)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from emulator.bayeux.server import BayeuxEndpoint
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


FAST = ServerConfig(timeout=2.0, interval=0.0, max_interval=1.0)


class CuttablePath:
    """A TCP path to the server whose current connections can be black-holed.

    A black-holed connection stays open and swallows every byte both ways, forever (as after a
    NIC failure or a lost NAT entry); connections opened afterwards pass normally.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.listen_port = 0
        self.accepted = 0
        self.closed_by_client = 0
        self._dead: set[asyncio.StreamWriter] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CuttablePath:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def black_hole_current(self) -> None:
        self._dead.update(self._writers)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.accepted += 1
        self._writers += [writer, up_writer]
        for src, dst, from_client in ((reader, up_writer, True), (up_reader, writer, False)):
            task = asyncio.create_task(self._pump(src, dst, from_client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, from_client: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                if dst not in self._dead:
                    dst.write(data)
        if from_client:
            self.closed_by_client += 1
        dst.transport.abort()
