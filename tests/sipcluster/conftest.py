"""A real SIP Cluster on loopback for tests: nodes in-process, TC links through a cuttable relay."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sipcluster.config import NodeConfig, Peer, Timers
from emulator.sipcluster.service import NodeService
from emulator.tlib.aio import TLibClient
from emulator.tlib.messages import Event, EventName, Request

LOOPBACK = "127.0.0.1"
FAST_TIMERS = Timers(
    addp_interval=0.2,
    addp_timeout=0.4,
    tc_interval=0.1,
    tc_timeout=0.3,
    ownership_move_delay=0.6,
    after_call_work_period=0.4,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Relay:
    """A TCP forwarder standing for one relay link; ``cut`` resets or black-holes it."""

    def __init__(self, upstream: Endpoint) -> None:
        self.upstream = upstream
        self.mode = "up"
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._accept, LOOPBACK, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._pairs.append((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if self.mode == "up":
                    dst.write(data)
        except (ConnectionError, OSError):
            pass
        finally:
            dst.transport.abort()

    def cut(self, mode: str = "reset") -> None:
        self.mode = mode
        if mode == "reset":
            for a, b in self._pairs:
                a.transport.abort()
                b.transport.abort()
            self._pairs.clear()

    def heal(self) -> None:
        self.mode = "up"

    async def close(self) -> None:
        self.cut("reset")
        if self.server:
            self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Cluster:
    nodes: dict[str, NodeService]
    links: dict[str, Relay]
    logs: dict[str, io.StringIO]
    clients: list[TLibClient] = field(default_factory=list)

    async def desktop(self, node: str) -> Desk:
        host, port = self.nodes[node].endpoints["tlib"].rsplit(":", 1)
        client = await TLibClient.connect(host, int(port), addp_interval=0.2, addp_timeout=0.4)
        self.clients.append(client)
        return Desk(client)

    def state(self, node: str) -> dict[str, Any]:
        return self.nodes[node].node.state()

    def partition(self, *links: str) -> None:
        for name in links:
            self.links[name].cut("reset")


@dataclass
class Desk:
    """A desktop's T-Lib client with helpers that read like the scenarios."""

    client: TLibClient

    async def send(self, request_type: Callable[..., Request], dn: str, **kw: Any) -> Event:
        request = request_type(reference_id=self.client.next_reference_id(), this_dn=dn, **kw)
        return await self.client.request(request)

    async def expect(self, name: EventName, timeout: float = 5.0, **attrs: Any) -> Event:
        def matches(event: Event) -> bool:
            return event.name is name and all(event.get(k) == v for k, v in attrs.items())

        return await self.client.wait_for(matches, timeout)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


TOPOLOGY = {"sip1": "DC1", "sip2": "DC1", "sip3": "DC2", "sip4": "DC2"}


@pytest.fixture
async def cluster_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[Cluster] = []

    async def make(
        names: tuple[str, ...] = ("sip1", "sip2", "sip3", "sip4"),
        timers: Timers = FAST_TIMERS,
        logout_on_disconnect: bool = True,
    ) -> Cluster:
        tc_ports = {name: free_port() for name in names}
        links: dict[str, Relay] = {}
        for a in names:
            for b in names:
                if a < b:
                    relay = Relay(Endpoint(LOOPBACK, tc_ports[b]))
                    await relay.start()
                    links[f"{a}-{b}"] = relay
        nodes: dict[str, NodeService] = {}
        logs: dict[str, io.StringIO] = {}
        for name in names:
            peers = tuple(
                Peer(
                    other,
                    TOPOLOGY[other],
                    Endpoint(LOOPBACK, links[f"{name}-{other}"].port)
                    if name < other
                    else Endpoint(LOOPBACK, tc_ports[other]),
                )
                for other in names
                if other != name
            )
            config = NodeConfig(
                name=name,
                dc=TOPOLOGY[name],
                tlib=Endpoint(LOOPBACK, 0),
                tc=Endpoint(LOOPBACK, tc_ports[name]),
                control=Endpoint(LOOPBACK, 0),
                peers=peers,
                timers=timers,
                logout_on_disconnect=logout_on_disconnect,
            )
            logs[name] = io.StringIO()
            nodes[name] = NodeService(config, JsonLog(name, TOPOLOGY[name], logs[name]))
            await nodes[name].start()
        cluster = Cluster(nodes, links, logs)
        made.append(cluster)
        expected = len(names) - 1
        await eventually(lambda: all(len(n.node.peers_up) == expected for n in nodes.values()))
        return cluster

    yield make
    for cluster in made:
        for client in cluster.clients:
            with contextlib.suppress(Exception):
                await client.close()
        for node in cluster.nodes.values():
            await node.stop()
        for relay in cluster.links.values():
            await relay.close()
