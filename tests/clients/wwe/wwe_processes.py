"""Lab services as real processes (``python -m emulator.<pkg>``) for WWE tests that kill them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.support import ServiceProcess


@asynccontextmanager
async def process_dc(time_scale: float) -> AsyncIterator[dict[str, ServiceProcess]]:
    """sip1, gws1, gws2 and proxy-dc1 as processes, every timer scaled by ``time_scale``."""
    scale = str(time_scale)
    services: dict[str, ServiceProcess] = {}
    try:
        services["sip1"] = sip = await ServiceProcess.start(
            "emulator.sipcluster",
            *("--name", "sip1", "--dc", "DC1", "--time-scale", scale),
            *("--tlib", "127.0.0.1:0", "--tc", "127.0.0.1:0", "--control", "127.0.0.1:0"),
            name="sip1",
        )
        for name in ("gws1", "gws2"):
            services[name] = await ServiceProcess.start(
                "emulator.gws",
                *("--name", name, "--dc", "DC1", "--time-scale", scale),
                *("--http", "127.0.0.1:0", "--sip", f"sip1={sip.endpoints['tlib']}"),
                name=name,
            )
        services["proxy-dc1"] = await ServiceProcess.start(
            "emulator.proxy",
            *("--name", "proxy-dc1", "--dc", "DC1", "--time-scale", scale),
            "--listen",
            "127.0.0.1:0",
            *(f"--upstream={n}={services[n].endpoints['http']}" for n in ("gws1", "gws2")),
            name="proxy-dc1",
        )
        yield services
    finally:
        for service in reversed(list(services.values())):
            await service.stop()
