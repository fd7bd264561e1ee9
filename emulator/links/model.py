"""What a link is, independent of sockets: its spec, its state and the table of state changes.

A link (DESIGN §3) is one named path between two services, e.g. ``gws1-sip1``: the relay listens on
``listen`` and forwards to ``upstream`` over TCP or UDP. Its state is ``up``, ``cut`` (reset: every
connection is reset and new ones are refused) or ``blackhole`` (nothing gets through, connections
stay open: a silent peer). Every change goes through ``TRANSITIONS``; the I/O layer (``link.py``)
carries out what entering a state means for sockets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from emulator.common.addresses import Endpoint
from emulator.links.errors import InvalidTransition

# Names appear in URL paths and on command lines: no slash, no whitespace, at most 128 characters.
NAME_PATTERN = re.compile(r"^[^/\s]{1,128}$")


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class LinkState(StrEnum):
    UP = "up"
    CUT = "cut"
    BLACKHOLE = "blackhole"


class CutMode(StrEnum):
    RESET = "reset"
    BLACKHOLE = "blackhole"


class LinkCommand(StrEnum):
    CUT_RESET = "cut-reset"
    CUT_BLACKHOLE = "cut-blackhole"
    HEAL = "heal"


def cut_command(mode: CutMode) -> LinkCommand:
    return LinkCommand.CUT_RESET if mode is CutMode.RESET else LinkCommand.CUT_BLACKHOLE


# Every pair is listed: cutting a cut link again re-applies it (and restarts its TTL), and a
# blackholed link can be turned into a reset cut (its held connections are then reset).
TRANSITIONS: dict[tuple[LinkState, LinkCommand], LinkState] = {
    (LinkState.UP, LinkCommand.CUT_RESET): LinkState.CUT,
    (LinkState.UP, LinkCommand.CUT_BLACKHOLE): LinkState.BLACKHOLE,
    (LinkState.UP, LinkCommand.HEAL): LinkState.UP,
    (LinkState.CUT, LinkCommand.CUT_RESET): LinkState.CUT,
    (LinkState.CUT, LinkCommand.CUT_BLACKHOLE): LinkState.BLACKHOLE,
    (LinkState.CUT, LinkCommand.HEAL): LinkState.UP,
    (LinkState.BLACKHOLE, LinkCommand.CUT_RESET): LinkState.CUT,
    (LinkState.BLACKHOLE, LinkCommand.CUT_BLACKHOLE): LinkState.BLACKHOLE,
    (LinkState.BLACKHOLE, LinkCommand.HEAL): LinkState.UP,
}


def next_state(state: LinkState, command: LinkCommand) -> LinkState:
    try:
        return TRANSITIONS[(state, command)]
    except KeyError:
        raise InvalidTransition(f"link in state {state} cannot take command {command}") from None


@dataclass(frozen=True)
class LinkSpec:
    """A link as configured: ``listen`` may have port 0 until the relay has bound it."""

    name: str
    listen: Endpoint
    upstream: Endpoint
    protocol: Protocol = Protocol.TCP

    def same_place(self, other: LinkSpec) -> bool:
        """Whether ``other`` names the same path; port 0 in ``other.listen`` means any port."""
        listen_matches = socket_host(self.listen.host) == socket_host(other.listen.host) and (
            other.listen.port in (0, self.listen.port)
        )
        return (
            listen_matches and self.upstream == other.upstream and self.protocol is other.protocol
        )


def socket_host(host: str) -> str:
    """The address to bind or connect for ``host``: ``localhost`` is IPv4 loopback in the lab."""
    return "127.0.0.1" if host == "localhost" else host


@dataclass(frozen=True)
class NewLink:
    """A link to create: a spec and whether it starts up (``enabled``) or cut."""

    spec: LinkSpec
    enabled: bool = True


@dataclass(frozen=True)
class LinkUpdate:
    """Toxiproxy's proxy update: fields left ``None`` keep their current value."""

    listen: Endpoint | None = None
    upstream: Endpoint | None = None
    protocol: Protocol | None = None
    enabled: bool | None = None
