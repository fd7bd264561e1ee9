"""The relay's HTTP API: Toxiproxy's (api.go) routes, shapes and status codes, plus our faults.

Toxiproxy-compatible, so unchanged Toxiproxy clients drive the relay:

- ``GET /version`` -> ``{"version": "2.12.0-drlab"}``
- ``GET /proxies`` -> ``{name: proxy}``; ``POST /proxies`` -> 201 proxy (409 exists, 400 bad)
- ``POST /populate`` with ``[proxy, ...]`` -> 201 ``{"proxies": [...]}``
- ``GET|POST|PATCH|DELETE /proxies/{name}`` (``{"enabled": false}`` cuts with mode reset,
  ``true`` heals); ``DELETE`` -> 204
- ``GET|POST /proxies/{name}/toxics``; ``GET|POST|PATCH|DELETE /proxies/{name}/toxics/{toxic}``
  (creating a toxic answers 200 with the toxic, exactly as Toxiproxy does)
- ``POST /reset`` -> 204: every proxy enabled, every toxic removed

Errors are ``{"error": message, "status": code}`` with Toxiproxy's messages where it has one.

Our extensions (UDP and blackhole are not in Toxiproxy):

- proxy fields ``protocol`` (``tcp``|``udp``, on create), ``state`` and ``heal_in`` (read only)
- ``POST /proxies/{name}/cut`` ``{"mode": "reset"|"blackhole", "ttl": seconds}`` -> 200 proxy;
  a TTL heals by itself after ``ttl`` x the service's ``--time-scale``
- ``POST /proxies/{name}/heal`` -> 200 proxy
- ``POST /cut`` ``{"proxies": [name, ...], "mode": ..., "ttl": ...}`` -> 200 ``{"proxies": [...]}``:
  several links cut at one instant (a partition); an unknown name -> 404 and nothing is cut
- ``POST /heal`` -> 204, every link healed (toxics kept); with ``{"proxies": [name, ...]}`` only
  those, answered 200 ``{"proxies": [...]}``
- ``"ttl"`` on a toxic create: the toxic removes itself after that many (scaled) seconds
- ``GET /proxies/{name}/connections`` -> ``[{id, client, protocol, bytes_upstream,
  bytes_downstream, age, connected}]``; ``DELETE /proxies/{name}/connections/{id}`` -> 204 (RST)
- ``GET /health`` -> ``{"status": "ok", "links": {name: state}}``
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from emulator.links.errors import BadRequest, LinksError
from emulator.links.relay import Relay
from emulator.links.schema import (
    parse_cut,
    parse_group_cut,
    parse_heal,
    parse_json,
    parse_link_update,
    parse_new_link,
    parse_populate,
    parse_ttl,
    proxy_json,
)
from emulator.links.toxics import parse_toxic

TOXIPROXY_VERSION = "2.12.0-drlab"

RELAY_KEY = web.AppKey("relay", Relay)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(relay: Relay) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[RELAY_KEY] = relay
    app.add_routes(
        [
            web.get("/version", _version),
            web.get("/health", _health),
            web.post("/reset", _reset),
            web.post("/cut", _cut_group),
            web.post("/heal", _heal_group),
            web.post("/populate", _populate),
            web.get("/proxies", _proxies),
            web.post("/proxies", _create),
            web.get("/proxies/{name}", _show),
            web.post("/proxies/{name}", _update),
            web.patch("/proxies/{name}", _update),
            web.delete("/proxies/{name}", _delete),
            web.post("/proxies/{name}/cut", _cut),
            web.post("/proxies/{name}/heal", _heal),
            web.get("/proxies/{name}/connections", _connections),
            web.delete("/proxies/{name}/connections/{conn}", _cut_connection),
            web.get("/proxies/{name}/toxics", _toxics),
            web.post("/proxies/{name}/toxics", _add_toxic),
            web.get("/proxies/{name}/toxics/{toxic}", _show_toxic),
            web.post("/proxies/{name}/toxics/{toxic}", _update_toxic),
            web.patch("/proxies/{name}/toxics/{toxic}", _update_toxic),
            web.delete("/proxies/{name}/toxics/{toxic}", _remove_toxic),
        ]
    )
    return app


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except LinksError as exc:
        return _error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason.lower())


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, "status": status, **extra}, status=status)


def _relay(request: web.Request) -> Relay:
    return request.app[RELAY_KEY]


def _proxy(request: web.Request, name: str) -> dict[str, Any]:
    relay = _relay(request)
    return proxy_json(relay.get(name), relay.heal_in(name))


async def _body(request: web.Request, *, empty: Any = None) -> Any:
    return parse_json(await request.text(), empty=empty)


async def _version(request: web.Request) -> web.Response:
    return web.json_response({"version": TOXIPROXY_VERSION})


async def _health(request: web.Request) -> web.Response:
    links = {link.name: str(link.state) for link in _relay(request).links()}
    return web.json_response({"status": "ok", "links": links})


async def _reset(request: web.Request) -> web.Response:
    await _relay(request).reset()
    return web.Response(status=204)


async def _cut_group(request: web.Request) -> web.Response:
    names, mode, ttl = parse_group_cut(await _body(request))
    relay = _relay(request)
    links = await relay.cut_many(names, mode, ttl)
    return web.json_response(
        {"proxies": [proxy_json(link, relay.heal_in(link.name)) for link in links]}
    )


async def _heal_group(request: web.Request) -> web.Response:
    names = parse_heal(await _body(request, empty={}))
    relay = _relay(request)
    links = await relay.heal_many(names)
    if names is None:
        return web.Response(status=204)
    return web.json_response({"proxies": [proxy_json(link, None) for link in links]})


async def _populate(request: web.Request) -> web.Response:
    relay = _relay(request)
    try:
        links = await relay.populate(parse_populate(await _body(request)))
    except LinksError as exc:
        return _error(exc.status, exc.message, proxies=[])
    proxies = [proxy_json(link, relay.heal_in(link.name)) for link in links]
    return web.json_response({"proxies": proxies}, status=201)


async def _proxies(request: web.Request) -> web.Response:
    relay = _relay(request)
    return web.json_response(
        {link.name: proxy_json(link, relay.heal_in(link.name)) for link in relay.links()}
    )


async def _create(request: web.Request) -> web.Response:
    link = await _relay(request).create(parse_new_link(await _body(request)))
    return web.json_response(proxy_json(link, None), status=201)


async def _show(request: web.Request) -> web.Response:
    return web.json_response(_proxy(request, request.match_info["name"]))


async def _update(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    _relay(request).get(name)
    await _relay(request).update(name, parse_link_update(await _body(request)))
    return web.json_response(_proxy(request, name))


async def _delete(request: web.Request) -> web.Response:
    await _relay(request).delete(request.match_info["name"])
    return web.Response(status=204)


async def _cut(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    _relay(request).get(name)
    mode, ttl = parse_cut(await _body(request, empty={}))
    await _relay(request).cut(name, mode, ttl)
    return web.json_response(_proxy(request, name))


async def _heal(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await _relay(request).heal(name)
    return web.json_response(_proxy(request, name))


async def _connections(request: web.Request) -> web.Response:
    link = _relay(request).get(request.match_info["name"])
    return web.json_response([conn.to_json() for conn in link.connections()])


async def _cut_connection(request: web.Request) -> web.Response:
    name, text = request.match_info["name"], request.match_info["conn"]
    _relay(request).get(name)
    if not text.isdigit():
        raise BadRequest(f"connection id must be a non-negative integer, got {text!r}")
    await _relay(request).cut_connection(name, int(text))
    return web.Response(status=204)


async def _toxics(request: web.Request) -> web.Response:
    link = _relay(request).get(request.match_info["name"])
    return web.json_response([toxic.to_json() for toxic in link.toxics])


async def _add_toxic(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    _relay(request).get(name)
    body = await _body(request)
    ttl = parse_ttl(body.get("ttl")) if isinstance(body, Mapping) else None
    if isinstance(body, Mapping):
        body = {key: value for key, value in body.items() if key != "ttl"}
    toxic = parse_toxic(body)
    await _relay(request).add_toxic(name, toxic, ttl)
    return web.json_response(toxic.to_json())


async def _show_toxic(request: web.Request) -> web.Response:
    link = _relay(request).get(request.match_info["name"])
    return web.json_response(link.toxic(request.match_info["toxic"]).to_json())


async def _update_toxic(request: web.Request) -> web.Response:
    name, toxic_name = request.match_info["name"], request.match_info["toxic"]
    _relay(request).get(name).toxic(toxic_name)
    toxic = await _relay(request).update_toxic(name, toxic_name, await _body(request))
    return web.json_response(toxic.to_json())


async def _remove_toxic(request: web.Request) -> web.Response:
    await _relay(request).remove_toxic(request.match_info["name"], request.match_info["toxic"])
    return web.Response(status=204)
