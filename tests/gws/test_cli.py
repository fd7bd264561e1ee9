"""``python -m emulator.gws`` as the lab runs it: ready line, health, clean exit on SIGTERM."""

from __future__ import annotations

import aiohttp

from tests.support import ServiceProcess, eventually, refused


async def test_gws_process_prints_ready_serves_and_exits_cleanly_on_sigterm() -> None:
    sip = await ServiceProcess.start(
        "emulator.sipcluster", "--name", "sip1", "--dc", "DC1", "--time-scale", "0.05"
    )
    try:
        gws = await ServiceProcess.start(
            "emulator.gws",
            *("--name", "gws1", "--dc", "DC1", "--http", "127.0.0.1:0"),
            *("--sip", f"sip1={sip.endpoints['tlib']}", "--user", "agent9:pw9:7009"),
            *("--session-timeout", "60", "--time-scale", "0.05"),
        )
        try:
            ready = gws.ready.result()
            assert ready["service"] == "gws1" and ready["dc"] == "DC1"
            base = f"http://{gws.endpoints['http']}"
            async with aiohttp.ClientSession() as http:

                async def healthy() -> bool:
                    async with http.get(f"{base}/health") as response:
                        return response.status == 200

                await eventually(healthy, what="gws1 /health 200", interval=0.05)
                async with http.post(
                    f"{base}/auth/v3/oauth/token",
                    data={"grant_type": "password", "username": "agent9", "password": "pw9"},
                ) as response:
                    assert response.status == 200
        finally:
            code = await gws.stop(timeout=15)
        assert code == 0
        events = gws.events()
        assert "tlib.link_up" in events and events[-1] == "stopped"
    finally:
        assert await sip.stop(timeout=15) == 0


async def test_bad_command_line_is_refused_with_usage_error() -> None:
    code, errors = await refused(
        "emulator.gws", "--name", "g", "--dc", "DC1", "--sip", "sip1=10.1.2.3:4000"
    )
    assert code == 2 and "loopback" in errors
