"""Ordered shutdown: stop accepting, close connections, wait a grace period, cancel the rest."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from proxy_support import proxied

from tests.support import eventually


async def test_stop_with_connections_in_every_state_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with proxied(shutdown_grace=0.2) as lab:
        endpoint = lab.proxy.endpoint
        idle_reader, idle_writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(f"{lab.base}/ws")
            await ws.send_str("up")
            assert (await ws.receive_str(timeout=5)).endswith(":up")
            # Held by the node far longer than the grace: this handler has to be cancelled.
            held = asyncio.create_task(session.post(f"{lab.base}/slow?delay=30", data=b"[]"))
            await eventually(lambda: lab.proxy.status()["client_connections"] == 3)

            loop = asyncio.get_running_loop()
            started = loop.time()
            await lab.proxy.stop()
            assert loop.time() - started < 2.0
            for _ in range(5):
                await asyncio.sleep(0)  # let asyncio run any done-callbacks of the handlers

            assert lab.proxy.status()["client_connections"] == 0
            assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # closed, not hung
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            with pytest.raises(aiohttp.ClientError):
                await asyncio.wait_for(held, 5)
            with pytest.raises(OSError):
                await asyncio.open_connection(endpoint.host, endpoint.port)
        finally:
            idle_writer.close()
            await session.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
