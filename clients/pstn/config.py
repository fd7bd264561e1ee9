"""PSTN gateway configuration: the nodes it calls, the agent numbers it answers, its timers.

SIP T1 and the answer delay are deployment values scaled by the lab's time-scale (a dead node is
detected within 64*T1, as a phone would); media values are never scaled. ``keepalive`` is the
real-time interval of the OPTIONS pings the gateway sends every node, as trunks do: they keep
the relay's UDP sessions (idle timeout 120 s) open for the node's in-dialog requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clients.phoneline.config import LineConfig, NodeEntry
from emulator.common.addresses import Endpoint
from emulator.common.timescale import TimeScale
from emulator.sip.transaction import TimerConfig

_NUMBER = re.compile(r"^[A-Za-z0-9+\-_.!~*'()]+$")  # RFC 3261 §25.1 unreserved user characters


def check_number(number: str, what: str) -> str:
    if not _NUMBER.match(number):
        raise ValueError(f"{what} {number!r} is not a plain SIP user part (e.g. +15551230001)")
    return number


@dataclass(frozen=True)
class PstnConfig:
    name: str
    nodes: tuple[NodeEntry, ...]
    agents: dict[str, str] = field(default_factory=dict)  # DN -> the agent's PSTN number
    dc: str = ""
    sip: Endpoint = field(default_factory=lambda: Endpoint("127.0.0.1", 0))
    rtp_host: str = "127.0.0.1"
    scale: TimeScale = field(default_factory=TimeScale)
    t1: float = 0.5
    auto_answer: bool = True
    answer_delay: float = 0.0
    rtp_timeout: float = 5.0
    gap_threshold: float = 1.0
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
        if self.t1 <= 0 or self.keepalive < 0:
            raise ValueError("t1 must be > 0 and keepalive >= 0")
        self.line()  # the line's own checks

    def line(self) -> LineConfig:
        return LineConfig(
            user=self.name,
            nodes=self.nodes,
            rtp_host=self.rtp_host,
            scale=self.scale,
            auto_answer=self.auto_answer,
            answer_delay=self.answer_delay,
            rtp_timeout=self.rtp_timeout,
            gap_threshold=self.gap_threshold,
            max_calls=self.max_calls,
        )

    @property
    def timers(self) -> TimerConfig:
        return TimerConfig(t1=self.t1, t2=8 * self.t1, t4=10 * self.t1).scaled(self.scale)

    def node(self, name: str) -> NodeEntry:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(node.name for node in self.nodes)
        raise ValueError(f"unknown node {name!r} (known: {known})")

    def dn_of(self, number: str) -> str | None:
        return next((dn for dn, known in self.agents.items() if known == number), None)
