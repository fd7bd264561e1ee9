"""The sticky proxy on loopback in front of real aiohttp upstreams."""

from __future__ import annotations

import asyncio
import io
import json
import random

import aiohttp
import websockets
from proxy_support import proxied, raw_exchange

from emulator.proxy.upstreams import UpstreamState
from tests.support import eventually

COOKIE = "DRLAB_UPSTREAM"


def new_session() -> aiohttp.ClientSession:
    # An unsafe jar keeps cookies set by an IP address, like a browser talking to 127.0.0.1.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def whoami(session: aiohttp.ClientSession, base: str) -> tuple[str, str | None]:
    async with session.get(f"{base}/whoami") as response:
        assert response.status == 200
        cookie = response.cookies.get(COOKIE)
        return (await response.json())["upstream"], cookie.value if cookie else None


async def test_a_client_stays_on_the_node_its_cookie_names() -> None:
    async with proxied() as lab, new_session() as alice, new_session() as bob:
        first, cookie = await whoami(alice, lab.base)
        assert cookie == first  # pinned with a cookie on the first response
        for _ in range(5):
            node, cookie = await whoami(alice, lab.base)
            assert (node, cookie) == (first, None)  # no new cookie while the pin holds
        other, _ = await whoami(bob, lab.base)
        assert other != first  # a new client goes round-robin to the other node


async def test_killed_pinned_node_fails_over_to_the_other_node_of_the_dc() -> None:
    async with proxied() as lab, new_session() as session:
        first, _ = await whoami(session, lab.base)
        await lab.nodes[first].stop()
        node, cookie = await whoami(session, lab.base)
        assert node != first and cookie == node  # re-pinned with a new cookie
        assert lab.proxy.pool.state(first) is UpstreamState.DOWN
        (repin,) = lab.logs("sticky.repinned")
        assert (repin["from"], repin["to"]) == (first, node)
        assert any(r["upstream"] == first for r in lab.logs("upstream.down"))
        again, cookie = await whoami(session, lab.base)
        assert (again, cookie) == (node, None)


async def test_unhealthy_node_whose_port_still_answers_loses_its_clients() -> None:
    async with proxied() as lab, new_session() as session:
        first, _ = await whoami(session, lab.base)
        lab.nodes[first].healthy = False  # /health says 503, TCP and /whoami still work
        await eventually(lambda: lab.proxy.pool.state(first) is UpstreamState.DOWN)
        down = [r for r in lab.logs("upstream.down") if r["upstream"] == first]
        assert down and "HTTP 503" in down[0]["reason"]
        node, cookie = await whoami(session, lab.base)
        assert node != first and cookie == node
        lab.nodes[first].healthy = True
        await eventually(lambda: lab.proxy.pool.state(first) is UpstreamState.UP)
        assert any(r["upstream"] == first for r in lab.logs("upstream.up"))
        assert (await whoami(session, lab.base))[0] == node  # the new pin stays


async def test_all_nodes_down_gives_a_502_with_a_clear_body() -> None:
    async with proxied() as lab, new_session() as session:
        for node in lab.nodes.values():
            node.healthy = False
        await eventually(lambda: not lab.proxy.pool.healthy())
        async with session.get(f"{lab.base}/whoami") as response:
            assert response.status == 502
            body = await response.text()
        assert body.startswith("502 Bad Gateway: no healthy upstream in DC1 (gws1 down")
        assert "HTTP 503 on /health" in body


async def test_websocket_upgrade_passes_through_and_is_sticky() -> None:
    async with proxied() as lab, new_session() as session:
        node, _ = await whoami(session, lab.base)
        async with session.ws_connect(f"{lab.base}/ws") as ws:
            await ws.send_str("hello")
            assert await ws.receive_str(timeout=5) == f"{node}:hello"
            await ws.send_bytes(b"\x01\x02\x03")
            assert await ws.receive_bytes(timeout=5) == b"\x03\x02\x01"
        # An independent WebSocket client (websockets library) with no cookie.
        ws_url = f"ws://{lab.proxy.endpoint}/ws"
        async with websockets.connect(ws_url) as plain:
            cookie = plain.response.headers.get("Set-Cookie", "")
            assert cookie.startswith(f"{COOKIE}=")
            pinned = cookie.split("=", 1)[1].split(";", 1)[0]
            await plain.send("x" * 200_000)
            assert await asyncio.wait_for(plain.recv(), 5) == f"{pinned}:" + "x" * 200_000


async def test_websocket_closes_when_its_node_dies_and_reconnects_elsewhere() -> None:
    async with proxied() as lab, new_session() as session:
        node, _ = await whoami(session, lab.base)
        ws = await session.ws_connect(f"{lab.base}/ws")
        await lab.nodes[node].stop()
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()
        async with session.ws_connect(f"{lab.base}/ws") as again:
            await again.send_str("hi")
            reply = await again.receive_str(timeout=5)
            assert not reply.startswith(node)


