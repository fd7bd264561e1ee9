"""An independent Toxiproxy client (PyPI ``toxiproxy-python``) drives the relay unchanged.

The client is synchronous (``requests``) and keeps its server address in class attributes, so
each call runs in a worker thread while the relay serves on this test's event loop.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from emulator.links.service import LinksService
from tests.links.conftest import Upstream, roundtrip

toxiproxy = pytest.importorskip("toxiproxy")
from toxiproxy.exceptions import NotFound, ProxyExists  # type: ignore[import-untyped]  # noqa: E402

T = TypeVar("T")


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)


@pytest.fixture
async def server(service: LinksService) -> AsyncIterator[Any]:
    server = toxiproxy.Toxiproxy()
    server.update_api_consumer(service.api.host, service.api.port)
    yield server


async def median_rtt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    loop = asyncio.get_running_loop()
    samples = []
    for _ in range(5):
        started = loop.time()
        await roundtrip(reader, writer, b"ping")
        samples.append(loop.time() - started)
    return statistics.median(samples)


async def test_a_toxiproxy_client_creates_a_proxy_adds_latency_and_deletes_it(
    server: Any, upstream: Upstream
) -> None:
    assert await call(server.running)
    proxy = await call(server.create, upstream=str(upstream.endpoint), name="redis")
    assert proxy.enabled is True and proxy.listen.startswith("127.0.0.1:")
    host, port = proxy.listen.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    baseline = await median_rtt(reader, writer)

    await call(proxy.add_toxic, type="latency", attributes={"latency": 300})
    toxics = await call(proxy.toxics)
    assert list(toxics) == ["latency_downstream"]
    assert toxics["latency_downstream"].attributes == {"latency": 300, "jitter": 0}
    assert await median_rtt(reader, writer) - baseline >= 0.29

    await call(proxy.destroy_toxic, "latency_downstream")
    assert await call(proxy.toxics) == {}
    assert await median_rtt(reader, writer) < 0.2  # wide margin for a loaded machine
    writer.close()

    assert await call(proxy.destroy)
    assert await call(server.proxies) == {}


async def test_a_toxiproxy_client_takes_a_proxy_down_and_up(
    server: Any, upstream: Upstream
) -> None:
    proxy = await call(server.create, upstream=str(upstream.endpoint), name="db")
    host, port = proxy.listen.rsplit(":", 1)

    def down_then_connect() -> None:
        with proxy.down():
            listed = server.get_proxy("db")
            assert listed.enabled is False
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((host, int(port)), timeout=2).close()
        assert server.get_proxy("db").enabled is True

    await call(down_then_connect)
    reader, writer = await asyncio.open_connection(host, int(port))
    assert await roundtrip(reader, writer, b"up again") == b"up again"
    writer.close()


async def test_a_toxiproxy_client_sees_toxiproxys_errors(server: Any, upstream: Upstream) -> None:
    await call(server.create, upstream=str(upstream.endpoint), name="db")
    with pytest.raises(ProxyExists):
        await call(server.create, upstream=str(upstream.endpoint), name="db")
    ghost = toxiproxy.Proxy(name="ghost", upstream="127.0.0.1:1", enabled=True, listen="")
    with pytest.raises(NotFound):
        await call(ghost.destroy)


async def test_a_toxiproxy_client_populates_resets_and_reads_the_version(
    server: Any, upstream: Upstream
) -> None:
    wanted = [
        {"name": "a", "upstream": str(upstream.endpoint), "listen": "127.0.0.1:0"},
        {"name": "b", "upstream": str(upstream.endpoint), "listen": "127.0.0.1:0"},
    ]
    created = await call(server.populate, wanted)
    assert sorted(proxy.name for proxy in created) == ["a", "b"]
    proxy = await call(server.get_proxy, "a")
    await call(proxy.add_toxic, type="timeout", attributes={"timeout": 0})
    await call(proxy.disable)
    assert await call(server.reset)
    proxies = await call(server.proxies)
    assert all(p.enabled for p in proxies.values())
    assert await call(proxy.toxics) == {}
    assert b"2.12.0" in await call(server.version)
