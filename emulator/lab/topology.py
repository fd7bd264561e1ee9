"""The lab's topology, read from ``compose.yaml`` — the one source for both engines (DESIGN §1).

A service is a Compose service whose ``command`` runs one drlab process and whose labels say its
kind (``drlab.kind``) and data centre (``drlab.dc``; none for lab infrastructure such as the
relay). The embedded engine runs the same command as a local process; Compose runs it in a
container with host networking.

The relay's link table (DESIGN §3) is the top-level extension ``x-drlab-links``: a list of
``{name, from, to, listen, upstream, protocol}`` where ``from`` dials ``to`` through the relay's
``listen`` address and ``upstream`` is an address ``to`` listens on. It is validated here (names,
services, loopback addresses, no listen address used twice, upstream really one of ``to``'s
addresses) so a typo fails ``drlab up`` with the link's name instead of a silent dead path.

Link groups (``x-drlab-link-groups``, a list of names) name the faults that take several links at
one instant: group ``softphone2-dc1`` is every link named ``softphone2-dc1-*`` (all of a phone's
SIP and RTP with one DC). A group must have members and must not be a link's or service's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.lab.errors import LabError

LINKS_KEY = "x-drlab-links"
GROUPS_KEY = "x-drlab-link-groups"
# As the relay's own rule (emulator.links.model): names appear in URL paths and on command lines.
LINK_NAME = re.compile(r"^[^/\s]{1,128}$")
PROTOCOLS = ("tcp", "udp")


class TopologyError(LabError, ValueError):
    """compose.yaml cannot describe a drlab lab; the message names the service or link and key."""


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

    def listens(self) -> list[Endpoint]:
        """The addresses the service binds: every bare ``host:port`` of its command."""
        return [endpoint for arg in self.command if (endpoint := _endpoint(arg)) is not None]

    def dials(self) -> dict[str, Endpoint]:
        """What the service connects to: ``NAME=HOST:PORT`` / ``NAME=DC@HOST:PORT`` arguments."""
        found = {}
        for arg in self.command:
            name, sep, rest = arg.partition("=")
            endpoint = _endpoint(rest.rsplit("@", 1)[-1]) if sep and name else None
            if endpoint is not None:
                found[name] = endpoint
        return found


@dataclass(frozen=True)
class LinkSpec:
    """One named relay link: ``source`` dials ``target`` through ``listen``."""

    name: str
    source: str
    target: str
    listen: Endpoint
    upstream: Endpoint
    protocol: str = "tcp"

    def relay_config(self) -> dict[str, Any]:
        """The link as the relay's ``--config`` / ``POST /populate`` takes it."""
        return {
            "name": self.name,
            "listen": str(self.listen),
            "upstream": str(self.upstream),
            "protocol": self.protocol,
        }


@dataclass(frozen=True)
class Topology:
    path: Path
    services: dict[str, ServiceSpec]
    links: dict[str, LinkSpec]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> its links

    def expand(self, names: Sequence[str]) -> list[str]:
        """Link names with each group replaced by its members (order kept, no repeats)."""
        expanded: list[str] = []
        for name in names:
            for link in self.groups.get(name, (name,)):
                if link not in expanded:
                    expanded.append(link)
        return expanded

    def names(self) -> list[str]:
        return list(self.services)

    def of_kind(self, kind: str) -> list[ServiceSpec]:
        return [spec for spec in self.services.values() if spec.kind == kind]

    def dcs(self) -> list[str]:
        return sorted({spec.dc for spec in self.services.values() if spec.dc})

    def crossing(self, dc_a: str, dc_b: str) -> list[str]:
        """Links with one end in each of the two DCs: what a partition between them cuts."""
        wanted = {dc_a, dc_b}
        return [
            link.name
            for link in self.links.values()
            if {self.services[link.source].dc, self.services[link.target].dc} == wanted
        ]

    def start_order(self) -> list[str]:
        """Services ordered so that each starts after what it depends on."""
        return [name for wave in self.start_waves() for name in wave]

    def start_waves(self) -> list[list[str]]:
        """Services grouped by depth of dependency: a wave only needs earlier waves ready."""
        depth: dict[str, int] = {}
        visiting: set[str] = set()

        def visit(name: str) -> int:
            if name in depth:
                return depth[name]
            if name in visiting:
                raise TopologyError(f"services {sorted(visiting)} depend on each other in a cycle")
            visiting.add(name)
            level = 1 + max((visit(d) for d in self.services[name].depends_on), default=-1)
            visiting.discard(name)
            depth[name] = level
            return level

        for name in self.services:
            visit(name)
        waves: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for name in self.services:
            waves[depth[name]].append(name)
        return waves


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
    links = _links(path, document.get(LINKS_KEY) or [], services)
    groups = _groups(path, document.get(GROUPS_KEY) or [], services, links)
    return Topology(path, services, links, groups)


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
    dc, kind = labels.get("drlab.dc", ""), labels.get("drlab.kind")
    if not isinstance(dc, str) or not isinstance(kind, str):
        raise TopologyError(f"{where}: label drlab.kind is required (and drlab.dc a string)")
    depends = body.get("depends_on") or []
    if isinstance(depends, dict):
        depends = list(depends)
    return ServiceSpec(name, dc, kind, tuple(command), tuple(str(d) for d in depends))


