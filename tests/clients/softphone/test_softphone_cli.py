"""``python -m clients.softphone`` as the lab runs it: ready line, control API, clean SIGTERM."""

from __future__ import annotations

from typing import Any

import aiohttp

from emulator.common.timescale import TimeScale
from emulator.sip.registrar import RegistrarService
from tests.support import ServiceProcess, eventually


async def test_cli_registers_reports_ready_and_stops_cleanly_on_sigterm() -> None:
    async with RegistrarService(name="sip1", scale=TimeScale(0.05)) as sip1:
        phone = await ServiceProcess.start(
            "clients.softphone",
            *("--name", "softphone2", "--dn", "7002"),
            *("--registrar", f"sip1={sip1.bound}", "--registrar", "sip3=127.0.0.1:9"),
            *("--time-scale", "0.05", "--control", "127.0.0.1:0"),
        )
        try:
            ready = phone.ready.result()
            assert ready["service"] == "softphone2"
            assert phone.endpoints["sip"].startswith("127.0.0.1:")
            async with aiohttp.ClientSession(f"http://{phone.endpoints['http']}") as session:

                async def registered() -> dict[str, Any] | None:
                    async with session.get("/status") as response:
                        status: dict[str, Any] = await response.json()
                    return status if status["registered"] else None

                status = await eventually(registered, what="softphone2 registered")
            assert status["registrar"] == "sip1"
        finally:
            code = await phone.stop(timeout=20)
    assert code == 0, phone.lines[-5:]
    events = phone.events()
    assert "sip.register" in events and events[-3:] == ["stopping", "sip.unregister", "stopped"]
