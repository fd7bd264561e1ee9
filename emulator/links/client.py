"""A typed asyncio client of the relay's API, for the lab CLI, scenarios and tests.

Speaks the Toxiproxy-compatible routes and our extensions (``api.py``); answers are decoded into
frozen dataclasses (``ProxyInfo``, ``ToxicSpec``, ``ConnectionInfo``) and an error answer raises
the relay's own exception for its status (``NotFound``, ``Conflict``, ``BadRequest``) carrying the
server's message; an unreachable relay raises ``Unavailable``.

    async with LinksClient("127.0.0.1:8474") as links:
        await links.cut("gws1-sip1", mode="blackhole", ttl=30)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import aiohttp

from emulator.common.addresses import Endpoint
from emulator.links.errors import BadRequest, Conflict, LinksError, NotFound, Unavailable
from emulator.links.flow import ConnectionInfo
from emulator.links.model import CutMode, LinkState, Protocol
from emulator.links.toxics import ToxicSpec, parse_toxic, toxic_request

_ERRORS: dict[int, type[LinksError]] = {400: BadRequest, 404: NotFound, 409: Conflict}


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool
    protocol: Protocol
    state: LinkState
    heal_in: float | None
    toxics: tuple[ToxicSpec, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        heal_in = data.get("heal_in")
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data["enabled"]),
            protocol=Protocol(data.get("protocol", Protocol.TCP)),
            state=LinkState(data.get("state", LinkState.UP if data["enabled"] else LinkState.CUT)),
            heal_in=None if heal_in is None else float(heal_in),
            toxics=tuple(parse_toxic(toxic) for toxic in data.get("toxics", [])),
        )


class LinksClient:
    def __init__(
        self,
        api: str | Endpoint = "127.0.0.1:8474",
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        text = str(api)
        self.base_url = text if text.startswith("http") else f"http://{text}"
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def version(self) -> str:
        return str((await self._call("GET", "/version"))["version"])

    async def health(self) -> dict[str, LinkState]:
        links = (await self._call("GET", "/health"))["links"]
        return {name: LinkState(state) for name, state in links.items()}

    async def list(self) -> dict[str, ProxyInfo]:
        proxies = await self._call("GET", "/proxies")
        return {name: ProxyInfo.from_json(proxy) for name, proxy in proxies.items()}

    async def get(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(await self._call("GET", f"/proxies/{name}"))

    async def create(
        self,
        name: str,
        upstream: str | Endpoint,
        listen: str | Endpoint = "127.0.0.1:0",
        *,
        protocol: Protocol | str = Protocol.TCP,
        enabled: bool = True,
    ) -> ProxyInfo:
        body = {
            "name": name,
            "listen": str(listen),
            "upstream": str(upstream),
            "protocol": str(protocol),
            "enabled": enabled,
        }
        return ProxyInfo.from_json(await self._call("POST", "/proxies", body))

    async def populate(self, proxies: Sequence[Mapping[str, Any]]) -> tuple[ProxyInfo, ...]:
        answer = await self._call("POST", "/populate", [dict(proxy) for proxy in proxies])
        return tuple(ProxyInfo.from_json(proxy) for proxy in answer["proxies"])

    async def delete(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{name}")

    async def set_enabled(self, name: str, enabled: bool) -> ProxyInfo:
        return ProxyInfo.from_json(
            await self._call("POST", f"/proxies/{name}", {"enabled": enabled})
        )

    async def cut(
        self, name: str, mode: CutMode | str = CutMode.RESET, ttl: float | None = None
    ) -> ProxyInfo:
        body: dict[str, Any] = {"mode": str(mode)}
        if ttl is not None:
            body["ttl"] = ttl
        return ProxyInfo.from_json(await self._call("POST", f"/proxies/{name}/cut", body))

    async def heal(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(await self._call("POST", f"/proxies/{name}/heal"))

    async def cut_many(
        self, names: Sequence[str], mode: CutMode | str = CutMode.RESET, ttl: float | None = None
    ) -> tuple[ProxyInfo, ...]:
        """Cut several links at one instant (a partition); an unknown name cuts none."""
        body: dict[str, Any] = {"proxies": [*names], "mode": str(mode)}
        if ttl is not None:
            body["ttl"] = ttl
        answer = await self._call("POST", "/cut", body)
        return tuple(ProxyInfo.from_json(proxy) for proxy in answer["proxies"])

    async def heal_many(self, names: Sequence[str]) -> tuple[ProxyInfo, ...]:
        answer = await self._call("POST", "/heal", {"proxies": [*names]})
        return tuple(ProxyInfo.from_json(proxy) for proxy in answer["proxies"])

    async def heal_all(self) -> None:
        await self._call("POST", "/heal")

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def toxics(self, name: str) -> tuple[ToxicSpec, ...]:
        answer = await self._call("GET", f"/proxies/{name}/toxics")
        return tuple(parse_toxic(toxic) for toxic in answer)

    async def add_toxic(
        self,
        name: str,
        type: str,
        attributes: Mapping[str, int],
        *,
        toxic_name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        ttl: float | None = None,
    ) -> ToxicSpec:
        body = toxic_request(
            type, attributes, name=toxic_name, stream=stream, toxicity=toxicity, ttl=ttl
        )
        return parse_toxic(await self._call("POST", f"/proxies/{name}/toxics", body))

    async def update_toxic(
        self,
        name: str,
        toxic_name: str,
        *,
        attributes: Mapping[str, int] | None = None,
        toxicity: float | None = None,
    ) -> ToxicSpec:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        return parse_toxic(await self._call("POST", f"/proxies/{name}/toxics/{toxic_name}", body))

    async def remove_toxic(self, name: str, toxic_name: str) -> None:
        await self._call("DELETE", f"/proxies/{name}/toxics/{toxic_name}")

    async def connections(self, name: str) -> tuple[ConnectionInfo, ...]:
        answer = await self._call("GET", f"/proxies/{name}/connections")
        return tuple(ConnectionInfo.from_json(conn) for conn in answer)

    async def cut_connection(self, name: str, conn_id: int) -> None:
        await self._call("DELETE", f"/proxies/{name}/connections/{conn_id}")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(method, self.base_url + path, json=body) as response:
                if response.status == 204:
                    return None
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
                if response.status >= 400:
                    message = answer.get("error") if isinstance(answer, dict) else None
                    error = _ERRORS.get(response.status, LinksError)
                    raise error(str(message or f"HTTP {response.status} from {path}"))
                return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"links API {self.base_url}: {exc or type(exc).__name__}") from None
