"""Binding a link's listen address and resetting sockets: where OSError becomes a relay error.

A link's listen socket is bound synchronously before anything is committed, so a taken or
foreign address is refused (409 / 400) with nothing half-applied. TCP sockets are bound with
SO_REUSEADDR (a healed link re-binds at once despite TIME_WAIT); UDP sockets are not, since on
UDP that option would let two links share one port.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
from typing import Any

from emulator.common.addresses import Endpoint
from emulator.links.errors import BadRequest, Conflict
from emulator.links.model import Protocol, socket_host

_LINGER_RESET = struct.pack("ii", 1, 0)
_TCP_ESTABLISHED = 1  # tcpi_state, the first byte of Linux's struct tcp_info


def bind_socket(endpoint: Endpoint, protocol: Protocol) -> socket.socket:
    """A non-blocking socket bound to ``endpoint`` (not yet listening)."""
    host = socket_host(endpoint.host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol is Protocol.TCP else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        if protocol is Protocol.TCP:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, endpoint.port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise _bind_error(endpoint, protocol, exc) from None
    return sock


def bound_endpoint(sock: socket.socket) -> Endpoint:
    address: Any = sock.getsockname()
    return Endpoint(str(address[0]), int(address[1]))


def _bind_error(endpoint: Endpoint, protocol: Protocol, exc: OSError) -> Exception:
    if exc.errno == errno.EADDRINUSE:
        return Conflict(f"listen {endpoint} ({protocol}): address already in use")
    return BadRequest(f"listen {endpoint} ({protocol}): cannot bind: {exc.strerror or exc}")


def listen_error(endpoint: Endpoint, exc: OSError) -> Exception:
    """Translate a failed ``listen`` (a healed link whose port was taken meanwhile)."""
    return _bind_error(endpoint, Protocol.TCP, exc)


def set_reset_on_close(sock: Any) -> None:
    """SO_LINGER 0: the next close sends RST instead of FIN (Toxiproxy's reset_peer does this)."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


def peer_gone(sock: Any) -> bool:
    """Whether the peer of a TCP socket has closed or reset it (Linux ``TCP_INFO`` state)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    except (OSError, AttributeError):
        return False  # not knowable here: assume the peer is still there
    return bool(info) and info[0] != _TCP_ESTABLISHED
