"""What every connection of one link consults as bytes pass: the state gate, toxics, upstream.

``LinkFlow`` is owned by a ``Link`` and shared with its TCP or UDP front. Connections wait on the
gate before reading and before writing, so a blackholed link holds every byte where it is (like a
network path whose packets are lost: nothing arrives, nothing is answered, and a connection that
both ends keep through the outage resumes in order afterwards, as TCP retransmission would make
it), and they look up the toxics of their stream on every chunk, so a toxic added or removed
applies to connections already open.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.links.model import LinkState, Protocol
from emulator.links.toxics import Stream, ToxicSpec


@dataclass(frozen=True)
class ConnectionInfo:
    """One connection (TCP) or session (UDP) of a link, as ``GET .../connections`` lists it."""

    id: int
    client: str
    protocol: Protocol
    bytes_upstream: int
    bytes_downstream: int
    age: float
    connected: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectionInfo:
        return cls(
            int(data["id"]),
            str(data["client"]),
            Protocol(data["protocol"]),
            int(data["bytes_upstream"]),
            int(data["bytes_downstream"]),
            float(data["age"]),
            bool(data["connected"]),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "client": self.client,
            "protocol": str(self.protocol),
            "bytes_upstream": self.bytes_upstream,
            "bytes_downstream": self.bytes_downstream,
            "age": round(self.age, 3),
            "connected": self.connected,
        }


class LinkFlow:
    def __init__(
        self,
        name: str,
        upstream: Endpoint,
        *,
        log: JsonLog,
        rng: random.Random,
        connect_timeout: float,
        udp_idle_timeout: float,
    ) -> None:
        self.name = name
        self.upstream = upstream
        self.log = log
        self.rng = rng
        self.connect_timeout = connect_timeout
        self.udp_idle_timeout = udp_idle_timeout
        self.toxics: tuple[ToxicSpec, ...] = ()
        self._state = LinkState.UP
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def state(self) -> LinkState:
        return self._state

    @state.setter
    def state(self, state: LinkState) -> None:
        self._state = state
        if state is LinkState.UP:
            self._flowing.set()
        else:
            self._flowing.clear()

    @property
    def flowing(self) -> bool:
        return self._flowing.is_set()

    async def until_flowing(self) -> None:
        if not self._flowing.is_set():
            await self._flowing.wait()

    def toxics_for(self, stream: Stream) -> tuple[ToxicSpec, ...]:
        return tuple(toxic for toxic in self.toxics if toxic.stream is stream)

    def has_toxics(self, stream: Stream) -> bool:
        return any(toxic.stream is stream for toxic in self.toxics)
