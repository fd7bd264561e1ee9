"""A fresh lab for one scenario run, driven only through the lab's real interfaces.

``LabSession`` writes the scenario's variant of the topology (``compose.yaml`` with the extra
service arguments a scenario asks for, e.g. ``--no-unregister-on-timeout`` on gws1 for S1.14)
into the run's own directory, starts it with the run's engine (``embedded``: local processes;
``compose``: Docker containers from the variant file) at the run's time scale, waits until it is
healthy, and stops it at the end. Faults go through ``LabFaults``, the API ``drlab`` and chaos
use: link faults to the relay's API, service faults to the engine (signals, or ``docker kill`` /
``pause`` / ``stop`` / ``start``). Every fault is a ``fault.*`` / ``service.*`` entry on the lab's
timeline, as with ``drlab cut`` or ``kill``; logs and the timeline are in the engine's state
directory (``state_dir``), where both engines write them as the services run.

Phones in the variant: a softphone runs only when the scenario has a softphone agent with its DN
(``softphones``: DN -> the agent's owner node), and then it registers at that node first (its
other registrars follow in the file's order). A softphone that ever registered makes its DN a
softphone DN in the cluster's view for good (ownership follows REGISTER), so an agent that is a
PSTN agent in a scenario (agent2 in S1, S2) needs a lab where its softphone never ran: the
softphone's service and links are left out, and the PSTN gateway is that agent's phone. Every
phone runs with ``--no-auto-answer``: the run answers calls on the agent's phone as the agent
would, so a new call can be seen ringing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from emulator.lab.chaos.livelab import proxy_url
from emulator.lab.engine.factory import make_engine
from emulator.lab.engine.protocol import Engine
from emulator.lab.errors import LabError
from emulator.lab.faults import LabFaults
from emulator.lab.status import wait_healthy
from emulator.lab.topology import GROUPS_KEY, LINKS_KEY, Topology, load_topology

HEALTHY_TIMEOUT = 30.0
PHONE_KINDS = ("pstn", "softphone")
HTTP_TIMEOUT = 5.0


class LabSession:
    def __init__(
        self,
        compose: Path,
        state_dir: Path,
        time_scale: float,
        extra_args: Mapping[str, Sequence[str]],
        progress: Callable[[str], None],
        softphones: Mapping[str, str] | None = None,
        engine: str = "embedded",
    ) -> None:
        self.compose = compose
        self.run_dir = state_dir  # the run's variant of compose.yaml; the engine's state below
        self.engine_name = engine
        self.time_scale = time_scale
        self.extra_args = extra_args
        self.progress = progress
        self.softphones = dict(softphones or {})
        self.topology: Topology = load_topology(compose)
        self.engine: Engine = make_engine(engine, self.topology, state_dir)
        self._http: aiohttp.ClientSession | None = None
        self.faults = LabFaults(self.engine, source="scenario")

    # -- lifecycle ------------------------------------------------------------------------

    async def up(self) -> None:
        variant = self._write_variant()
        self.topology = load_topology(variant)
        self.engine = make_engine(self.engine_name, self.topology, self.run_dir)
        if await asyncio.to_thread(self.engine.running):
            await asyncio.to_thread(self.engine.down, _quiet)
        for stale in (self.state_dir / "logs").glob("*.log"):
            stale.unlink()
        with contextlib.suppress(OSError):
            (self.state_dir / "lab.jsonl").unlink()
        await asyncio.to_thread(self.engine.up, self.time_scale, _quiet)
        self.faults = LabFaults(self.engine, source="scenario")
        if problems := await wait_healthy(self.engine, HEALTHY_TIMEOUT):
            raise LabError(f"the lab did not become healthy: {'; '.join(problems)}")
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))

    async def down(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await asyncio.to_thread(self.engine.down, _quiet)

    def _write_variant(self) -> Path:
        """The topology with the scenario's extra arguments appended to the services' commands."""
        document = yaml.safe_load(self.compose.read_text())
        for service, args in self.extra_args.items():
            body = document["services"].get(service)
            if body is None:
                raise LabError(f"the scenario adds arguments to unknown service {service}")
            body["command"] = [*body["command"], *args]
        self._phones(document)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        variant = self.run_dir / "compose.yaml"
        variant.write_text(yaml.safe_dump(document, sort_keys=False))
        return variant

    def _phones(self, document: dict[str, Any]) -> None:
        services: dict[str, Any] = document["services"]
        for name, body in list(services.items()):
            kind = (body.get("labels") or {}).get("drlab.kind")
            if kind not in PHONE_KINDS:
                continue
            command = list(body["command"])
            if kind == "softphone":
                dn = _option(command, "--dn")
                if dn not in self.softphones:
                    del services[name]
                    _drop_links(document, name)
                    continue
                command = _registrar_first(command, self.softphones[dn])
            body["command"] = [*command, "--no-auto-answer"]

    # -- where things are -----------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """Where the engine keeps the run's logs (``logs/``) and timeline (``lab.jsonl``)."""
        return self.engine.state_dir

    def endpoint(self, service: str, key: str) -> str:
        endpoint = self.engine.endpoints(service).get(key)
        if not endpoint:
            raise LabError(f"{service} has no {key} endpoint (is it running?)")
        return str(endpoint)

    def proxy_url(self, dc: str) -> str:
        return proxy_url(self.topology, dc)

    def dc_of(self, service: str) -> str:
        spec = self.topology.services.get(service)
        return spec.dc if spec else ""

    def pstn(self) -> str | None:
        """The PSTN gateway's service, if the lab has one."""
        return next((spec.name for spec in self.topology.of_kind("pstn")), None)

    def phone_of(self, dn: str) -> str | None:
        """The service that rings for ``dn``: its softphone if one runs, else the PSTN gateway."""
        for spec in self.topology.of_kind("softphone"):
            if spec.option("--dn") == dn:
                return spec.name
        return self.pstn()

    def phones(self) -> list[str]:
        return [spec.name for spec in self.topology.services.values() if spec.kind in PHONE_KINDS]

    def sip_nodes(self) -> list[str]:
        return [spec.name for spec in self.topology.of_kind("sipcluster")]

    def running(self, service: str) -> bool:
        return self.engine.service_state(service) == "running"

    def _running_nodes(self) -> list[str]:
        return [node for node in self.sip_nodes() if self.running(node)]

    # -- HTTP control endpoints -----------------------------------------------------------

    async def get_json(self, url: str) -> Any:
        assert self._http is not None, "the lab is not up"
        async with self._http.get(url) as response:
            return await response.json()

    async def post_json(self, url: str, body: Any = None) -> tuple[int, Any]:
        assert self._http is not None, "the lab is not up"
        async with self._http.post(url, json=body) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = {"error": await response.text()}
            return response.status, data

    async def node_states(self) -> dict[str, dict[str, Any]]:
        """``GET /state`` of every running SIP node (a node that does not answer is left out)."""

        async def one(node: str) -> tuple[str, Any]:
            try:
                return node, await self.get_json(f"http://{self.endpoint(node, 'control')}/state")
            except (aiohttp.ClientError, TimeoutError, LabError, ValueError):
                return node, None

        nodes = await asyncio.to_thread(self._running_nodes)
        answers = await asyncio.gather(*(one(node) for node in nodes))
        return {node: state for node, state in answers if isinstance(state, dict)}

    # -- faults ---------------------------------------------------------------------------

    async def cut(self, links: Sequence[str], mode: str) -> None:
        await self.faults.cut(links, mode)

    async def heal(self, links: Sequence[str] | None) -> None:
        await self.faults.heal(links)

    async def partition(self, dc_a: str, dc_b: str, mode: str) -> list[str]:
        return await self.faults.partition(dc_a, dc_b, mode=mode)

    async def service_fault(self, verb: str, service: str) -> None:
        faults = self.faults
        if verb == "start":
            await faults.start(service, _quiet)
            return
        operations = {
            "kill": faults.kill,
            "pause": faults.pause,
            "resume": faults.resume,
            "stop": faults.stop,
        }
        if verb not in operations:
            raise LabError(f"unknown service fault {verb}")
        await operations[verb](service)

    async def revert(self) -> list[str]:
        """Undo every fault (``LabFaults.restore``). Nothing to undo when the lab never came up."""
        if self._http is None:
            return []
        return await self.faults.restore(_quiet)


