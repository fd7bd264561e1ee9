"""The lab's topology, read from ``compose.yaml`` — the one source for both engines (DESIGN §1).

A service is a Compose service whose ``command`` runs one drlab process and whose labels say its
data centre (``drlab.dc``) and kind (``drlab.kind``). The embedded engine runs the same command
as a local process; Compose runs it in a container with host networking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class TopologyError(ValueError):
    """compose.yaml cannot describe a drlab lab; the message names the service and key."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    dc: str
    kind: str
    command: tuple[str, ...]
    depends_on: tuple[str, ...] = ()

    def option(self, flag: str) -> str | None:
        """The value following ``flag`` in the command, if any."""
        args = self.command
        for index, arg in enumerate(args[:-1]):
            if arg == flag:
                return args[index + 1]
        return None


@dataclass(frozen=True)
class Topology:
    path: Path
    services: dict[str, ServiceSpec]

    def names(self) -> list[str]:
        return list(self.services)

    def of_kind(self, kind: str) -> list[ServiceSpec]:
        return [spec for spec in self.services.values() if spec.kind == kind]

    def start_order(self) -> list[str]:
        """Services ordered so that each starts after what it depends on."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order:
                return
            if name in visiting:
                raise TopologyError(f"services {sorted(visiting)} depend on each other in a cycle")
            visiting.add(name)
            for dependency in self.services[name].depends_on:
                visit(dependency)
            visiting.discard(name)
            order.append(name)

        for name in self.services:
            visit(name)
        return order


def load_topology(path: Path) -> Topology:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TopologyError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise TopologyError(f"{path}: no 'services' mapping")
    services = {
        str(name): _service(path, str(name), body) for name, body in document["services"].items()
    }
    for spec in services.values():
        unknown = [d for d in spec.depends_on if d not in services]
        if unknown:
            raise TopologyError(f"{path}: service {spec.name} depends on unknown {unknown}")
    return Topology(path, services)


def _service(path: Path, name: str, body: Any) -> ServiceSpec:
    where = f"{path}: service {name}"
    if not isinstance(body, dict):
        raise TopologyError(f"{where}: not a mapping")
    command = body.get("command")
    if not (isinstance(command, list) and command and all(isinstance(a, str) for a in command)):
        raise TopologyError(f"{where}: 'command' must be a non-empty list of strings")
    labels = body.get("labels") or {}
    if isinstance(labels, list):
        labels = dict(item.split("=", 1) for item in labels if "=" in item)
    dc, kind = labels.get("drlab.dc"), labels.get("drlab.kind")
    if not isinstance(dc, str) or not isinstance(kind, str):
        raise TopologyError(f"{where}: labels drlab.dc and drlab.kind are required")
    depends = body.get("depends_on") or []
    if isinstance(depends, dict):
        depends = list(depends)
    return ServiceSpec(name, dc, kind, tuple(command), tuple(str(d) for d in depends))
