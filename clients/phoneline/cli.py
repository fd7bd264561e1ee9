"""What the phones' command lines share: their common options, parsers and the serve loop.

A phone service logs JSON lines, prints ``ready`` with ``endpoints`` (``http``, ``sip``) once
listening, and exits cleanly on SIGTERM/SIGINT (calls end with a BYE, sockets close); a port it
cannot bind exits 2 after a ``listen_failed`` line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, Self, TypeVar

import click

from clients.phoneline.config import NodeEntry
from clients.phoneline.control import ControlledPhone, ControlServer, Placer
from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.common.cli import stop_signal
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale

Command = TypeVar("Command", bound=Callable[..., Any])
Config = TypeVar("Config")


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


def phone_options(command: Command) -> Command:
    """The options of ``PhoneSettings`` every phone takes, and ``--control``."""
    options = [
        click.option("--dc", default="", help="Data centre of the phone, if any."),
        click.option(
            "--sip", default="127.0.0.1:0", callback=endpoint_param, help="SIP UDP host:port."
        ),
        click.option("--rtp-host", default="127.0.0.1", show_default=True, help="RTP address."),
        click.option(
            "--control", default="127.0.0.1:0", callback=endpoint_param, help="Control HTTP."
        ),
        click.option(
            "--time-scale", type=float, default=1.0, show_default=True, help="SIP timers."
        ),
        click.option("--t1", type=float, default=0.5, show_default=True, help="SIP T1, s."),
        click.option("--auto-answer/--no-auto-answer", default=True, show_default=True),
        click.option("--answer-delay", type=float, default=0.0, show_default=True, help="s."),
        click.option(
            "--rtp-timeout",
            type=float,
            default=5.0,
            show_default=True,
            help="Seconds without RTP before a call is ended as lost (not time-scaled).",
        ),
        click.option("--gap-threshold", type=float, default=1.0, show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def phone_config(
    factory: Callable[..., Config], options: dict[str, Any]
) -> tuple[Config, Endpoint]:
    """The config ``factory`` makes of a command's options, and the control address; a value
    the config refuses is a usage error (exit 2)."""
    control = options.pop("control")
    try:
        parse_endpoint(f"{options['rtp_host']}:0")
        scale = TimeScale(options.pop("time_scale"))
        return factory(scale=scale, **options), control
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


async def serve(
    phone: PhoneService,
    control: Endpoint,
    log: JsonLog,
    *,
    place: Placer | None = None,
    **ready: Any,
) -> None:
    """Run ``phone`` and its control API until SIGTERM/SIGINT."""
    stop = stop_signal()
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
