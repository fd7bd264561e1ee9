"""``python -m emulator.proxy`` as a process: ready line, proxying, clean exit on SIGTERM."""

from __future__ import annotations

import aiohttp
from proxy_support import FakeNode

from tests.support import ServiceProcess, refused


async def test_cli_prints_ready_with_endpoints_proxies_and_exits_on_sigterm() -> None:
    node = FakeNode("gws1")
    await node.start()
    try:
        proxy = await ServiceProcess.start(
            "emulator.proxy",
            *("--name", "proxy-dc1", "--dc", "DC1", "--listen", "127.0.0.1:0"),
            *("--upstream", f"gws1=127.0.0.1:{node.port}"),
            *("--health-interval", "1", "--time-scale", "0.1"),
        )
        try:
            record = proxy.ready.result()
            assert record["service"] == "proxy-dc1" and record["dc"] == "DC1"
            assert record["healthy"] == ["gws1"]
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://{proxy.endpoints['http']}/whoami") as r,
            ):
                assert (await r.json())["upstream"] == "gws1"
        finally:
            assert await proxy.stop() == 0
    finally:
        await node.stop()


async def test_cli_rejects_a_malformed_upstream_with_usage_error() -> None:
    code, errors = await refused(
        "emulator.proxy", "--name", "p", "--dc", "DC1", "--upstream", "gws1-127.0.0.1:1"
    )
    assert code == 2
    assert "is not NAME=HOST:PORT" in errors