def _quiet(_line: str) -> None:
    """Progress nobody reads: a run reports its steps, not the engine's."""


def _option(command: Sequence[str], flag: str) -> str | None:
    return next((command[i + 1] for i in range(len(command) - 1) if command[i] == flag), None)


def _registrar_first(command: list[str], node: str) -> list[str]:
    """The softphone's command with registrar ``node=...`` moved before the others."""
    pairs = [(i, command[i + 1]) for i in range(len(command) - 1) if command[i] == "--registrar"]
    if not any(value.startswith(f"{node}=") for _, value in pairs):
        raise LabError(f"the softphone has no registrar {node}")
    ordered = sorted((value for _, value in pairs), key=lambda v: not v.startswith(f"{node}="))
    rest = [arg for i, arg in enumerate(command) if not any(i in (j, j + 1) for j, _ in pairs)]
    return [*rest, *(arg for value in ordered for arg in ("--registrar", value))]


def _drop_links(document: dict[str, Any], service: str) -> None:
    """Remove a left-out service's links, and the link groups left with no member."""
    links = [
        link
        for link in document.get(LINKS_KEY) or []
        if service not in (link.get("from"), link.get("to"))
    ]
    document[LINKS_KEY] = links
    names = [str(link.get("name")) for link in links]
    document[GROUPS_KEY] = [
        group
        for group in document.get(GROUPS_KEY) or []
        if any(name.startswith(f"{group}-") for name in names)
    ]
