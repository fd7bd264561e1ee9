"""A SIP-enabled cluster on loopback for tests, with phones routed as the lab routes them.

``sip_lab(relay=True)`` puts every phone path and the TC-layer through the real fault relay
(``emulator.links.relay.Relay``, in-process) with the static link table the lab needs:

- ``{phone}-{node}`` (UDP): phone -> node SIP; ``{phone}-{node}-rtp`` (UDP): phone -> node RTP;
- ``{phone}-route`` (UDP): nodes -> the phone's SIP port (their ``--phone-route``/``--pstn-route``);
- ``sip1-sip2`` (TCP): the TC-layer.

Cutting every ``softphone2-*`` link is the lab's ``cut softphone2-dc1`` (both nodes are DC1 here).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.phoneline.config import NodeEntry
from clients.pstn.config import PstnConfig
from clients.pstn.gateway import Pstn
from clients.softphone.phone import Softphone
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog, flush_all
from emulator.common.timescale import TimeScale
from emulator.links.model import CutMode, LinkSpec, LinkUpdate, NewLink, Protocol
from emulator.links.relay import Relay
from emulator.sip.transaction import TimerConfig
from emulator.sipcluster.config import NodeConfig, Peer
from emulator.sipcluster.service import NodeService
from emulator.sipcluster.sip_config import SipConfig
from emulator.tlib.messages import RequestAgentLogin, RequestRegisterAddress
from tests.clients.softphone.softphone_test_helpers import phone_config
from tests.sipcluster.conftest import FAST_TIMERS, Cluster, Desk
from tests.support import LOOPBACK, eventually

SCALE = TimeScale(0.05)  # registration 60 s -> 3 s, refresh every 1.5 s
SIP_TIMERS = TimerConfig(t1=0.05, t2=0.4, t4=0.5)  # the node's: timer B/F 3.2 s
PHONES = ("softphone2", "pstn")
PLACEHOLDER = Endpoint(LOOPBACK, 9)  # a link's upstream until what it reaches is started


def ep(text: str) -> Endpoint:
    host, _, port = text.rpartition(":")
    return Endpoint(host, int(port))


@dataclass
class SipLab(Cluster):
    """The cluster of ``conftest`` (desktops, ownership views) with SIP and the fault relay."""

    relay: Relay | None = None

    def sip(self, node: str) -> Endpoint:
        return ep(self.nodes[node].endpoints["sip"])

    def path(self, phone: str, node: str) -> Endpoint:
        """Where ``phone`` sends SIP for ``node``: its relay link, or the node itself."""
        if self.relay is None:
            return self.sip(node)
        return self.relay.get(f"{phone}-{node}").spec.listen

    async def route_to(self, phone: str, sip: Endpoint) -> None:
        """Point the nodes' route link towards ``phone`` at the phone's SIP port."""
        if self.relay is not None:
            await self.relay.update(f"{phone}-route", LinkUpdate(upstream=sip))

    async def cut(self, *names: str, mode: CutMode = CutMode.BLACKHOLE) -> None:
        assert self.relay is not None
        await self.relay.cut_many(list(names), mode, None)

    async def heal(self, *names: str) -> None:
        assert self.relay is not None
        await self.relay.heal_many(list(names))

    def links_of(self, phone: str) -> list[str]:
        assert self.relay is not None
        return [link.name for link in self.relay.links() if link.name.startswith(f"{phone}-")]

    def state(self, node: str) -> dict[str, Any]:
        service = self.nodes[node]
        assert service.sip is not None
        return {**service.node.state(), "sip": service.sip.state()}

    def records(self, node: str, event: str) -> list[dict[str, Any]]:
        flush_all()
        lines = self.logs[node].getvalue().splitlines()
        return [r for r in map(json.loads, lines) if r["event"] == event]


@contextlib.asynccontextmanager
async def sip_lab(
    names: tuple[str, ...] = ("sip1", "sip2"), *, relay: bool = True, **sip: Any
) -> AsyncIterator[SipLab]:
    """Nodes with their SIP side; ``sip`` overrides ``SipConfig`` fields."""
    async with contextlib.AsyncExitStack() as stack:
        links = await stack.enter_async_context(Relay(log=JsonLog("links", stream=io.StringIO())))
        if relay:
            await _create_links(links, names)
        nodes: dict[str, NodeService] = {}
        logs: dict[str, io.StringIO] = {}
        for name in sorted(names, reverse=True):  # a node dials the peers whose names sort after
            peers = []
            for other in names:
                if other == name:
                    continue
                address = ep(nodes[other].endpoints["tc"]) if other in nodes else PLACEHOLDER
                if relay and name < other:
                    tc_link = f"{name}-{other}"
                    await links.update(tc_link, LinkUpdate(upstream=address))
                    address = links.get(tc_link).spec.listen
                peers.append(Peer(other, "DC1", address))
            options: dict[str, Any] = {"scale": SCALE, "timers": SIP_TIMERS}
            if relay:
                options.update(_routes(links, name))
            options.update(sip)
            config = NodeConfig(
                name=name,
                dc="DC1",
                tlib=Endpoint(LOOPBACK, 0),
                tc=Endpoint(LOOPBACK, 0),
                control=Endpoint(LOOPBACK, 0),
                peers=tuple(peers),
                timers=FAST_TIMERS,
                sip=SipConfig(sip=Endpoint(LOOPBACK, 0), media=Endpoint(LOOPBACK, 0), **options),
            )
            logs[name] = io.StringIO()
            nodes[name] = NodeService(config, JsonLog(name, "DC1", logs[name]))
            await nodes[name].start()
            stack.push_async_callback(nodes[name].stop)
            if relay:
                for phone in PHONES:
                    endpoints = nodes[name].endpoints
                    await links.update(f"{phone}-{name}", LinkUpdate(upstream=ep(endpoints["sip"])))
                    media = LinkUpdate(upstream=ep(endpoints["media"]))
                    await links.update(f"{phone}-{name}-rtp", media)
        lab = SipLab(nodes, {}, logs, relay=links if relay else None)
        await eventually(
            lambda: all(len(n.node.peers_up) == len(names) - 1 for n in nodes.values()), timeout=5
        )
        try:
            yield lab
        finally:
            for client in lab.clients:
                with contextlib.suppress(Exception):
                    await client.close()


async def _create_links(relay: Relay, names: tuple[str, ...]) -> None:
    specs = [
        LinkSpec(f"{phone}-{suffix}", Endpoint(LOOPBACK, 0), PLACEHOLDER, Protocol.UDP)
        for phone in PHONES
        for suffix in ("route", *names, *(f"{name}-rtp" for name in names))
    ]
    specs += [
        LinkSpec(f"{a}-{b}", Endpoint(LOOPBACK, 0), PLACEHOLDER, Protocol.TCP)
        for a in names
        for b in names
        if a < b
    ]
    for spec in specs:
        await relay.create(NewLink(spec))


def _routes(relay: Relay, node: str) -> dict[str, Any]:
    def listen(name: str) -> Endpoint:
        return relay.get(name).spec.listen

    return {
        "phone_routes": {"7002": listen("softphone2-route")},
        "phone_media": {"7002": listen(f"softphone2-{node}-rtp")},
        "pstn_route": listen("pstn-route"),
        "pstn_media": listen(f"pstn-{node}-rtp"),
    }


@contextlib.asynccontextmanager
async def lab_softphone(
    lab: SipLab, order: tuple[str, ...], **overrides: Any
) -> AsyncIterator[Softphone]:
    """softphone2 (DN 7002) registering at ``order`` through its links."""
    registrars = [(node, lab.path("softphone2", node)) for node in order]
    async with Softphone(phone_config(registrars, **overrides)) as phone:
        await lab.route_to("softphone2", phone.sip_bound)
        yield phone


@contextlib.asynccontextmanager
async def lab_pstn(lab: SipLab, **overrides: Any) -> AsyncIterator[Pstn]:
    """The PSTN gateway reaching every node through its links; agent1 (7001) is a PSTN agent."""
    nodes = tuple(NodeEntry(name, lab.path("pstn", name)) for name in sorted(lab.nodes))
    settings: dict[str, Any] = {
        "name": "pstn",
        "nodes": nodes,
        "agents": {"7001": "agent-7001"},
        "scale": SCALE,
        "rtp_timeout": 1.5,
        "keepalive": 0,
    }
    settings.update(overrides)
    async with Pstn(PstnConfig(**settings), JsonLog("pstn", stream=io.StringIO())) as pstn:
        await lab.route_to("pstn", pstn.sip_bound)
        yield pstn


async def talk(seconds: float) -> None:
    """Let media flow (a measured duration, not a wait for a condition)."""
    await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def agent2_lab(
    *,
    sip: dict[str, Any] | None = None,
    pstn: dict[str, Any] | None = None,
    login: bool = True,
    **phone: Any,
) -> AsyncIterator[tuple[SipLab, Softphone, Pstn, Desk]]:
    """sip1 and sip2 through the relay, softphone2 registered at sip1 (its owner), the PSTN
    gateway, and agent2's desktop on sip1 (registered on 7002, agent2 logged in)."""
    async with (
        sip_lab(**(sip or {})) as lab,
        lab_softphone(lab, ("sip1", "sip2"), **phone) as softphone,
        lab_pstn(lab, **(pstn or {})) as gateway,
    ):
        await eventually(lambda: lab.nodes["sip2"].node.owner_of("7002") == "sip1", timeout=5)
        await eventually(
            lambda: all(n.node.phones.get("7002") for n in lab.nodes.values()), timeout=5
        )
        desk = await lab.desktop("sip1")
        await desk.send(RequestRegisterAddress, "7002")
        if login:
            await desk.send(RequestAgentLogin, "7002", agent_id="agent2")
        yield lab, softphone, gateway, desk


async def run_sipp(cwd: Path, *args: str) -> asyncio.subprocess.Process:
    """Start SIPp for one call (or registration) on loopback, failing after 30 s."""
    return await asyncio.create_subprocess_exec(
        "sipp",
        *args,
        "-i",
        LOOPBACK,
        "-m",
        "1",
        "-timeout",
        "30s",
        "-timeout_error",
        "-nostdin",
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def sipp_succeeded(process: asyncio.subprocess.Process) -> None:
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode(errors="replace")
    # SIPp says why it stopped at the start of its output, before its statistics screens.
    assert process.returncode == 0, f"{text[:1500]}\n...\n{text[-1500:]}"
