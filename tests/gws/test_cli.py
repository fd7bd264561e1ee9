"""``python -m emulator.gws`` as the lab runs it: ready line, health, clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import aiohttp

from tests.support import eventually


async def start(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while True:
            line = await process.stdout.readline()
            assert line, (await process.stderr.read()).decode() if process.stderr else "no output"
            record = json.loads(line)
            if record["event"] == "ready":
                return process, record


async def stop(process: asyncio.subprocess.Process) -> tuple[int, list[dict[str, Any]]]:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        out, _ = await process.communicate()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return process.returncode if process.returncode is not None else -1, lines


async def test_gws_process_prints_ready_serves_and_exits_cleanly_on_sigterm() -> None:
    sip, sip_ready = await start(
        "emulator.sipcluster", "--name", "sip1", "--dc", "DC1", "--time-scale", "0.05"
    )
    gws: asyncio.subprocess.Process | None = None
    try:
        tlib = sip_ready["endpoints"]["tlib"]
        gws, ready = await start(
            "emulator.gws",
            "--name",
            "gws1",
            "--dc",
            "DC1",
            "--http",
            "127.0.0.1:0",
            "--sip",
            f"sip1={tlib}",
            "--user",
            "agent9:pw9:7009",
            "--session-timeout",
            "60",
            "--time-scale",
            "0.05",
        )
        assert ready["service"] == "gws1" and ready["dc"] == "DC1"
        base = f"http://{ready['endpoints']['http']}"
        async with aiohttp.ClientSession() as http:
            healthy = False

            async def poll() -> None:
                nonlocal healthy
                async with http.get(f"{base}/health") as response:
                    healthy = response.status == 200

            async def until_healthy() -> None:
                while not healthy:
                    await poll()
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(until_healthy(), 10)
            async with http.post(
                f"{base}/auth/v3/oauth/token",
                data={"grant_type": "password", "username": "agent9", "password": "pw9"},
            ) as response:
                assert response.status == 200
        code, lines = await stop(gws)
        gws = None
        assert code == 0
        events = [line["event"] for line in lines]
        assert "tlib.link_up" in events and events[-1] == "stopped"
    finally:
        if gws is not None and gws.returncode is None:
            gws.kill()
            await gws.wait()
        code, _ = await stop(sip)
    await eventually(lambda: sip.returncode is not None, timeout=8)


async def test_bad_command_line_is_refused_with_usage_error() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator.gws",
        "--name",
        "g",
        "--dc",
        "DC1",
        "--sip",
        "sip1=10.1.2.3:4000",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"loopback" in err