def _links(path: Path, body: Any, services: dict[str, ServiceSpec]) -> dict[str, LinkSpec]:
    if not isinstance(body, list):
        raise TopologyError(f"{path}: '{LINKS_KEY}' must be a list of links")
    links: dict[str, LinkSpec] = {}
    listening: dict[tuple[Endpoint, str], str] = {}
    for index, item in enumerate(body, 1):
        link = _link(f"{path}: {LINKS_KEY} item {index}", item, services)
        where = f"{path}: link {link.name}"
        if link.name in links:
            raise TopologyError(f"{where}: the name is used twice")
        if link.name in services:
            raise TopologyError(f"{where}: the name is also a service's")
        other = listening.get((link.listen, link.protocol))
        if other is not None:
            raise TopologyError(f"{where}: listen {link.listen} is already link {other}'s")
        listening[(link.listen, link.protocol)] = link.name
        links[link.name] = link
    return links


def _groups(
    path: Path, body: Any, services: dict[str, ServiceSpec], links: dict[str, LinkSpec]
) -> dict[str, tuple[str, ...]]:
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise TopologyError(f"{path}: '{GROUPS_KEY}' must be a list of group names")
    groups: dict[str, tuple[str, ...]] = {}
    for name in body:
        where = f"{path}: link group {name}"
        if not LINK_NAME.match(name):
            raise TopologyError(f"{where}: a name needs 1-128 characters, no '/' or space")
        if name in links or name in services or name in groups:
            raise TopologyError(f"{where}: the name is already a link's, service's or group's")
        members = tuple(link for link in links if link.startswith(f"{name}-"))
        if not members:
            raise TopologyError(f"{where}: no link is named {name}-*")
        groups[name] = members
    return groups


def _link(where: str, item: Any, services: dict[str, ServiceSpec]) -> LinkSpec:
    if not isinstance(item, dict):
        raise TopologyError(f"{where}: a link must be a mapping")
    missing = [key for key in ("name", "from", "to", "listen", "upstream") if not item.get(key)]
    if missing:
        raise TopologyError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(item) - {"name", "from", "to", "listen", "upstream", "protocol"})
    if unknown:
        raise TopologyError(f"{where}: unknown key {unknown[0]!r}")
    name = str(item["name"])
    if not LINK_NAME.match(name):
        raise TopologyError(f"{where}: link name {name!r} needs 1-128 characters, no '/' or space")
    where = f"{where.rsplit(':', 1)[0]}: link {name}"
    for end in ("from", "to"):
        if item[end] not in services:
            valid = ", ".join(services)
            raise TopologyError(f"{where}: '{end}' {item[end]!r} is not a service ({valid})")
    protocol = str(item.get("protocol", "tcp"))
    if protocol not in PROTOCOLS:
        raise TopologyError(f"{where}: protocol must be tcp or udp, not {protocol!r}")
    try:
        listen = parse_endpoint(str(item["listen"]))
        upstream = parse_endpoint(str(item["upstream"]))
    except ValueError as exc:
        raise TopologyError(f"{where}: {exc}") from None
    if listen.port == 0 or upstream.port == 0:
        raise TopologyError(f"{where}: listen and upstream need a fixed port, not 0")
    target = services[item["to"]]
    if upstream not in target.listens():
        shown = ", ".join(map(str, target.listens())) or "none"
        raise TopologyError(
            f"{where}: upstream {upstream} is not an address {target.name} listens on ({shown})"
        )
    return LinkSpec(name, str(item["from"]), str(item["to"]), listen, upstream, protocol)


def _endpoint(text: str) -> Endpoint | None:
    if not re.fullmatch(r"[0-9.]+:[0-9]+|localhost:[0-9]+", text):
        return None
    try:
        return parse_endpoint(text)
    except ValueError:
        return None
