"""The data a Bayeux server core exchanges with its transports and its application.

Configuration (timers in seconds, already scaled by the lab's time scale), the handshake
authorizer's decision types, the application events (a client was added, removed, subscribed,
...) and the results of feeding a payload (:class:`Exchange`, :class:`Hold`). No I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.bayeux.messages import LONG_POLLING, WEBSOCKET, Message, Reconnect, UsageError


@dataclass(frozen=True)
class ServerConfig:
    """Server timers in seconds (already scaled by the lab's time scale) and channel policy."""

    timeout: float = 30.0
    interval: float = 0.0
    max_interval: float = 10.0
    connection_types: tuple[str, ...] = (WEBSOCKET, LONG_POLLING)
    # Channels (names or trailing-wildcard patterns) clients may subscribe to; None: any
    # broadcast channel. Anything else is answered "404:<channel>:Unknown channel".
    channels: tuple[str, ...] | None = None
    # Whether a client may publish to a broadcast channel (delivered to its subscribers).
    # Off by default: one desktop must not be able to forge another desktop's events.
    allow_client_publish: bool = False
    max_queue: int = 1000

    def __post_init__(self) -> None:
        if self.timeout < 0 or self.interval < 0 or self.max_interval <= 0:
            raise UsageError("timeout/interval must be >= 0 and max_interval > 0")
        if not self.connection_types:
            raise UsageError("a Bayeux server needs at least one connection type")
        if self.max_queue < 1:
            raise UsageError("max_queue must be >= 1")


@dataclass(frozen=True)
class Credentials:
    """What the transport knows about the peer when a payload arrives (for the authorizer)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    remote: str = ""


@dataclass(frozen=True)
class Accept:
    """Handshake accepted; ``principal`` is the application's object for this client."""

    principal: object = None


@dataclass(frozen=True)
class Deny:
    """Handshake refused with a reason (sent as ``403::<reason>``) and reconnect advice."""

    reason: str
    reconnect: Reconnect = Reconnect.NONE


Authorizer = Callable[[Message, Credentials], Accept | Deny]


class RemovalReason(enum.StrEnum):
    DISCONNECTED = "disconnected"  # the client sent /meta/disconnect
    EXPIRED = "expired"  # no /meta/connect for longer than max_interval
    REMOVED = "removed"  # the application removed it


@dataclass(frozen=True)
class ClientAdded:
    client_id: str
    principal: object


@dataclass(frozen=True)
class ClientRemoved:
    client_id: str
    principal: object
    reason: RemovalReason


@dataclass(frozen=True)
class ClientSubscribed:
    client_id: str
    channel: str


@dataclass(frozen=True)
class ClientUnsubscribed:
    client_id: str
    channel: str


@dataclass(frozen=True)
class ClientPublished:
    """A client published to a ``/service/`` channel (or an allowed broadcast channel)."""

    client_id: str
    channel: str
    data: Any


ServerEvent = ClientAdded | ClientRemoved | ClientSubscribed | ClientUnsubscribed | ClientPublished


@dataclass(frozen=True)
class Hold:
    """A ``/meta/connect`` the transport keeps open until :meth:`ServerCore.is_ready`."""

    client_id: str
    token: int
    deadline: float
    message_id: str | int | None = None


@dataclass(frozen=True)
class Exchange:
    """Everything one received payload produced."""

    replies: tuple[Message, ...] = ()
    hold: Hold | None = None
    events: tuple[ServerEvent, ...] = ()
    # The payload was unreadable as a whole; an HTTP transport answers 400.
    bad_payload: bool = False
    # Existing clients this payload spoke for: a WebSocket binds them to its connection.
    client_ids: tuple[str, ...] = ()