async def test_long_poll_held_by_the_node_is_not_cut_short() -> None:
    async with proxied(read_timeout=5.0) as lab, new_session() as session:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with session.post(f"{lab.base}/slow?delay=1.5", data=b"[]") as response:
            assert response.status == 200
            assert (await response.json())["held"] is True
        assert loop.time() - started >= 1.4


async def test_response_bodies_are_streamed_not_buffered() -> None:
    async with proxied() as lab, new_session() as session:
        node, _ = await whoami(session, lab.base)
        async with session.get(f"{lab.base}/stream") as response:
            first = await asyncio.wait_for(response.content.read(6), 5)
            assert first == b"first;"  # arrived while the node still holds the rest
            lab.nodes[node].stream_gate.set()
            assert await asyncio.wait_for(response.content.read(), 5) == b"second"


async def test_request_bodies_and_forwarded_headers_reach_the_node() -> None:
    async with proxied(max_buffered_body=1024) as lab, new_session() as session:
        payload = b"x" * 300_000  # larger than the replay buffer: streamed
        async with session.post(f"{lab.base}/echo", data=io.BytesIO(payload)) as response:
            assert await response.read() == payload
        chunks = [b"a" * 1000, b"b" * 10]

        async def generate():  # type: ignore[no-untyped-def]
            for chunk in chunks:
                yield chunk

        async with session.post(f"{lab.base}/echo", data=generate()) as response:
            assert await response.read() == b"".join(chunks)
        node, _ = await whoami(session, lab.base)
        headers = lab.nodes[node].seen_headers[-1]
        assert headers["X-Forwarded-For"] == "127.0.0.1"
        assert headers["X-Forwarded-Proto"] == "http"
        assert headers["X-Forwarded-Host"] == str(lab.proxy.endpoint)


async def test_malformed_requests_get_4xx_and_the_proxy_keeps_serving() -> None:
    async with proxied() as lab:
        endpoint = lab.proxy.endpoint
        cases = [
            (b"NONSENSE\r\n\r\n", b"HTTP/1.1 400 "),
            (b"GET / HTTP/1.1\r\nHost: a\r\nBroken header\r\n\r\n", b"HTTP/1.1 400 "),
            (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 "),
            (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", b"HTTP/1.1 505 "),
            (
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n",
                b"HTTP/1.1 400 ",
            ),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 20000 + b"\r\n\r\n", b"HTTP/1.1 431 "),
            (b"GET / HTTP/1.1\r\nHost: a", b""),  # incomplete head, then EOF: just closed
        ]
        for request, expected in cases:
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
            writer.write(request)
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(expected), (request[:40], answer[:80])
        assert len(lab.logs("proxy.bad_request")) >= 6
        async with new_session() as session:
            assert (await whoami(session, lab.base))[0] in ("gws1", "gws2")


async def test_keep_alive_connection_carries_several_requests() -> None:
    async with proxied() as lab:
        request = b"GET /whoami HTTP/1.1\r\nHost: a\r\nCookie: DRLAB_UPSTREAM=gws2\r\n\r\n"
        last = b"GET /whoami HTTP/1.1\r\nHost: a\r\nCookie: DRLAB_UPSTREAM=gws2\r\n"
        answer = await raw_exchange(
            lab.proxy.endpoint, request + request + last + b"Connection: close\r\n\r\n"
        )
        assert answer.count(b"HTTP/1.1 200 OK") == 3
        assert answer.count(b'"upstream": "gws2"') == 3
        assert b"Set-Cookie" not in answer


async def test_status_page_shows_health_and_pins() -> None:
    async with proxied() as lab, new_session() as session:
        await whoami(session, lab.base)
        async with session.get(f"{lab.base}/proxy/status") as response:
            status = json.loads(await response.text())
        assert status["service"] == "proxy-test" and status["dc"] == "DC1"
        assert [u["name"] for u in status["upstreams"]] == ["gws1", "gws2"]
        assert all(u["healthy"] for u in status["upstreams"])
        assert sum(u["new_pins"] for u in status["upstreams"]) == 1


async def test_expect_100_continue_is_answered_by_the_proxy() -> None:
    async with proxied() as lab:
        endpoint = lab.proxy.endpoint
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        try:
            writer.write(
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"hello")
            answer = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"hello")


async def test_random_garbage_heads_never_crash_the_proxy() -> None:
    rng = random.Random(4)
    pieces = [b"GET", b" ", b"/", b"HTTP/1.1", b"\r\n", b"\n", b"\r", b":", b"Host", b"\x00"]
    pieces += [b"\xff\xfe", b"Content-Length: -1", b"Transfer-Encoding: x", b"\t", b"%%", b"a" * 9]
    async with proxied() as lab:
        endpoint = lab.proxy.endpoint
        for _ in range(60):
            request = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) + b"\r\n\r\n"
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
            writer.write(request)
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            # An HTTP answer (4xx with a reason for garbage), or a close after mere blank lines.
            assert answer == b"" or answer.startswith(b"HTTP/1.1 "), (request, answer)
        assert len(lab.logs("proxy.bad_request")) > 30
        async with new_session() as session:
            assert (await whoami(session, lab.base))[0] in ("gws1", "gws2")
