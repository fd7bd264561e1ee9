"""``python -m clients.softphone`` as the lab runs it: ready line, control API, clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp

from emulator.common.timescale import TimeScale
from emulator.sip.registrar_service import RegistrarService


async def test_cli_registers_reports_ready_and_stops_cleanly_on_sigterm() -> None:
    async with RegistrarService(name="sip1", scale=TimeScale(0.05)) as sip1:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "clients.softphone",
            "--name",
            "softphone2",
            "--dn",
            "7002",
            "--registrar",
            f"sip1={sip1.bound}",
            "--registrar",
            "sip3=127.0.0.1:9",
            "--time-scale",
            "0.05",
            "--control",
            "127.0.0.1:0",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        lines: list[bytes] = []
        try:
            ready = None
            while ready is None:
                line = await asyncio.wait_for(process.stdout.readline(), 20)
                assert line, "softphone exited before it was ready"
                lines.append(line)
                record = json.loads(line)
                if record["event"] == "ready":
                    ready = record
            assert ready["service"] == "softphone2"
            assert ready["endpoints"]["sip"].startswith("127.0.0.1:")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            async with aiohttp.ClientSession(f"http://{ready['endpoints']['http']}") as session:
                while True:
                    async with session.get("/status") as response:
                        status = await response.json()
                    if status["registered"]:
                        break
                    assert loop.time() < deadline, status
                    await asyncio.sleep(0.05)
            assert status["registrar"] == "sip1"
            process.send_signal(signal.SIGTERM)
            rest, errors = await asyncio.wait_for(process.communicate(), 20)
            lines += rest.splitlines()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, errors.decode()
    events = [json.loads(line)["event"] for line in lines if line.strip()]
    assert "sip.register" in events and events[-3:] == ["stopping", "sip.unregister", "stopped"]
