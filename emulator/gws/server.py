"""The GWS API node as a service: HTTP (REST + CometD) listener, T-Lib link, session reaper.

``GwsServer`` is an async context manager that reports the HTTP port it bound. Shutdown is
ordered (STYLE §7): stop the reaper, stop accepting HTTP, answer held CometD connects and close
WebSockets, then close the T-Lib link (the SIP node sees the desktop connection go away).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self

from aiohttp import web

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.gws.auth import TokenAuthority
from emulator.gws.config import GwsConfig
from emulator.gws.http_api import WorkspaceApi
from emulator.gws.http_common import error_middleware
from emulator.gws.node import GwsNode
from emulator.gws.notifications import WorkspaceNotifications


class GwsServer:
    def __init__(self, config: GwsConfig, *, http: Endpoint, log: JsonLog) -> None:
        self.config = config
        self.log = log
        self._http = http
        self._loop = asyncio.get_running_loop()
        self.node = GwsNode(config, log, self._loop.time)
        timers = config.timers
        self.notifications = WorkspaceNotifications(
            self.node,
            timeout=timers.cometd_timeout,
            max_interval=timers.cometd_max_interval,
            max_payload=config.max_body_bytes,
        )
        self.app = web.Application(
            client_max_size=config.max_body_bytes,
            middlewares=[error_middleware],
        )
        api = WorkspaceApi(
            self.node, TokenAuthority(config.users, config.auth_secret, config.token_ttl)
        )
        api.mount(self.app)
        self.notifications.mount(self.app)
        api.mount_fallback(self.app)
        self._runner: web.AppRunner | None = None
        self._reaper: asyncio.Task[None] | None = None
        self.http_endpoint = http

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._http.host, self._http.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.http_endpoint = Endpoint(self._http.host, port)
        self.node.link.start()
        self._reaper = asyncio.create_task(self._reap(), name="gws-session-reaper")

    async def _reap(self) -> None:
        period = max(0.01, min(1.0, self.config.timers.session_timeout / 4))
        while True:
            await asyncio.sleep(period)
            self.node.expire_sessions()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._runner is not None:
            await self._runner.cleanup()
        await self.node.link.close()
        self.log.event("stopped")

    def endpoints(self) -> dict[str, str]:
        return {"http": str(self.http_endpoint)}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
