"""The lab's faults (DESIGN §3): the one async API the CLI, chaos and scenarios drive.

Each fault is logged first. The CLI wraps each call in ``asyncio.run``; chaos and the scenario
runner await them inside their own loop. ``restore`` is the one way back to a whole lab (every
service running, every link healed, the named toxics removed), and ``status.wait_healthy`` the one
wait for it.

Service faults (kill, stop, start, pause, resume) are the engine's; link faults (cut, blackhole,
heal, partition, toxics) are requests to the relay's API through ``LinksClient``. Every fault and
heal is a ``fault.*`` entry on the lab's timeline (``lab.jsonl``) with its target and options;
the relay logs the effect (``link.cut``, ``link.heal`` — also when a TTL heals by itself).

Names are checked before anything is sent: an unknown service, link, DC or toxic type raises
``UnknownName`` listing the valid ones, an invalid toxic raises ``FaultRefused`` with the relay's
own validation message (the same code the relay runs), so nothing is half-applied. TTLs are lab
seconds: the relay multiplies them by the lab's time scale, like every other timer.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from emulator.lab.engine.protocol import Engine, Progress
from emulator.lab.errors import FaultRefused, LabError, UnknownName
from emulator.lab.status import relay_api, relay_proxies
from emulator.links.client import LinksClient, ProxyInfo
from emulator.links.errors import LinksError, Unavailable
from emulator.links.toxics import ToxicSpec, ToxicType, parse_toxic, toxic_request

T = TypeVar("T")

CUT_MODES = ("reset", "blackhole")
KILL_WAIT = 5.0  # seconds for a killed service to be gone
STREAMS = ("downstream", "upstream")
TOXIC_TYPES = tuple(toxic.value for toxic in ToxicType)


class LabFaults:
    def __init__(self, engine: Engine, source: str | None = None) -> None:
        self.engine = engine
        self.topology = engine.topology
        self.api = relay_api(engine)
        # Who asked (``chaos seed 7``), written on every timeline entry of this instance.
        self.context: dict[str, Any] = {"source": source} if source else {}

    # -- names ----------------------------------------------------------------------------

    def check_service(self, name: str) -> str:
        if name not in self.topology.services:
            raise UnknownName("service", name, self.topology.names())
        return name

    def link_names(self) -> list[str]:
        """The topology's links, then any the relay has besides (created through its API)."""
        names = list(self.topology.links)
        extra = sorted(set(relay_proxies(self.engine) or {}) - set(names))
        return names + extra

    def check_links(self, names: Sequence[str]) -> list[str]:
        """Known link names, with each link group (``softphone2-dc1``) replaced by its links."""
        groups = self.topology.groups
        for name in names:
            if name not in groups and name not in self.topology.links:
                valid = self.link_names()
                if name not in valid:
                    raise UnknownName("link", name, [*valid, *groups])
        return self.topology.expand(names)

    def check_link(self, name: str) -> str:
        if name in self.topology.links:
            return name
        valid = self.link_names()
        if name not in valid:
            raise UnknownName("link", name, valid)
        return name

    def check_dc(self, name: str) -> str:
        if name not in self.topology.dcs():
            raise UnknownName("DC", name, self.topology.dcs())
        return name

    # -- service faults -------------------------------------------------------------------

    async def kill(self, service: str) -> int:
        """SIGKILL, and return once the service is gone: a start right after it (a chaos fault
        reverted at once) must not find it still running."""
        pid = await self._signal(service, signal.SIGKILL, "service.kill")
        deadline = asyncio.get_running_loop().time() + KILL_WAIT
        while await asyncio.to_thread(self.engine.service_state, service) != "stopped":
            if asyncio.get_running_loop().time() > deadline:
                raise LabError(f"{service} (pid {pid}) outlived SIGKILL for {KILL_WAIT:.0f} s")
            await asyncio.sleep(0.02)
        return pid

    async def pause(self, service: str) -> int:
        return await self._signal(service, signal.SIGSTOP, "service.pause")

    async def resume(self, service: str) -> int:
        return await self._signal(service, signal.SIGCONT, "service.resume")

    async def _signal(self, service: str, sig: signal.Signals, event: str) -> int:
        name = self.check_service(service)
        return await asyncio.to_thread(self.engine.signal, name, sig, event, **self.context)

    async def stop(self, service: str) -> None:
        name = self.check_service(service)
        await asyncio.to_thread(self.engine.stop, name, **self.context)

    async def start(self, service: str, progress: Progress) -> None:
        name = self.check_service(service)
        await asyncio.to_thread(self.engine.start, name, progress, **self.context)

    # -- link faults ----------------------------------------------------------------------

    async def cut(
        self, links: Sequence[str], mode: str = "reset", ttl: float | None = None
    ) -> list[str]:
        """Cut links (and link groups) at one instant (``POST /cut``): reset or black-hole,
        healed after ``ttl``."""
        names = self.check_links(links)
        if mode not in CUT_MODES:
            raise UnknownName("mode", mode, CUT_MODES)
        _check_ttl(ttl)
        self.engine.timeline.event("fault.cut", links=names, mode=mode, ttl=ttl, **self.context)
        await self._relay(lambda client: client.cut_many(names, mode=mode, ttl=ttl))
        return names

    async def heal(self, links: Sequence[str] | None) -> list[str]:
        """Heal the given links, or every link (``None``); toxics stay."""
        if links is None:
            self.engine.timeline.event("fault.heal", links="all", **self.context)
            await self._relay(lambda client: client.heal_all())
            return list(self.topology.links)
        names = self.check_links(links)
        self.engine.timeline.event("fault.heal", links=names, **self.context)
        await self._relay(lambda client: client.heal_many(names))
        return names

    async def partition(
        self, dc_a: str, dc_b: str, ttl: float | None = None, mode: str = "reset"
    ) -> list[str]:
        """Cut every link whose two ends are in ``dc_a`` and ``dc_b``, at one instant."""
        if mode not in CUT_MODES:
            raise UnknownName("mode", mode, CUT_MODES)
        self.check_dc(dc_a)
        self.check_dc(dc_b)
        if dc_a == dc_b:
            raise FaultRefused(f"a partition needs two different DCs, got {dc_a} twice")
        _check_ttl(ttl)
        names = self.topology.crossing(dc_a, dc_b)
        if not names:
            raise FaultRefused(f"no link crosses {dc_a} and {dc_b}")
        self.engine.timeline.event(
            "fault.partition", dcs=[dc_a, dc_b], links=names, mode=mode, ttl=ttl, **self.context
        )
        await self._relay(lambda client: client.cut_many(names, mode=mode, ttl=ttl))
        return names

    async def add_toxic(
        self,
        link: str,
        toxic_type: str,
        attributes: Mapping[str, int],
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        ttl: float | None = None,
    ) -> ToxicSpec:
        self.check_link(link)
        if toxic_type not in TOXIC_TYPES:
            raise UnknownName("toxic type", toxic_type, TOXIC_TYPES)
        _check_ttl(ttl)
        body = toxic_request(
            toxic_type, attributes, name=name, stream=stream, toxicity=toxicity, ttl=None
        )
        try:
            spec = parse_toxic(body)
        except LinksError as exc:
            raise FaultRefused(exc.message) from None
        self.engine.timeline.event(
            "fault.toxic_add", link=link, toxic=spec.to_json(), ttl=ttl, **self.context
        )
        return await self._relay(
            lambda client: client.add_toxic(
                link,
                toxic_type,
                attributes,
                toxic_name=spec.name,
                stream=stream,
                toxicity=toxicity,
                ttl=ttl,
            )
        )

    async def remove_toxic(self, link: str, name: str) -> None:
        self.check_link(link)
        toxics = await self._relay(lambda client: client.toxics(link))
        present = [toxic.name for toxic in toxics]
        if name not in present:
            raise UnknownName("toxic", name, present, where=f" on {link}")
        self.engine.timeline.event("fault.toxic_rm", link=link, toxic=name, **self.context)
        await self._relay(lambda client: client.remove_toxic(link, name))

    async def links(self) -> dict[str, ProxyInfo]:
        return await self._relay(lambda client: client.list())

    # -- recovery -------------------------------------------------------------------------

    async def restore(
        self, progress: Progress, toxics: Collection[tuple[str, str]] = ()
    ) -> list[str]:
        """Every service running (paused ones resumed, stopped ones started wave by wave), every
        link healed, and each ``(link, toxic)`` of ``toxics`` removed; returns what was done."""
        engine = self.engine
        # The engine's own view: a process's state for the embedded one, a container's for compose.
        names = list(self.topology.services)
        states = dict(
            zip(
                names,
                await asyncio.gather(
                    *(asyncio.to_thread(engine.service_state, name) for name in names)
                ),
                strict=True,
            )
        )
        done: list[str] = []
        for wave in self.topology.start_waves():
            for name in wave:
                if states[name] == "paused":
                    await self.resume(name)
                    done.append(f"resumed {name}")
            stopped = [name for name in wave if states[name] == "stopped"]
            if stopped:
                await asyncio.to_thread(engine.start_many, stopped, progress, **self.context)
                done += [f"started {name}" for name in stopped]
        await self.heal(None)
        done.append("healed every link")
        for link, proxy in (await self.links()).items():
            for toxic in proxy.toxics:
                if (link, toxic.name) in toxics:
                    await self.remove_toxic(link, toxic.name)
                    done.append(f"removed toxic {toxic.name} from {link}")
        return done

    async def _relay(self, operation: Callable[[LinksClient], Awaitable[T]]) -> T:
        try:
            async with LinksClient(self.api, timeout=5.0) as client:
                return await operation(client)
        except Unavailable:
            raise LabError(
                f"the relay is not answering at {self.api}; is the lab up? ('drlab status')"
            ) from None
        except LinksError as exc:
            raise FaultRefused(f"the relay refused: {exc.message}") from None


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and not ttl > 0:
        raise FaultRefused(f"a TTL must be a positive number of seconds, got {ttl}")
