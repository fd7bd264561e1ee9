"""The HTTP API with a plain aiohttp client: Toxiproxy's exact shapes, codes and error bodies."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator.links.service import LinksService
from tests.links.conftest import Upstream, read_all, roundtrip
from tests.support import eventually

PROXY_KEYS = {"name", "listen", "upstream", "enabled", "toxics", "protocol", "state", "heal_in"}


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(
        self, method: str, path: str, body: Any = None, *, raw: str | None = None
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with self.session.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            if not text:
                return response.status, None
            assert response.content_type == "application/json", text
            return response.status, await response.json()

    async def state(self) -> Any:
        return (await self.call("GET", "/proxies"))[1]


@pytest.fixture
async def api(service: LinksService) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://{service.api}")


async def create(api: Api, upstream: Upstream, name: str = "gws1-sip1", **extra: Any) -> Any:
    body = {"name": name, "listen": "127.0.0.1:0", "upstream": str(upstream.endpoint), **extra}
    status, proxy = await api.call("POST", "/proxies", body)
    assert status == 201, proxy
    return proxy


async def open_to(proxy: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = proxy["listen"].rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def test_version_answers_like_toxiproxy(api: Api) -> None:
    assert await api.call("GET", "/version") == (200, {"version": "2.12.0-drlab"})


async def test_create_show_and_list_use_toxiproxys_proxy_shape(
    api: Api, upstream: Upstream
) -> None:
    proxy = await create(api, upstream)
    assert set(proxy) == PROXY_KEYS
    assert proxy["name"] == "gws1-sip1"
    assert proxy["listen"].startswith("127.0.0.1:") and not proxy["listen"].endswith(":0")
    assert proxy["upstream"] == str(upstream.endpoint)
    assert (proxy["enabled"], proxy["toxics"], proxy["protocol"], proxy["state"]) == (
        True,
        [],
        "tcp",
        "up",
    )
    assert await api.call("GET", "/proxies/gws1-sip1") == (200, proxy)
    assert await api.state() == {"gws1-sip1": proxy}
    reader, writer = await open_to(proxy)
    assert await roundtrip(reader, writer, b"through the api") == b"through the api"
    writer.close()


async def test_unknown_proxy_is_404_with_toxiproxys_error_body(api: Api) -> None:
    missing = (404, {"error": "proxy not found", "status": 404})
    assert await api.call("GET", "/proxies/nope") == missing
    assert await api.call("DELETE", "/proxies/nope") == missing
    assert await api.call("POST", "/proxies/nope", {"enabled": False}) == missing
    assert await api.call("GET", "/proxies/nope/toxics") == missing
    assert await api.call("POST", "/proxies/nope/toxics", {"type": "latency"}) == missing
    assert await api.call("POST", "/proxies/nope/cut", {}) == missing
    assert await api.call("GET", "/proxies/nope/connections") == missing


async def test_creating_an_existing_name_is_409_and_changes_nothing(
    api: Api, upstream: Upstream
) -> None:
    proxy = await create(api, upstream)
    status, body = await api.call(
        "POST", "/proxies", {"name": "gws1-sip1", "upstream": "127.0.0.1:9"}
    )
    assert (status, body) == (409, {"error": "proxy already exists", "status": 409})
    assert await api.state() == {"gws1-sip1": proxy}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "bad request body: Expecting property name"),
        ("", "bad request body: empty body"),
        ("[1]", "bad request body: a proxy must be a JSON object"),
        ('{"upstream": "127.0.0.1:9"}', "missing required field: name"),
        ('{"name": "x"}', "missing required field: upstream"),
        ('{"name": "x", "upstream": "10.0.0.1:80"}', "invalid upstream"),
        ('{"name": "x", "upstream": "127.0.0.1:9", "listen": "0.0.0.0:0"}', "invalid listen"),
        ('{"name": "x", "upstream": "127.0.0.1:9", "listen": "8.8.8.8:53"}', "loopback"),
        ('{"name": "x", "upstream": "127.0.0.1:9", "enabled": "yes"}', "'enabled' must be"),
        ('{"name": "x", "upstream": "127.0.0.1:9", "protocol": "sctp"}', "'protocol' must be"),
        ('{"name": "a/b", "upstream": "127.0.0.1:9"}', "without '/'"),
    ],
)
async def test_bad_proxy_bodies_are_400_with_a_precise_message(
    api: Api, raw: str, message: str
) -> None:
    status, body = await api.call("POST", "/proxies", raw=raw)
    assert status == 400 and body["status"] == 400
    assert message in body["error"]
    assert await api.state() == {}


async def test_a_taken_listen_port_is_409_and_changes_nothing(api: Api, upstream: Upstream) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    try:
        status, body = await api.call(
            "POST",
            "/proxies",
            {"name": "x", "listen": f"127.0.0.1:{port}", "upstream": str(upstream.endpoint)},
        )
    finally:
        squatter.close()
    assert status == 409 and "address already in use" in body["error"]
    assert await api.state() == {}


async def test_the_port_of_a_cut_link_is_not_given_to_another(api: Api, upstream: Upstream) -> None:
    proxy = await create(api, upstream, enabled=False)
    assert proxy["state"] == "cut"
    status, body = await api.call(
        "POST", "/proxies", {"name": "other", "listen": proxy["listen"], "upstream": "127.0.0.1:9"}
    )
    assert status == 409 and "taken by proxy gws1-sip1" in body["error"]


async def test_enabled_false_cuts_with_reset_and_true_heals(api: Api, upstream: Upstream) -> None:
    proxy = await create(api, upstream)
    reader, writer = await open_to(proxy)
    await roundtrip(reader, writer, b"x")
    status, body = await api.call("POST", "/proxies/gws1-sip1", {"enabled": False})
    assert status == 200 and (body["enabled"], body["state"]) == (False, "cut")
    assert await read_all(reader) == b""
    with pytest.raises(ConnectionRefusedError):
        await open_to(proxy)
    status, body = await api.call("PATCH", "/proxies/gws1-sip1", {"enabled": True})
    assert status == 200 and (body["enabled"], body["state"]) == (True, "up")
    reader, writer = await open_to(body)
    assert await roundtrip(reader, writer, b"y") == b"y"
    writer.close()


async def test_changing_the_upstream_restarts_the_proxy_on_the_same_port(
    api: Api, upstream: Upstream
) -> None:
    proxy = await create(api, upstream)
    reader, writer = await open_to(proxy)
    await roundtrip(reader, writer, b"x")
    other = await Upstream().start()
    try:
        status, body = await api.call(
            "POST", "/proxies/gws1-sip1", {"upstream": str(other.endpoint)}
        )
        assert status == 200
        assert (body["listen"], body["upstream"]) == (proxy["listen"], str(other.endpoint))
        assert await read_all(reader) == b""
        reader, writer = await open_to(body)
        await roundtrip(reader, writer, b"to the other")
        assert bytes(other.received[0]) == b"to the other"
        writer.close()
    finally:
        await other.stop()


async def test_toxic_lifecycle_with_toxiproxys_shapes(api: Api, upstream: Upstream) -> None:
    await create(api, upstream)
    latency = {
        "name": "lag",
        "type": "latency",
        "stream": "upstream",
        "toxicity": 1.0,
        "attributes": {"latency": 50, "jitter": 5},
    }
    assert await api.call("POST", "/proxies/gws1-sip1/toxics", latency) == (200, latency)
    assert await api.call("GET", "/proxies/gws1-sip1/toxics") == (200, [latency])
    assert await api.call("GET", "/proxies/gws1-sip1/toxics/lag") == (200, latency)
    assert (await api.call("GET", "/proxies/gws1-sip1"))[1]["toxics"] == [latency]
    assert await api.call("POST", "/proxies/gws1-sip1/toxics", latency) == (
        409,
        {"error": "toxic already exists", "status": 409},
    )
    status, updated = await api.call(
        "POST", "/proxies/gws1-sip1/toxics/lag", {"attributes": {"latency": 80}}
    )
    assert status == 200 and updated["attributes"] == {"latency": 80, "jitter": 5}
    assert await api.call("DELETE", "/proxies/gws1-sip1/toxics/lag") == (204, None)
    assert await api.call("DELETE", "/proxies/gws1-sip1/toxics/lag") == (
        404,
        {"error": "toxic not found", "status": 404},
    )


@pytest.mark.parametrize(
    ("toxic", "message"),
    [
        ({"type": "latency"}, "missing required field: attribute 'latency'"),
        ({"type": "latency", "attributes": {"latency": -1}}, "must be >= 0, got -1"),
        ({"type": "bandwidth", "attributes": {"rate": -10}}, "must be >= 0, got -10"),
        ({"type": "limit_data", "attributes": {"bytes": "10"}}, "must be an integer"),
        ({"type": "slow", "attributes": {}}, "invalid toxic type"),
        ({"type": "timeout", "stream": "both", "attributes": {"timeout": 1}}, "stream was invalid"),
        ({"type": "timeout", "attributes": {"timeout": 1}, "ttl": -3}, "'ttl' must be a positive"),
    ],
)
async def test_bad_toxics_are_400_and_leave_the_toxics_unchanged(
    api: Api, upstream: Upstream, toxic: dict[str, Any], message: str
) -> None:
    await create(api, upstream)
    status, body = await api.call("POST", "/proxies/gws1-sip1/toxics", toxic)
    assert status == 400 and body["status"] == 400
    assert message in body["error"]
    assert await api.call("GET", "/proxies/gws1-sip1/toxics") == (200, [])


async def test_slicer_is_refused_on_a_udp_link(api: Api, upstream: Upstream) -> None:
    await create(api, upstream, protocol="udp")
    status, body = await api.call(
        "POST", "/proxies/gws1-sip1/toxics", {"type": "slicer", "attributes": {"average_size": 8}}
    )
    assert status == 400 and "udp" in body["error"]


async def test_reset_enables_every_proxy_and_removes_every_toxic(
    api: Api, upstream: Upstream
) -> None:
    await create(api, upstream, name="a")
    await create(api, upstream, name="b")
    await api.call("POST", "/proxies/a", {"enabled": False})
    await api.call("POST", "/proxies/b/cut", {"mode": "blackhole"})
    await api.call("POST", "/proxies/b/toxics", {"type": "latency", "attributes": {"latency": 5}})
    assert await api.call("POST", "/reset") == (204, None)
    proxies = await api.state()
    assert {(p["enabled"], p["state"], len(p["toxics"])) for p in proxies.values()} == {
        (True, "up", 0)
    }


async def test_populate_creates_keeps_unchanged_and_replaces_changed(
    api: Api, upstream: Upstream
) -> None:
    items = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": str(upstream.endpoint)},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": str(upstream.endpoint)},
    ]
    status, body = await api.call("POST", "/populate", items)
    assert status == 201 and [p["name"] for p in body["proxies"]] == ["a", "b"]
    first = {p["name"]: p for p in body["proxies"]}
    await api.call("POST", "/proxies/a/toxics", {"type": "latency", "attributes": {"latency": 5}})

    status, body = await api.call("POST", "/populate", items)
    assert status == 201
    again = {p["name"]: p for p in body["proxies"]}
    assert again["a"]["listen"] == first["a"]["listen"] and len(again["a"]["toxics"]) == 1

    items[0]["upstream"] = "127.0.0.1:9"
    status, body = await api.call("POST", "/populate", items)
    replaced = {p["name"]: p for p in body["proxies"]}
    assert replaced["a"]["upstream"] == "127.0.0.1:9" and replaced["a"]["toxics"] == []
    assert replaced["b"] == again["b"]


async def test_a_bad_populate_changes_nothing(api: Api, upstream: Upstream) -> None:
    await create(api, upstream, name="a")
    before = await api.state()
    items = [
        {"name": "new", "upstream": str(upstream.endpoint)},
        {"name": "broken", "listen": "127.0.0.1:0"},
    ]
    status, body = await api.call("POST", "/populate", items)
    assert (status, body) == (
        400,
        {"error": "missing required field: upstream at proxy 2", "status": 400, "proxies": []},
    )
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    items[1] = {
        "name": "broken",
        "listen": f"127.0.0.1:{squatter.getsockname()[1]}",
        "upstream": str(upstream.endpoint),
    }
    try:
        status, body = await api.call("POST", "/populate", items)
    finally:
        squatter.close()
    assert status == 409 and body["proxies"] == []
    assert await api.state() == before


async def test_cut_extension_with_mode_and_ttl_then_heal(api: Api, upstream: Upstream) -> None:
    await create(api, upstream)
    status, body = await api.call(
        "POST", "/proxies/gws1-sip1/cut", {"mode": "blackhole", "ttl": 30}
    )
    assert status == 200 and (body["state"], body["enabled"]) == ("blackhole", True)
    assert 0 < body["heal_in"] <= 3.0  # 30 s x time scale 0.1
    status, body = await api.call("POST", "/proxies/gws1-sip1/heal")
    assert status == 200 and (body["state"], body["heal_in"]) == ("up", None)
    await api.call("POST", "/proxies/gws1-sip1/cut", None)
    assert (await api.call("GET", "/proxies/gws1-sip1"))[1]["state"] == "cut"
    assert await api.call("POST", "/heal") == (204, None)
    assert await api.call("GET", "/health") == (200, {"status": "ok", "links": {"gws1-sip1": "up"}})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "explode"}, "'mode' must be 'reset' or 'blackhole'"),
        ({"mode": "reset", "ttl": 0}, "'ttl' must be a positive number"),
        ({"mode": "reset", "ttl": "5"}, "'ttl' must be a positive number"),
        ({"mdoe": "reset"}, "unknown field 'mdoe'"),
    ],
)
async def test_bad_cuts_are_400_and_leave_the_link_up(
    api: Api, upstream: Upstream, body: dict[str, Any], message: str
) -> None:
    await create(api, upstream)
    status, answer = await api.call("POST", "/proxies/gws1-sip1/cut", body)
    assert status == 400 and message in answer["error"]
    assert (await api.call("GET", "/proxies/gws1-sip1"))[1]["state"] == "up"


async def test_connections_are_listed_and_one_can_be_cut(api: Api, upstream: Upstream) -> None:
    proxy = await create(api, upstream)
    first = await open_to(proxy)
    second = await open_to(proxy)
    await roundtrip(*first, b"12345")
    await roundtrip(*second, b"6")
    status, conns = await api.call("GET", "/proxies/gws1-sip1/connections")
    assert status == 200 and len(conns) == 2
    assert set(conns[0]) == {
        "id",
        "client",
        "protocol",
        "bytes_upstream",
        "bytes_downstream",
        "age",
        "connected",
    }
    target = next(conn for conn in conns if conn["bytes_upstream"] == 5)
    assert await api.call("DELETE", f"/proxies/gws1-sip1/connections/{target['id']}") == (204, None)
    assert await read_all(first[0]) == b""
    assert await roundtrip(*second, b"7") == b"7"
    await eventually(lambda: len(upstream.received) == 2 and upstream.closed[0], timeout=8)
    status, body = await api.call("DELETE", "/proxies/gws1-sip1/connections/x")
    assert status == 400 and "connection id" in body["error"]
    status, body = await api.call("DELETE", "/proxies/gws1-sip1/connections/99")
    assert status == 404
    first[1].close()
    second[1].close()


async def test_unknown_routes_and_methods_answer_json_errors(api: Api) -> None:
    assert await api.call("GET", "/nothing") == (404, {"error": "not found", "status": 404})
    assert await api.call("PUT", "/proxies") == (
        405,
        {"error": "method not allowed", "status": 405},
    )


async def test_delete_removes_the_proxy_and_frees_its_port(api: Api, upstream: Upstream) -> None:
    proxy = await create(api, upstream)
    assert await api.call("DELETE", "/proxies/gws1-sip1") == (204, None)
    assert await api.state() == {}
    with pytest.raises(ConnectionRefusedError):
        await open_to(proxy)
    again = await create(api, upstream, listen=proxy["listen"])
    assert again["listen"] == proxy["listen"]


async def test_a_group_cut_cuts_every_named_link_at_once_or_none(
    api: Api, upstream: Upstream
) -> None:
    for name in ("sip1-sip3", "sip1-sip4", "sip1-sip2"):
        await create(api, upstream, name=name)
    status, body = await api.call(
        "POST", "/cut", {"proxies": ["sip1-sip3", "nope"], "mode": "reset"}
    )
    assert (status, body) == (404, {"error": "proxy not found: nope", "status": 404})
    assert {p["state"] for p in (await api.state()).values()} == {"up"}

    crossing = ["sip1-sip3", "sip1-sip4"]
    status, body = await api.call(
        "POST", "/cut", {"proxies": crossing, "mode": "blackhole", "ttl": 50}
    )
    assert status == 200 and [p["name"] for p in body["proxies"]] == crossing
    states = {name: p["state"] for name, p in (await api.state()).items()}
    assert states == {"sip1-sip3": "blackhole", "sip1-sip4": "blackhole", "sip1-sip2": "up"}

    status, body = await api.call("POST", "/heal", {"proxies": ["sip1-sip3"]})
    assert status == 200 and [p["state"] for p in body["proxies"]] == ["up"]
    assert (await api.call("GET", "/proxies/sip1-sip4"))[1]["state"] == "blackhole"
    bad_cuts: list[dict[str, Any]] = [{"proxies": []}, {"proxies": "x"}, {"mode": "reset"}]
    for bad in bad_cuts:
        status, body = await api.call("POST", "/cut", bad)
        assert status == 400 and "'proxies' must be a non-empty list" in body["error"]
