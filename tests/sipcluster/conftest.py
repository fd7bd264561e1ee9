"""A real SIP Cluster on loopback for tests: nodes in-process, TC links through a cuttable relay."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sipcluster.config import NodeConfig, Peer, Timers
from emulator.sipcluster.service import NodeService
from emulator.tlib.connection import TLibClient
from emulator.tlib.messages import Event, EventName, Request
from tests.support import LOOPBACK, eventually

FAST_TIMERS = Timers(
    addp_interval=0.2,
    addp_timeout=0.4,
    tc_interval=0.1,
    tc_timeout=0.3,
    ownership_move_delay=0.6,
    after_call_work_period=0.4,
)


class Relay:
    """A TCP forwarder standing for one relay link; ``cut`` resets or black-holes it."""

    def __init__(self, upstream: Endpoint) -> None:
        self.upstream = upstream
        self.mode = "up"
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.accepted = 0  # connections relayed so far
        self.dropped = 0  # bytes swallowed while black-holed

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
        self.accepted += 1
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if self.mode == "up":
                    dst.write(data)
                else:
                    self.dropped += len(data)
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

    def owners(self, dn: str) -> dict[str, tuple[str, int] | None]:
        """Each node's view of ``dn``'s owner and epoch (None where the node has no record)."""
        views: dict[str, tuple[str, int] | None] = {}
        for name, service in self.nodes.items():
            record = service.node.view.get(dn)
            views[name] = (record.owner, record.epoch) if record else None
        return views

    def owned_everywhere_by(self, dn: str, owner: str, epoch: int | None = None) -> bool:
        """True when every node's view says ``owner`` (at ``epoch`` if given) owns ``dn``."""
        return all(
            view is not None and view[0] == owner and (epoch is None or view[1] == epoch)
            for view in self.owners(dn).values()
        )

    def owned(self, dn: str) -> dict[str, Any]:
        """The owner's record of ``dn`` as its control endpoint shows it (state()["owned"])."""
        owner = self.nodes[next(iter(self.nodes))].node.owner_of(dn)
        assert owner is not None, f"no owner of {dn} yet"
        return dict(self.state(owner)["owned"][dn])

    def peer_state(self, node: str, peer: str) -> str:
        return str(self.state(node)["peers"][peer]["state"])

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

    def drain(self) -> list[Event]:
        """Forget the events received so far, so that ``expect`` waits for a new one."""
        drained: list[Event] = []
        while not self.client.events.empty():
            drained.append(self.client.events.get_nowait())
        return drained

    async def absent(self, name: EventName, within: float, **attrs: Any) -> None:
        """Assert that no ``name`` event (with ``attrs``) arrives within ``within`` seconds."""
        try:
            event = await self.expect(name, timeout=within, **attrs)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {event.name} {event.this_dn} {dict(event.attributes)}")

    async def close(self) -> None:
        """Close the desktop's socket, as a GWS node that dies or loses its T-Lib link."""
        await self.client.close()


TOPOLOGY = {"sip1": "DC1", "sip2": "DC1", "sip3": "DC2", "sip4": "DC2"}


@pytest.fixture
async def cluster_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[Cluster] = []

    async def make(
        names: tuple[str, ...] = ("sip1", "sip2", "sip3", "sip4"),
        timers: Timers = FAST_TIMERS,
        logout_on_disconnect: bool = True,
    ) -> Cluster:
        # Every socket binds port 0 (no pick-then-bind race with other tests on the machine):
        # relay "a-b" learns its upstream once b listens; a's dialler retries until then.
        links: dict[str, Relay] = {}
        for a in names:
            for b in names:
                if a < b:
                    relay = Relay(Endpoint(LOOPBACK, 0))
                    await relay.start()
                    links[f"{a}-{b}"] = relay
        nodes: dict[str, NodeService] = {}
        logs: dict[str, io.StringIO] = {}
        tc: dict[str, Endpoint] = {}
        for name in sorted(names):
            peers = tuple(
                Peer(
                    other,
                    TOPOLOGY[other],
                    Endpoint(LOOPBACK, links[f"{name}-{other}"].port)
                    if name < other
                    else tc[other],  # never dialled: the node whose name sorts first dials
                )
                for other in sorted(names)
                if other != name
            )
            config = NodeConfig(
                name=name,
                dc=TOPOLOGY[name],
                tlib=Endpoint(LOOPBACK, 0),
                tc=Endpoint(LOOPBACK, 0),
                control=Endpoint(LOOPBACK, 0),
                peers=peers,
                timers=timers,
                logout_on_disconnect=logout_on_disconnect,
            )
            logs[name] = io.StringIO()
            nodes[name] = NodeService(config, JsonLog(name, TOPOLOGY[name], logs[name]))
            await nodes[name].start()
            host, port = nodes[name].endpoints["tc"].rsplit(":", 1)
            tc[name] = Endpoint(host, int(port))
            for other in names:
                if other < name:
                    links[f"{other}-{name}"].upstream = tc[name]
        cluster = Cluster(nodes, links, logs)
        made.append(cluster)
        expected = len(names) - 1
        await eventually(
            lambda: all(len(n.node.peers_up) == expected for n in nodes.values()), timeout=5
        )
        return cluster

    yield make
    for cluster in made:
        await _stop(cluster)


async def _stop(cluster: Cluster) -> None:
    for client in cluster.clients:
        with contextlib.suppress(Exception):
            await client.close()
    # Relays first: every TC connection, even one still waiting for its TcHello (after a
    # black-holed link), is reset and closed by its node before the node stops; a node
    # cancelled in mid-handshake would leak that socket. Such a connection is not a peer
    # yet, so after the peers are down the nodes get a moment to see the last resets.
    for relay in cluster.links.values():
        await relay.close()
    with contextlib.suppress(AssertionError):
        await eventually(
            lambda: not any(n.node.peers_up for n in cluster.nodes.values()), timeout=5
        )
    await asyncio.sleep(0.05)
    for node in cluster.nodes.values():
        await node.stop()
