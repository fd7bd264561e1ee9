"""UDP links: per-client sessions so replies reach the right client, cuts drop datagrams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest

from emulator.links.link import Link
from emulator.links.model import CutMode, Protocol
from emulator.links.relay import Relay
from emulator.links.toxics import parse_toxic
from tests.links.conftest import UdpEcho, add_link
from tests.support import LOOPBACK, eventually


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data)

    async def receive(self, timeout: float = 5.0) -> bytes:
        async with asyncio.timeout(timeout):
            return await self.received.get()

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await self.receive(seconds)
        except TimeoutError:
            return True
        return False


@pytest.fixture
async def udp_clients() -> AsyncIterator[list[UdpClient]]:
    clients: list[UdpClient] = []
    yield clients
    for client in clients:
        if client.transport is not None:
            client.transport.close()


async def udp_client(link: Link, clients: list[UdpClient]) -> UdpClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(
        UdpClient, remote_addr=(link.spec.listen.host, link.spec.listen.port)
    )
    clients.append(client)
    return client


async def udp_link(relay: Relay, echo: UdpEcho) -> Link:
    return await add_link(relay, echo.endpoint, name="phone-dc1", protocol=Protocol.UDP)


async def test_datagrams_are_echoed_through_a_udp_link(
    relay: Relay, udp_echo: UdpEcho, udp_clients: list[UdpClient]
) -> None:
    link = await udp_link(relay, udp_echo)
    client = await udp_client(link, udp_clients)
    client.send(b"rtp 1")
    assert await client.receive() == b"rtp 1"
    assert udp_echo.sources[0][0] == LOOPBACK


async def test_each_client_gets_its_own_session_and_its_own_replies(
    relay: Relay, udp_echo: UdpEcho, udp_clients: list[UdpClient]
) -> None:
    link = await udp_link(relay, udp_echo)
    first = await udp_client(link, udp_clients)
    second = await udp_client(link, udp_clients)
    for _ in range(3):
        first.send(b"from first")
        second.send(b"from second")
    for _ in range(3):
        assert await first.receive() == b"from first"
        assert await second.receive() == b"from second"
    assert len(set(udp_echo.sources)) == 2  # one upstream socket per client
    sessions = link.connections()
    assert sorted((s.bytes_upstream, s.bytes_downstream) for s in sessions) == [
        (30, 30),
        (33, 33),
    ]


async def test_cut_and_blackhole_drop_datagrams_and_heal_restores_them(
    relay: Relay, udp_echo: UdpEcho, udp_clients: list[UdpClient]
) -> None:
    link = await udp_link(relay, udp_echo)
    client = await udp_client(link, udp_clients)
    client.send(b"before")
    assert await client.receive() == b"before"

    for mode in (CutMode.RESET, CutMode.BLACKHOLE):
        await relay.cut(link.name, mode, ttl=None)
        sent_before = len(udp_echo.sources)
        client.send(b"dropped")
        assert await client.nothing_within(0.3)
        assert len(udp_echo.sources) == sent_before
        await relay.heal(link.name)
        client.send(b"after")
        assert await client.receive() == b"after"


async def test_a_reset_cut_forgets_sessions_and_a_blackhole_keeps_them(
    relay: Relay, udp_echo: UdpEcho, udp_clients: list[UdpClient]
) -> None:
    link = await udp_link(relay, udp_echo)
    client = await udp_client(link, udp_clients)
    client.send(b"x")
    await client.receive()
    await relay.cut(link.name, CutMode.BLACKHOLE, ttl=None)
    assert len(link.connections()) == 1
    await relay.cut(link.name, CutMode.RESET, ttl=None)
    assert link.connections() == []


async def test_cutting_one_udp_session_gives_the_client_a_fresh_one(
    relay: Relay, udp_echo: UdpEcho, udp_clients: list[UdpClient]
) -> None:
    link = await udp_link(relay, udp_echo)
    client = await udp_client(link, udp_clients)
    client.send(b"x")
    await client.receive()
    (session,) = link.connections()
    await relay.cut_connection(link.name, session.id)
    assert link.connections() == []
    client.send(b"y")
    assert await client.receive() == b"y"
    assert [s.id for s in link.connections()] == [session.id + 1]
    assert len(set(udp_echo.sources)) == 2


async def test_latency_delays_datagrams(
    relay: Relay, udp_echo: UdpEcho, udp_clients: list[UdpClient]
) -> None:
    link = await udp_link(relay, udp_echo)
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 150}})
    await relay.add_toxic(link.name, toxic, ttl=None)
    client = await udp_client(link, udp_clients)
    loop = asyncio.get_running_loop()
    started = loop.time()
    client.send(b"slow")
    assert await client.receive() == b"slow"
    assert loop.time() - started >= 0.14


async def test_idle_udp_sessions_expire(
    relay: Relay, udp_echo: UdpEcho, udp_clients: list[UdpClient]
) -> None:
    link = await udp_link(relay, udp_echo)
    link.flow.udp_idle_timeout = 0.2
    client = await udp_client(link, udp_clients)
    client.send(b"x")
    await client.receive()
    assert len(link.connections()) == 1
    await eventually(lambda: not link.connections(), timeout=8.0)
