"""``drlab status --json``: the lab's machine-readable map (DESIGN §4).

For each service its name, DC, kind, state, pid and endpoints; for each DN its owner as the
cluster reports it (asked of every running SIP node's control endpoint: when nodes disagree, as
during a partition, every view is listed).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from emulator.lab.embedded import EmbeddedEngine, process_state


def fetch_json(url: str, timeout: float = 1.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def lab_status(engine: EmbeddedEngine) -> dict[str, Any]:
    state = engine.load()
    services = []
    for name, spec in engine.topology.services.items():
        entry = state["services"].get(name)
        pid = int(entry["pid"]) if entry else None
        services.append(
            {
                "name": name,
                "dc": spec.dc,
                "kind": spec.kind,
                "state": process_state(pid) if pid else "stopped",
                "pid": pid,
                "endpoints": entry["endpoints"] if entry else {},
            }
        )
    return {
        "engine": "embedded",
        "time_scale": state.get("time_scale", 1.0),
        "services": services,
        "links": [],
        "dns": _dn_owners(services),
    }


def _dn_owners(services: list[dict[str, Any]]) -> dict[str, Any]:
    views: dict[str, dict[str, dict[str, Any]]] = {}
    for service in services:
        control = service["endpoints"].get("control")
        if service["kind"] != "sipcluster" or service["state"] != "running" or not control:
            continue
        try:
            node_state = fetch_json(f"http://{control}/state")
        except (OSError, ValueError):
            continue
        for dn, record in node_state.get("ownership", {}).items():
            views.setdefault(dn, {})[service["name"]] = record
    dns: dict[str, Any] = {}
    for dn, by_node in sorted(views.items()):
        distinct = {(r["owner"], r["epoch"]) for r in by_node.values()}
        best = max(by_node.values(), key=lambda r: (r["epoch"], r["owner"]))
        dns[dn] = {"owner": best["owner"], "epoch": best["epoch"], "phone": best.get("phone")}
        if len(distinct) > 1:
            dns[dn]["views"] = by_node
    return dns
