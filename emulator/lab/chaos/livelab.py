"""The running lab as a chaos run reaches it: its proxies, phones and nodes, over HTTP.

Everything goes through the lab's real interfaces: the DC proxies (where the desktops log on),
the PSTN gateway's and phones' control APIs (customers' calls, what the phones measured), the SIP
nodes' control ``GET /state`` (ownership and calls, as ``drlab status`` reads them).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from emulator.lab.engine.protocol import Engine
from emulator.lab.errors import LabError
from emulator.lab.topology import Topology

HTTP_TIMEOUT = 5.0
PHONE_KINDS = ("pstn", "softphone")


def proxy_url(topology: Topology, dc: str) -> str:
    """Where the desktops of ``dc`` log on: its sticky proxy."""
    for spec in topology.of_kind("proxy"):
        if spec.dc == dc:
            return f"http://{spec.option('--listen')}"
    raise LabError(f"no proxy in {dc}")


class LiveLab:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.topology = engine.topology
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LiveLab:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- where things are -----------------------------------------------------------------

    def proxy_url(self, dc: str) -> str:
        return proxy_url(self.topology, dc)

    def control(self, service: str) -> str:
        """A SIP node's control endpoint, or a phone's API (its ``http`` endpoint)."""
        endpoints = self.engine.endpoints(service)
        endpoint = endpoints.get("control") or endpoints.get("http")
        if not endpoint:
            raise LabError(f"{service} has no control endpoint (is it running?)")
        return f"http://{endpoint}"

    def pstn(self) -> str:
        spec = next(iter(self.topology.of_kind("pstn")), None)
        if spec is None:
            raise LabError("the lab has no PSTN gateway: chaos --workload needs one for calls")
        return spec.name

    def phones(self) -> list[str]:
        return sorted(s.name for s in self.topology.services.values() if s.kind in PHONE_KINDS)

    def sip_nodes(self) -> list[str]:
        return sorted(spec.name for spec in self.topology.of_kind("sipcluster"))

    # -- HTTP -----------------------------------------------------------------------------

    async def get_json(self, url: str) -> Any:
        """The JSON ``url`` answers; ``LabError`` when it does not answer or not in JSON."""
        assert self._http is not None, "use LiveLab as an async context manager"
        try:
            async with self._http.get(url) as response:
                return await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise LabError(f"GET {url}: {exc or type(exc).__name__}") from exc

    async def post_json(self, url: str, body: Any = None) -> tuple[int, Any]:
        """The status and JSON body of the answer; ``LabError`` when there is none."""
        assert self._http is not None, "use LiveLab as an async context manager"
        try:
            async with self._http.post(url, json=body) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = {"error": await response.text()}
                return response.status, data
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise LabError(f"POST {url}: {exc or type(exc).__name__}") from exc

    async def node_states(self) -> dict[str, dict[str, Any]]:
        """``GET /state`` of every running SIP node (one that does not answer is left out)."""

        async def one(node: str) -> tuple[str, Any]:
            try:
                return node, await self.get_json(f"{self.control(node)}/state")
            except LabError:
                return node, None

        running = [n for n in self.sip_nodes() if self.engine.service_state(n) == "running"]
        answers = await asyncio.gather(*(one(node) for node in running))
        return {node: state for node, state in answers if isinstance(state, dict)}

    async def phone_calls(self, phone: str) -> list[dict[str, Any]]:
        """The phone's calls (``GET /calls``), or [] when it does not answer."""
        try:
            answer = await self.get_json(f"{self.control(phone)}/calls")
        except LabError:
            return []
        calls = answer.get("calls") if isinstance(answer, dict) else None
        return [call for call in calls or [] if isinstance(call, dict)]
