"""The JSON edge of the relay: request bodies in, Toxiproxy-shaped objects out.

A proxy is rendered as Toxiproxy renders it, ``{name, listen, upstream, enabled, toxics}``, plus
our fields ``protocol`` (``tcp``/``udp``), ``state`` (``up``/``cut``/``blackhole``) and ``heal_in``
(seconds until a TTL heals the cut, or null); ``enabled`` is false only while the link is cut
(reset). Parsing follows Toxiproxy's defaults (``enabled`` true, ``stream`` downstream; a missing
``listen`` is ``127.0.0.1:0`` here since the lab only binds loopback) and refuses with a precise
``BadRequest`` what Toxiproxy would let through: non-loopback addresses, ill-typed fields.
The service's ``--config`` file is ``{"links": [proxy, ...]}`` or, as Toxiproxy's, ``[proxy, ...]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.links.errors import BAD_BODY, MISSING_FIELD, BadRequest
from emulator.links.link import Link
from emulator.links.model import (
    NAME_PATTERN,
    CutMode,
    LinkSpec,
    LinkState,
    LinkUpdate,
    NewLink,
    Protocol,
)

DEFAULT_LISTEN = "127.0.0.1:0"


def parse_json(text: str, *, empty: Any = None) -> Any:
    """Decode a request body; an empty body is ``empty`` if given, else refused."""
    if not text.strip():
        if empty is not None:
            return empty
        raise BadRequest(f"{BAD_BODY}: empty body, expected JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{BAD_BODY}: {exc}") from None


def parse_new_link(body: Any, *, where: str = "") -> NewLink:
    """A proxy to create (``POST /proxies``, one ``/populate`` item, one config entry)."""
    if not isinstance(body, Mapping):
        raise BadRequest(f"{BAD_BODY}: a proxy must be a JSON object{where}")
    name = body.get("name")
    if not name:
        raise BadRequest(f"{MISSING_FIELD}: name{where}")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise BadRequest(
            f"{BAD_BODY}: proxy name {name!r} must be 1-128 characters without '/' or spaces"
        )
    if not body.get("upstream"):
        raise BadRequest(f"{MISSING_FIELD}: upstream{where}")
    spec = LinkSpec(
        name,
        _endpoint(body.get("listen") or DEFAULT_LISTEN, "listen"),
        _endpoint(body["upstream"], "upstream"),
        _protocol(body.get("protocol", Protocol.TCP)),
    )
    return NewLink(spec, _boolean(body.get("enabled", True), "enabled"))


def parse_link_update(body: Any) -> LinkUpdate:
    """``POST /proxies/{name}``: only the fields given change."""
    if not isinstance(body, Mapping):
        raise BadRequest(f"{BAD_BODY}: a proxy update must be a JSON object")
    listen = body.get("listen")
    upstream = body.get("upstream")
    protocol = body.get("protocol")
    enabled = body.get("enabled")
    return LinkUpdate(
        listen=_endpoint(listen, "listen") if listen else None,
        upstream=_endpoint(upstream, "upstream") if upstream else None,
        protocol=_protocol(protocol) if protocol is not None else None,
        enabled=_boolean(enabled, "enabled") if enabled is not None else None,
    )


def parse_populate(body: Any) -> list[NewLink]:
    if not isinstance(body, list):
        raise BadRequest(f"{BAD_BODY}: populate expects a JSON array of proxies")
    return [parse_new_link(item, where=f" at proxy {index}") for index, item in enumerate(body, 1)]


def parse_config(body: Any) -> list[NewLink]:
    if isinstance(body, Mapping):
        if set(body) - {"links"}:
            raise BadRequest(f"config: unknown keys {sorted(set(body) - {'links'})}")
        body = body.get("links", [])
    return parse_populate(body)


def parse_cut(body: Any) -> tuple[CutMode, float | None]:
    """``POST /proxies/{name}/cut``: ``{"mode": "reset"|"blackhole", "ttl": seconds}``."""
    check_fields(body, "a cut", ("mode", "ttl"))
    try:
        mode = CutMode(body.get("mode", CutMode.RESET))
    except ValueError:
        raise BadRequest(f"{BAD_BODY}: 'mode' must be 'reset' or 'blackhole'") from None
    return mode, parse_ttl(body.get("ttl"))


def parse_group_cut(body: Any) -> tuple[list[str], CutMode, float | None]:
    """``POST /cut``: ``{"proxies": [name, ...], "mode": ..., "ttl": ...}``."""
    check_fields(body, "a cut", ("proxies", "mode", "ttl"))
    mode, ttl = parse_cut({key: value for key, value in body.items() if key != "proxies"})
    return _names(body.get("proxies")), mode, ttl


def parse_heal(body: Any) -> list[str] | None:
    """``POST /heal``: ``{"proxies": [name, ...]}``, or no body (``None``) for every proxy."""
    check_fields(body, "a heal", ("proxies",))
    return None if body.get("proxies") is None else _names(body["proxies"])


def _names(value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(name, str) and name for name in value)
    ):
        raise BadRequest(f"{BAD_BODY}: 'proxies' must be a non-empty list of proxy names")
    return list(value)


def check_fields(body: Any, what: str, fields: tuple[str, ...]) -> None:
    if not isinstance(body, Mapping):
        raise BadRequest(f"{BAD_BODY}: {what} must be a JSON object")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        valid = ", ".join(fields)
        raise BadRequest(f"{BAD_BODY}: unknown field {unknown[0]!r} in {what} (valid: {valid})")


def parse_ttl(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise BadRequest(f"{BAD_BODY}: 'ttl' must be a positive number of seconds, got {value!r}")
    return float(value)


def proxy_json(link: Link, heal_in: float | None) -> dict[str, Any]:
    return {
        "name": link.name,
        "listen": str(link.spec.listen),
        "upstream": str(link.spec.upstream),
        "enabled": link.state is not LinkState.CUT,
        "toxics": [toxic.to_json() for toxic in link.toxics],
        "protocol": str(link.spec.protocol),
        "state": str(link.state),
        "heal_in": None if heal_in is None else round(heal_in, 3),
    }


def _endpoint(value: Any, field: str) -> Endpoint:
    if not isinstance(value, str):
        raise BadRequest(f"{BAD_BODY}: '{field}' must be a \"host:port\" string")
    try:
        endpoint = parse_endpoint(value, loopback_only=True)
    except ValueError as exc:
        raise BadRequest(f"invalid {field}: {exc}") from None
    if field == "upstream" and endpoint.port == 0:
        raise BadRequest(f"invalid upstream: {value!r} has port 0")
    return endpoint


def _protocol(value: Any) -> Protocol:
    try:
        return Protocol(value)
    except ValueError:
        raise BadRequest(f"{BAD_BODY}: 'protocol' must be 'tcp' or 'udp', got {value!r}") from None


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{BAD_BODY}: '{field}' must be true or false, got {value!r}")
    return value
