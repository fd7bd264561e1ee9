"""``drlab status --json``: the lab's machine-readable map (DESIGN §4).

For each service its name, DC, kind, state, pid and endpoints; for each link of the topology its
name, the two services it joins, its listen and upstream addresses, and — asked of the relay's
API — its state (``up``/``cut``/``blackhole``, ``unknown`` while the relay is not answering),
seconds until a TTL heals it, and its toxics; each link group (``softphone2-dc1``: what
one ``drlab cut`` of that name cuts) with its member links; for each DN its owner as the
cluster reports it (asked of every running SIP node's control endpoint: when nodes disagree,
as during a partition, every view is listed).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

from emulator.lab.engine.protocol import Engine

DEFAULT_API = "127.0.0.1:8474"


def fetch_json(url: str, timeout: float = 1.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def relay_api(engine: Engine) -> str:
    """host:port of the relay's API, as the topology's links service is told to bind it."""
    for spec in engine.topology.of_kind("links"):
        api = spec.option("--api")
        if api:
            return api
    return DEFAULT_API


def relay_proxies(engine: Engine) -> dict[str, Any] | None:
    """The relay's ``GET /proxies``, or None when it does not answer."""
    try:
        proxies = fetch_json(f"http://{relay_api(engine)}/proxies")
    except (OSError, ValueError):
        return None
    return proxies if isinstance(proxies, dict) else None


def lab_status(engine: Engine) -> dict[str, Any]:
    state = engine.load()
    services = []
    for name, spec in engine.topology.services.items():
        entry = state["services"].get(name)
        # Each engine's own view: a container's state for compose, its pid's for embedded.
        service_state = str(entry.get("state", "stopped")) if entry else "stopped"
        services.append(
            {
                "name": name,
                "dc": spec.dc,
                "kind": spec.kind,
                "state": service_state,
                "pid": int(entry["pid"]) if entry and service_state != "stopped" else None,
                "container": entry.get("container") if entry else None,
                "endpoints": entry.get("endpoints", {}) if entry else {},
            }
        )
    return {
        "engine": engine.name,
        "file": str(engine.topology.path),
        "time_scale": state.get("time_scale", 1.0),
        "services": services,
        "links": _links(engine),
        "link_groups": [
            {"name": name, "links": list(members)}
            for name, members in engine.topology.groups.items()
        ],
        "dns": _dn_owners(services),
    }


def _links(engine: Engine) -> list[dict[str, Any]]:
    proxies = relay_proxies(engine) or {}
    links = []
    for link in engine.topology.links.values():
        proxy = proxies.get(link.name, {})
        links.append(
            {
                "name": link.name,
                "services": [link.source, link.target],
                "protocol": link.protocol,
                "listen": str(link.listen),
                "upstream": str(link.upstream),
                "state": proxy.get("state", "unknown"),
                "heal_in": proxy.get("heal_in"),
                "toxics": proxy.get("toxics", []),
            }
        )
    # Links created through the API (e.g. by a Toxiproxy client) are part of the lab too.
    for name, proxy in sorted(proxies.items()):
        if name not in engine.topology.links:
            links.append(
                {
                    "name": name,
                    "services": [],
                    "protocol": proxy.get("protocol", "tcp"),
                    "listen": proxy.get("listen"),
                    "upstream": proxy.get("upstream"),
                    "state": proxy.get("state", "unknown"),
                    "heal_in": proxy.get("heal_in"),
                    "toxics": proxy.get("toxics", []),
                }
            )
    return links


def _dn_owners(services: list[dict[str, Any]]) -> dict[str, Any]:
    """Each DN's owner as the nodes agree on it (their views where they do not), and what its
    owner says of it: the agent's state, its desktops and its calls, each with the node it lives
    on and the media its call node measures."""
    views: dict[str, dict[str, dict[str, Any]]] = {}
    node_states: dict[str, dict[str, Any]] = {}
    for service in services:
        control = service["endpoints"].get("control")
        if service["kind"] != "sipcluster" or service["state"] != "running" or not control:
            continue
        try:
            node_state = fetch_json(f"http://{control}/state")
        except (OSError, ValueError):
            continue
        node_states[service["name"]] = node_state
        for dn, record in node_state.get("ownership", {}).items():
            views.setdefault(dn, {})[service["name"]] = record
    media = {
        call["ConnID"]: call.get("media") or {}
        for state in node_states.values()
        for call in state.get("sip", {}).get("calls", [])
        if not call.get("end_reason")
    }
    dns: dict[str, Any] = {}
    for dn, by_node in sorted(views.items()):
        distinct = {(r["owner"], r["epoch"]) for r in by_node.values()}
        best = max(by_node.values(), key=lambda r: (r["epoch"], r["owner"]))
        dns[dn] = {"owner": best["owner"], "epoch": best["epoch"], "phone": best.get("phone")}
        if len(distinct) > 1:
            dns[dn]["views"] = by_node
        owned = node_states.get(best["owner"], {}).get("owned", {}).get(dn)
        if owned is not None:
            dns[dn].update(_owned(owned, media))
    return dns


def _owned(owned: dict[str, Any], media: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "agent": {"AgentID": owned.get("AgentID"), "AgentState": owned.get("AgentState")},
        "desktops": owned.get("Desktops", []),
        "calls": [
            {
                "ConnID": call["ConnID"],
                "CallState": call.get("CallState"),
                "CallNode": call.get("CallNode"),
                "media": {
                    direction: {key: leg.get(key) for key in ("talking", "longest_gap_ms")}
                    for direction, leg in media.get(call["ConnID"], {}).items()
                },
            }
            for call in owned.get("Calls", [])
        ],
    }


def health_problems(engine: Engine) -> list[str]:
    """What keeps the lab from being healthy: a service not running, a link not up, a SIP node
    missing a TC peer, a GWS node without its T-Lib link. An empty list is a healthy lab."""
    report = lab_status(engine)
    problems = [
        f"{service['name']} is {service['state']}"
        for service in report["services"]
        if service["state"] != "running"
    ]
    problems += [
        f"link {link['name']} is {link['state']}"
        for link in report["links"]
        if link["services"] and link["state"] != "up"
    ]
    for service in report["services"]:
        endpoints = service["endpoints"]
        if service["state"] != "running":
            continue
        if service["kind"] == "sipcluster" and "control" in endpoints:
            try:
                peers = fetch_json(f"http://{endpoints['control']}/state").get("peers", {})
            except (OSError, ValueError) as exc:
                problems.append(f"{service['name']} control endpoint: {exc}")
                continue
            down = sorted(name for name, peer in peers.items() if peer.get("state") != "up")
            if down:
                problems.append(f"{service['name']} has no TC link to {', '.join(down)}")
        elif service["kind"] == "gws" and "http" in endpoints:
            try:
                fetch_json(f"http://{endpoints['http']}/health")
            except (OSError, ValueError) as exc:
                problems.append(f"{service['name']} is not healthy: {exc}")
    return problems


async def wait_healthy(engine: Engine, timeout: float) -> list[str]:
    """Poll until the lab is healthy; returns what is still wrong at the deadline (or [])."""
    deadline = time.monotonic() + timeout
    while True:
        problems = await asyncio.to_thread(health_problems, engine)
        if not problems or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(0.1)
