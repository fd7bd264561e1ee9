"""Loopback fixtures for the fault relay: a recording upstream, a relay, the service and client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog, flush_all
from emulator.common.timescale import TimeScale
from emulator.links.client import LinksClient
from emulator.links.link import Link
from emulator.links.model import LinkSpec, NewLink, Protocol
from emulator.links.relay import Relay
from emulator.links.service import LinksService
from tests.support import LOOPBACK

ANY_PORT = Endpoint(LOOPBACK, 0)


class Upstream:
    """A TCP server that records what each connection sent and echoes it unless told not to."""

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo
        self.received: list[bytearray] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.closed: list[bool] = []
        self._server: asyncio.Server | None = None
        self.endpoint = ANY_PORT

    async def start(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.endpoint = Endpoint(LOOPBACK, self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self.writers:
            writer.transport.abort()

    @property
    def total(self) -> int:
        return sum(len(data) for data in self.received)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.received)
        self.received.append(bytearray())
        self.writers.append(writer)
        self.closed.append(False)
        try:
            while data := await reader.read(65536):
                self.received[index] += data
                if self.echo:
                    writer.write(data)
                    await writer.drain()
        except OSError:
            pass
        finally:
            self.closed[index] = True
            writer.transport.abort()


class UdpEcho(asyncio.DatagramProtocol):
    """A UDP server that echoes every datagram and remembers each source address."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, int]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.endpoint = ANY_PORT

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        host, port = transport.get_extra_info("sockname")[:2]
        self.endpoint = Endpoint(host, port)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sources.append(addr)
        assert self.transport is not None
        self.transport.sendto(data, addr)


class Events:
    """The relay's JSON-lines log, parsed."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.log = JsonLog("links", stream=self.stream)

    def all(self) -> list[dict[str, Any]]:
        flush_all()
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def named(self, event: str) -> list[dict[str, Any]]:
        return [record for record in self.all() if record["event"] == event]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream().start()
    yield server
    await server.stop()


@pytest.fixture
async def udp_echo() -> AsyncIterator[UdpEcho]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(UdpEcho, local_addr=(LOOPBACK, 0))
    yield protocol
    transport.close()


@pytest.fixture
async def relay(events: Events) -> AsyncIterator[Relay]:
    async with Relay(
        log=events.log, time_scale=TimeScale(0.1), rng=random.Random(7), udp_idle_timeout=5.0
    ) as relay:
        yield relay


async def add_link(
    relay: Relay, upstream: Endpoint, name: str = "a-b", protocol: Protocol = Protocol.TCP
) -> Link:
    return await relay.create(NewLink(LinkSpec(name, ANY_PORT, upstream, protocol)))


async def connect(link: Link) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(link.spec.listen.host, link.spec.listen.port)


async def roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, timeout: float = 5.0
) -> bytes:
    writer.write(data)
    await writer.drain()
    async with asyncio.timeout(timeout):
        return await reader.readexactly(len(data))


async def read_all(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    """Everything until EOF; a reset counts as the end too."""
    received = bytearray()
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                received += chunk
    return bytes(received)


@pytest.fixture
async def service(events: Events) -> AsyncIterator[LinksService]:
    async with LinksService(
        api=ANY_PORT, log=events.log, time_scale=TimeScale(0.1), seed=7
    ) as running:
        yield running


@pytest.fixture
async def client(service: LinksService) -> AsyncIterator[LinksClient]:
    async with LinksClient(service.api) as links:
        yield links
