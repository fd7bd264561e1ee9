"""Pieces every service's command line shares: endpoint options and the stop signal."""

from __future__ import annotations

import asyncio
import signal

import click

from emulator.common.addresses import Endpoint, parse_endpoint


def endpoint_option(ctx: click.Context, param: click.Parameter, value: str) -> Endpoint:
    """click callback: a loopback ``host:port``, or a usage error naming what is wrong."""
    try:
        return parse_endpoint(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def stop_signal() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: how every service learns to shut down in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
