"""Binding a UDP socket on the loop and reporting the address it got (port 0 resolved)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from emulator.common.addresses import Endpoint


async def bind_datagram(
    protocol: Callable[[], asyncio.DatagramProtocol], host: str, port: int
) -> tuple[asyncio.DatagramTransport, Endpoint]:
    """A datagram endpoint on ``host:port`` and the endpoint it is bound to."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(protocol, local_addr=(host, port))
    host_bound, port_bound = transport.get_extra_info("sockname")[:2]
    return transport, Endpoint(str(host_bound), int(port_bound))
