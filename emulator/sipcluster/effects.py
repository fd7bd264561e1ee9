"""What the node logic asks of its I/O layer. The logic never touches sockets or clocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from emulator.sipcluster.tc_messages import TcMessage
from emulator.tlib.messages import Event


class Effects(Protocol):
    def to_client(self, client: int, event: Event) -> None:
        """Send an event to a desktop connection of this node (ignored if it is gone)."""

    def relay_to_client(
        self, client: int, event: Mapping[str, Any], reference_id: int | None
    ) -> None:
        """Send an owner's answer as it came over the TC-layer (its wire object), carrying the
        desktop's ``reference_id``: the desktop node does not rebuild an event to re-encode it."""

    def to_peer(self, peer: str, message: TcMessage) -> bool:
        """Send a TC message; False if the TC link to ``peer`` is down."""

    def start_timer(self, key: str, delay: float) -> None:
        """(Re)start the timer ``key``; the node's ``on_timer(key)`` runs when it fires."""

    def cancel_timer(self, key: str) -> None: ...

    def timer_running(self, key: str) -> bool: ...
