"""Configuration of one sticky proxy: identity, listen address, the DC's upstreams and timers."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.common.addresses import Endpoint
from emulator.proxy.upstreams import Upstream


@dataclass(frozen=True)
class ProxyConfig:
    """Timers in seconds, already scaled by the lab's time scale."""

    name: str
    dc: str
    listen: Endpoint
    upstreams: tuple[Upstream, ...]
    health_path: str = "/health"
    health_interval: float = 1.0
    health_timeout: float = 1.0
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    cookie_name: str = "DRLAB_UPSTREAM"
    status_path: str = "/proxy/status"
    max_head: int = 16384
    max_buffered_body: int = 1 << 20
    rise: int = 1
    fall: int = 1
    shutdown_grace: float = 1.0
    broken: frozenset[str] = frozenset()  # rules broken on purpose (fault injection)
