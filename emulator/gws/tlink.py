"""The GWS node's one T-Lib connection to its SIP node: connect, watch, reconnect with backoff.

GWS speaks T-Lib as a desktop (emulator/tlib ``TLibClient``) on a single node-wide connection that
every session shares, as the real GWS does with its SIP Server. ADDP heartbeats detect a silent
(black-holed or SIGSTOPped) SIP node as well as a reset one. While the link is down ``send`` raises
``TLibUnavailable`` so the REST layer answers 503; the owner is told through ``on_up``/``on_down``
and reports the voice channel OutOfService (DESIGN §2.3). Every request and event is logged as
``tlib.request`` / ``tlib.event`` with its Genesys attributes so a timeline can be merged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.gws.config import GwsTimers
from emulator.gws.errors import TLibUnavailable
from emulator.tlib.connection import TLibClient
from emulator.tlib.messages import WIRE_NAMES, Event, Request, encode


class LinkState(StrEnum):
    CONNECTING = "connecting"
    UP = "up"
    DOWN = "down"
    CLOSED = "closed"


def request_fields(request: Request) -> dict[str, Any]:
    """The request's attributes by Genesys name, for the log line (no password)."""
    wire = encode(request)
    wire.pop(WIRE_NAMES["password"], None)
    name = wire.pop("message")
    return {"message": name, "DN": wire.pop("ThisDN", None), **wire}


def event_fields(event: Event) -> dict[str, Any]:
    fields: dict[str, Any] = {"message": str(event.name), "DN": event.this_dn}
    fields["ReferenceID"] = event.reference_id
    for name in (
        "AgentID",
        "ConnID",
        "AgentState",
        "AgentWorkMode",
        "CallState",
        "OtherDN",
        "Reason",
        "ErrorCode",
        "ErrorMessage",
        "DNStatus",
        "Owner",
    ):
        if name in event.attributes:
            fields[name] = event.attributes[name]
    calls = event.get("Calls")
    if isinstance(calls, list):
        fields["Calls"] = calls
    return fields


class TLibLink:
    def __init__(
        self,
        *,
        sip_name: str,
        host: str,
        port: int,
        timers: GwsTimers,
        log: JsonLog,
        on_event: Callable[[Event], None],
        on_up: Callable[[], None],
        on_down: Callable[[str], None],
    ) -> None:
        self.sip_name = sip_name
        self.host = host
        self.port = port
        self._timers = timers
        self._log = log
        self._on_event = on_event
        self._on_up = on_up
        self._on_down = on_down
        self.state = LinkState.CONNECTING
        self.last_error = "not connected yet"
        self.connects = 0
        self.since = 0.0
        self._client: TLibClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def up(self) -> bool:
        return self.state is LinkState.UP and self._client is not None

    def start(self) -> None:
        self.since = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._run(), name=f"tlib-link-{self.sip_name}")

    def unavailable_reason(self) -> str:
        return f"T-Lib link to SIP Server {self.sip_name} ({self.endpoint}) is {self.state}: " + (
            self.last_error
        )

    def next_reference_id(self) -> int:
        if self._client is None:
            raise TLibUnavailable(self.unavailable_reason())
        return self._client.next_reference_id()

    def send(self, request: Request, **log_fields: Any) -> None:
        """Write ``request`` to the SIP node; its answer arrives through ``on_event``."""
        client = self._client
        if client is None or not self.up:
            raise TLibUnavailable(self.unavailable_reason())
        self._log.event("tlib.request", sip=self.sip_name, **request_fields(request), **log_fields)
        client.stream.send(request)

    def reconnect_now(self) -> None:
        """Skip the rest of the current backoff wait (used by tests and by an operator)."""
        self._wake.set()

    async def _run(self) -> None:
        backoff = self._timers.reconnect_min
        loop = asyncio.get_running_loop()
        while not self._stopping:
            client = await self._connect()
            if client is not None and self._stopping:
                await client.close()
                return
            if client is None:
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._timers.reconnect_max)
                continue
            backoff = self._timers.reconnect_min
            self._client = client
            self.state = LinkState.UP
            self.connects += 1
            self.since = loop.time()
            self._log.event(
                "tlib.link_up", sip=self.sip_name, endpoint=self.endpoint, connects=self.connects
            )
            # Events are handled in the callback of the read that decoded them, not after a
            # queue hop to another task (the queue is emptied as it is filled).
            client.add_listener(functools.partial(self._on_arrival, client))
            self._on_up()
            await client.stream.wait_closed()
            self._take(client)
            self._client = None
            if self._stopping:
                await client.close()
                return
            self.state = LinkState.DOWN
            self.since = loop.time()
            self.last_error = client.stream.close_reason or "connection closed"
            self._log.warning(
                "tlib.link_down", sip=self.sip_name, endpoint=self.endpoint, reason=self.last_error
            )
            await client.close()
            self._on_down(self.last_error)
            await self._sleep(backoff)

    async def _connect(self) -> TLibClient | None:
        if self.state is not LinkState.UP and self.connects:
            self.state = LinkState.DOWN
        try:
            async with asyncio.timeout(self._timers.connect_timeout):
                return await TLibClient.connect(
                    self.host,
                    self.port,
                    addp_interval=self._timers.addp_interval,
                    addp_timeout=self._timers.addp_timeout,
                )
        except (OSError, TimeoutError) as exc:
            reason = f"connect failed: {exc}" if str(exc) else "connect timed out"
            if reason != self.last_error:
                self._log.warning(
                    "tlib.connect_failed", sip=self.sip_name, endpoint=self.endpoint, reason=reason
                )
            self.last_error = reason
            return None

    def _on_arrival(self, client: TLibClient, event: Event) -> None:
        self._take(client)

    def _take(self, client: TLibClient) -> None:
        while not client.events.empty():
            self._deliver(client.events.get_nowait())

    def _deliver(self, event: Event) -> None:
        self._log.event("tlib.event", sip=self.sip_name, **event_fields(event))
        try:
            self._on_event(event)
        except Exception as exc:  # a bug in one handler must not stop the link
            self._log.error(
                "tlib.event_handler_failed",
                sip=self.sip_name,
                message=str(event.name),
                error=repr(exc),
            )

    async def _sleep(self, delay: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def close(self) -> None:
        self._stopping = True
        self.state = LinkState.CLOSED
        self._wake.set()
        client = self._client
        if client is not None:
            client.stream.close("GWS shutting down")
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await asyncio.gather(self._task, return_exceptions=True)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
