"""The ``links`` service: the relay and its HTTP API as one async context manager.

Entering binds every configured link and then the API endpoint (a taken or foreign address is
refused with the relay's ``Conflict``/``BadRequest``, nothing left bound); ``endpoints`` reports
what was bound. Leaving stops the API first (no new faults), then closes every link.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Sequence
from typing import Self

from aiohttp import web

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale
from emulator.links.api import build_app
from emulator.links.errors import BadRequest, Conflict
from emulator.links.model import NewLink, socket_host
from emulator.links.relay import Relay

API_SHUTDOWN_GRACE = 2.0


class LinksService:
    def __init__(
        self,
        *,
        api: Endpoint,
        links: Sequence[NewLink] = (),
        log: JsonLog,
        time_scale: TimeScale | None = None,
        seed: int | None = None,
        connect_timeout: float = 5.0,
        udp_idle_timeout: float = 120.0,
    ) -> None:
        self._api = api
        self._links = list(links)
        self.relay = Relay(
            log=log,
            time_scale=time_scale,
            rng=random.Random(seed),
            connect_timeout=connect_timeout,
            udp_idle_timeout=udp_idle_timeout,
        )
        self._runner: web.AppRunner | None = None
        self.api = api

    async def __aenter__(self) -> Self:
        try:
            await self.relay.populate(self._links)
            self._runner = web.AppRunner(
                build_app(self.relay), access_log=None, shutdown_timeout=API_SHUTDOWN_GRACE
            )
            await self._runner.setup()
            site = web.TCPSite(self._runner, socket_host(self._api.host), self._api.port)
            try:
                await site.start()
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise Conflict(f"api {self._api}: address already in use") from None
                raise BadRequest(f"api {self._api}: cannot bind: {exc.strerror or exc}") from None
            host, port = self._runner.addresses[0][:2]
            self.api = Endpoint(str(host), int(port))
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def endpoints(self) -> dict[str, str]:
        return {"http": str(self.api)}

    def link_endpoints(self) -> dict[str, str]:
        return {link.name: str(link.spec.listen) for link in self.relay.links()}

    async def aclose(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        await self.relay.aclose()
