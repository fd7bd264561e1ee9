"""A loaded scenario: its setup (agents, calls), steps and outcomes, as the runner reads them.

These are the values ``schema`` builds once a file has been validated; nothing here reads YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PHONES = ("pstn", "softphone")  # an agent's phone type
DCS = ("DC1", "DC2")  # an agent's DC, and the sides of a partition


@dataclass(frozen=True)
class AgentSetup:
    name: str
    dn: str
    password: str
    phone: str
    dc: str
    gws: str
    owner: str


@dataclass(frozen=True)
class CallSetup:
    name: str
    agent: str
    node: str


@dataclass(frozen=True)
class Step:
    line: int
    kind: str  # "do" | "check" | "mark"
    name: str  # the action, the outcome id, or the mark
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Expect:
    line: int
    kind: str
    params: Mapping[str, Any]
    children: tuple[Expect, ...] = ()


@dataclass(frozen=True)
class Outcome:
    id: str
    title: str
    expect: Expect
    within: float  # lab seconds (scaled) to wait for the expectation to hold
    hold: float  # lab seconds it must then keep holding (0: once is enough)
    line: int


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    path: Path
    description: str
    lab_args: Mapping[str, tuple[str, ...]]
    agents: Mapping[str, AgentSetup]
    calls: Mapping[str, CallSetup]
    steps: tuple[Step, ...]
    outcomes: Mapping[str, Outcome]

    def outcome_ids(self) -> list[str]:
        return list(self.outcomes)
