"""``host:port`` endpoints as given on command lines and in ``drlab status --json``."""

from __future__ import annotations

import ipaddress
from typing import NamedTuple


class Endpoint(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_endpoint(text: str, *, loopback_only: bool = True) -> Endpoint:
    """Parse ``host:port``; the lab only ever listens and connects on 127.0.0.0/8."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"endpoint {text!r} is not host:port")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"endpoint {text!r} has a non-numeric port") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"endpoint {text!r} has a port outside 0..65535")
    if loopback_only:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise ValueError(f"endpoint {text!r}: host must be a loopback address") from None
        else:
            if not address.is_loopback:
                raise ValueError(f"endpoint {text!r}: host must be on loopback (127.0.0.0/8)")
    return Endpoint(host, port)
