"""Binding a UDP socket on the loop and reporting the address it got (port 0 resolved)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from emulator.common.addresses import Endpoint

RECEIVE_BUFFER = 4 << 20


async def bind_datagram(
    protocol: Callable[[], asyncio.DatagramProtocol], host: str, port: int
) -> tuple[asyncio.DatagramTransport, Endpoint]:
    """A datagram endpoint on ``host:port`` and the endpoint it is bound to."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(protocol, local_addr=(host, port))
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Hundreds of 50 pps RTP streams share one port: the default ~200 KB buffer holds about
        # 10 ms of them and overflows on any scheduling hiccup (bench/sip_calls.py measured 6 %
        # loss at 500 streams with it, 0 % with 4 MB). The kernel caps it at net.core.rmem_max.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    host_bound, port_bound = transport.get_extra_info("sockname")[:2]
    return transport, Endpoint(str(host_bound), int(port_bound))
