"""One named link at run time: its spec, state, toxics and the TCP or UDP front carrying it.

``Link.apply`` takes a command through the transition table (``model.TRANSITIONS``) and does what
entering the new state means: leaving ``cut`` listens again (and fails, state unchanged, if the
port was taken meanwhile); entering ``cut`` closes the gate, stops listening and resets every
connection; ``blackhole`` only closes the gate. Toxic changes take effect on open connections.
"""

from __future__ import annotations

import dataclasses
import random
import socket
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.links.errors import TOXIC_EXISTS, TOXIC_NOT_FOUND, BadRequest, Conflict, NotFound
from emulator.links.flow import ConnectionInfo, LinkFlow
from emulator.links.model import LinkCommand, LinkSpec, LinkState, Protocol, next_state
from emulator.links.tcp import TcpFront
from emulator.links.toxics import NOT_FOR_UDP, ToxicSpec, update_toxic
from emulator.links.udp import UdpFront


class Link:
    def __init__(
        self,
        spec: LinkSpec,
        sock: socket.socket,
        *,
        log: JsonLog,
        rng: random.Random,
        connect_timeout: float,
        udp_idle_timeout: float,
        state: LinkState = LinkState.UP,
        toxics: tuple[ToxicSpec, ...] = (),
    ) -> None:
        self.flow = LinkFlow(
            spec.name,
            spec.upstream,
            log=log,
            rng=rng,
            connect_timeout=connect_timeout,
            udp_idle_timeout=udp_idle_timeout,
        )
        self.flow.state = state
        self.flow.toxics = toxics
        self._front: TcpFront | UdpFront
        if spec.protocol is Protocol.TCP:
            self._front = TcpFront(self.flow, sock)
        else:
            self._front = UdpFront(self.flow, sock)
        self.spec = dataclasses.replace(spec, listen=self._front.listen)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> LinkState:
        return self.flow.state

    @property
    def toxics(self) -> tuple[ToxicSpec, ...]:
        return self.flow.toxics

    async def open(self) -> None:
        if self.spec.protocol is Protocol.UDP or self.state is not LinkState.CUT:
            await self._front.start_listening()

    async def apply(self, command: LinkCommand) -> LinkState:
        old = self.state
        new = next_state(old, command)
        if old is LinkState.CUT and new is not LinkState.CUT:
            await self._front.start_listening()
        self.flow.state = new
        if new is LinkState.CUT:
            self._front.stop_listening()
            self._front.reset_all("link cut")
        return new

    def toxic(self, name: str) -> ToxicSpec:
        for toxic in self.flow.toxics:
            if toxic.name == name:
                return toxic
        raise NotFound(TOXIC_NOT_FOUND)

    def add_toxic(self, toxic: ToxicSpec) -> None:
        if any(existing.name == toxic.name for existing in self.flow.toxics):
            raise Conflict(TOXIC_EXISTS)
        if self.spec.protocol is Protocol.UDP and toxic.type in NOT_FOR_UDP:
            raise BadRequest(f"a {toxic.type} toxic cannot apply to udp link {self.name}")
        self.flow.toxics = (*self.flow.toxics, toxic)
        self._front.toxics_changed(())

    def update_toxic(self, name: str, body: Any) -> ToxicSpec:
        updated = update_toxic(self.toxic(name), body)
        self.flow.toxics = tuple(updated if t.name == name else t for t in self.flow.toxics)
        self._front.toxics_changed(())
        return updated

    def remove_toxic(self, name: str) -> ToxicSpec:
        removed = self.toxic(name)
        self.flow.toxics = tuple(t for t in self.flow.toxics if t.name != name)
        self._front.toxics_changed((removed,))
        return removed

    def clear_toxics(self) -> tuple[ToxicSpec, ...]:
        removed, self.flow.toxics = self.flow.toxics, ()
        self._front.toxics_changed(removed)
        return removed

    def connections(self) -> list[ConnectionInfo]:
        return self._front.connections()

    def cut_connection(self, conn_id: int) -> None:
        if not self._front.cut_connection(conn_id):
            raise NotFound(f"connection {conn_id} not found on proxy {self.name}")

    async def aclose(self, *, reset: bool) -> None:
        await self._front.aclose(reset=reset)
