"""``python -m emulator.proxy`` as a process: ready line, proxying, clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
from proxy_support import FakeNode


async def test_cli_prints_ready_with_endpoints_proxies_and_exits_on_sigterm() -> None:
    node = FakeNode("gws1")
    await node.start()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator.proxy",
        "--name", "proxy-dc1", "--dc", "DC1", "--listen", "127.0.0.1:0",
        "--upstream", f"gws1=127.0.0.1:{node.port}",
        "--health-interval", "1", "--time-scale", "0.1",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            while True:
                record = json.loads(await process.stdout.readline())
                if record["event"] == "ready":
                    break
        assert record["service"] == "proxy-dc1" and record["dc"] == "DC1"
        assert record["healthy"] == ["gws1"]
        http = record["endpoints"]["http"]
        async with aiohttp.ClientSession() as session, session.get(f"http://{http}/whoami") as r:
            assert (await r.json())["upstream"] == "gws1"
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await node.stop()


async def test_cli_rejects_a_malformed_upstream_with_usage_error() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator.proxy", "--name", "p", "--dc", "DC1",
        "--upstream", "gws1-127.0.0.1:1",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert b"is not NAME=HOST:PORT" in stderr
