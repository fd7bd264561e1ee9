"""The fast lane (requests forwarded in the protocol callbacks) hands every other case to the
connection's task without losing or reordering a byte."""

from __future__ import annotations

import asyncio
import io

from proxy_support import proxied

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.proxy.config import ProxyConfig
from emulator.proxy.server import StickyProxy
from emulator.proxy.upstreams import Upstream, UpstreamState
from tests.support import eventually

PINNED = b"Host: a\r\nCookie: DRLAB_UPSTREAM=gws1\r\n"


async def test_plain_streamed_and_bodied_requests_mix_on_one_connection() -> None:
    async with proxied() as lab:
        endpoint = lab.proxy.endpoint
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        try:

            async def answer() -> bytes:
                head = await reader.readuntil(b"\r\n\r\n")
                if b"Transfer-Encoding: chunked" in head:
                    return head + await reader.readuntil(b"0\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                return head + await reader.readexactly(length)

            async with asyncio.timeout(10):
                writer.write(b"GET /whoami HTTP/1.1\r\n" + PINNED + b"\r\n")
                assert b'"upstream": "gws1"' in await answer()
                # Kept alive and pinned: the fast lane; two pipelined in one segment.
                body = b'{"data": 1}'
                post = b"POST /echo HTTP/1.1\r\n" + PINNED + b"Content-Length: 11\r\n\r\n" + body
                writer.write(post + post)
                for _ in range(2):
                    echoed = await answer()
                    assert echoed.startswith(b"HTTP/1.1 200") and echoed.endswith(body)
                    assert b"Connection: keep-alive" in echoed
                # A chunked answer is the task's to stream; the lane takes over again after it.
                lab.nodes["gws1"].stream_gate.set()
                writer.write(b"GET /stream HTTP/1.1\r\n" + PINNED + b"\r\n")
                streamed = await answer()
                assert b"first;" in streamed and b"second" in streamed
                writer.write(b"GET /whoami HTTP/1.1\r\n" + PINNED + b"Connection: close\r\n\r\n")
                last = await answer()
                assert b'"upstream": "gws1"' in last and b"Connection: close" in last
                assert await reader.read() == b""
        finally:
            writer.close()


async def test_request_on_a_kept_alive_connection_the_upstream_closes_is_sent_again() -> None:
    """Each upstream connection answers its first request and closes on the second, as a
    server whose keep-alive timeout fired just then: the client never sees it."""
    served: list[int] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /health"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                return
            served.append(1)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # the second request: hang up on it
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = StickyProxy(
        ProxyConfig(
            name="proxy-test",
            dc="DC1",
            listen=Endpoint("127.0.0.1", 0),
            upstreams=(Upstream("gws1", Endpoint("127.0.0.1", port)),),
            health_interval=30.0,
        ),
        JsonLog("proxy-test", "DC1", stream=io.StringIO()),
    )
    try:
        async with proxy:
            endpoint = proxy.endpoint
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
            try:
                async with asyncio.timeout(10):
                    for _ in range(3):
                        writer.write(b"GET /x HTTP/1.1\r\n" + PINNED + b"\r\n")
                        head = await reader.readuntil(b"\r\n\r\n")
                        assert head.startswith(b"HTTP/1.1 200")
                        assert await reader.readexactly(5) == b"fresh"
                await eventually(lambda: len(served) == 3)
                assert proxy.pool.state("gws1") is UpstreamState.UP
            finally:
                writer.close()
    finally:
        server.close()
        await server.wait_closed()
