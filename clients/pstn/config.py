"""PSTN gateway configuration: the nodes it calls, the agent numbers it answers, its timers.

SIP T1 and the answer delay are deployment values scaled by the lab's time-scale (a dead node is
detected within 64*T1, as a phone would); media values are never scaled. ``keepalive`` is the
real-time interval of the OPTIONS pings the gateway sends every node, as trunks do: they keep
the relay's UDP sessions (idle timeout 120 s) open for the node's in-dialog requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clients.phoneline.config import LineConfig, NodeEntry, PhoneSettings

_NUMBER = re.compile(r"^[A-Za-z0-9+\-_.!~*'()]+$")  # RFC 3261 §25.1 unreserved user characters


def check_number(number: str, what: str) -> str:
    if not _NUMBER.match(number):
        raise ValueError(f"{what} {number!r} is not a plain SIP user part (e.g. +15551230001)")
    return number


@dataclass(frozen=True, kw_only=True)
class PstnConfig(PhoneSettings):
    nodes: tuple[NodeEntry, ...]
    agents: dict[str, str] = field(default_factory=dict)  # DN -> the agent's PSTN number
    max_calls: int = 1000
    keepalive: float = 30.0  # real seconds between OPTIONS pings of every node; 0: never
    caller: str = "+15551230000"  # the customer number of calls placed without one

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("at least one --node is needed")
        if len({node.name for node in self.nodes}) != len(self.nodes):
            raise ValueError("node names must be unique")
        for dn, number in self.agents.items():
            check_number(dn, "agent DN")
            check_number(number, "agent number")
        check_number(self.caller, "caller")
        if self.keepalive < 0:
            raise ValueError("keepalive must be >= 0")
        super().__post_init__()

    def line(self) -> LineConfig:
        return self.line_for(self.name, self.nodes)

    def node(self, name: str) -> NodeEntry:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(node.name for node in self.nodes)
        raise ValueError(f"unknown node {name!r} (known: {known})")

    def dn_of(self, number: str) -> str | None:
        return next((dn for dn, known in self.agents.items() if known == number), None)
