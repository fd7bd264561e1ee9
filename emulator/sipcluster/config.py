"""Configuration of one SIP Cluster node: identity, endpoints, peers, DNs and scaled timers."""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.common.addresses import Endpoint
from emulator.sipcluster.rules import NONE_BROKEN, Broken
from emulator.sipcluster.sip_config import SipConfig


@dataclass(frozen=True)
class Peer:
    name: str
    dc: str
    address: Endpoint  # where this node dials the peer's TC port (through the relay in a lab)


@dataclass(frozen=True)
class DnRange:
    first: int
    last: int

    def __contains__(self, dn: object) -> bool:
        return isinstance(dn, str) and dn.isdigit() and self.first <= int(dn) <= self.last

    @classmethod
    def parse(cls, text: str) -> DnRange:
        first, sep, last = text.partition("-")
        if not (first.isdigit() and (not sep or last.isdigit())):
            raise ValueError(f"DN range {text!r} is not N or N-M")
        low, high = int(first), int(last if sep else first)
        if low > high:
            raise ValueError(f"DN range {text!r} is empty")
        return cls(low, high)


@dataclass(frozen=True)
class Timers:
    """Real-deployment durations in seconds, before scaling (Genesys defaults where known)."""

    addp_interval: float = 10.0
    addp_timeout: float = 10.0
    tc_interval: float = 2.0
    tc_timeout: float = 4.0
    ownership_move_delay: float = 30.0
    after_call_work_period: float = 10.0


@dataclass(frozen=True)
class NodeConfig:
    name: str
    dc: str
    tlib: Endpoint
    tc: Endpoint
    control: Endpoint
    peers: tuple[Peer, ...] = ()
    dns: DnRange = field(default_factory=lambda: DnRange(7000, 7999))
    timers: Timers = field(default_factory=Timers)  # already scaled
    logout_on_disconnect: bool = True
    sip: SipConfig | None = None  # the SIP registrar/B2BUA side; None: T-Lib and TC-layer only
    broken: Broken = NONE_BROKEN  # rules broken on purpose (fault injection; rules.Rule)
