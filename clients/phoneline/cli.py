"""What the phones' command lines share: option parsers and the run-until-signalled loop.

A phone service logs JSON lines, prints ``ready`` with ``endpoints`` (``http``, ``sip``) once
listening, and exits cleanly on SIGTERM/SIGINT (calls end with a BYE, sockets close); a port it
cannot bind exits 2 after a ``listen_failed`` line.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any, Protocol, Self

import click

from clients.phoneline.config import NodeEntry
from clients.phoneline.control import ControlledPhone, ControlServer, Placer
from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.common.jsonlog import JsonLog


class PhoneService(ControlledPhone, Protocol):
    @property
    def sip_bound(self) -> Endpoint: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


def endpoint_param(ctx: click.Context, param: click.Parameter, value: str) -> Endpoint:
    try:
        return parse_endpoint(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def node_params(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[NodeEntry, ...]:
    try:
        return tuple(NodeEntry.parse(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (e.g. sip1=127.0.0.1:5060)") from None


async def serve(
    phone: PhoneService,
    control: Endpoint,
    log: JsonLog,
    *,
    place: Placer | None = None,
    **ready: Any,
) -> None:
    """Run ``phone`` and its control API until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with phone, ControlServer(phone, *control, place=place) as server:
            endpoints = {"http": str(server.bound), "sip": str(phone.sip_bound)}
            log.event("ready", endpoints=endpoints, **ready)
            await stop.wait()
            log.event("stopping")
    except OSError as exc:
        log.error("listen_failed", error=str(exc))
        raise SystemExit(2) from None
    log.event("stopped")
