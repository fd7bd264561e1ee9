"""Pieces every service's command line shares: endpoint options, the open-files limit and the
stop signal."""

from __future__ import annotations

import asyncio
import resource
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


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit, and return it.

    Every agent holds sockets in several services (a desktop's HTTP and CometD connections in
    the proxy and GWS, a relay link's two sides): the default soft limit of 1,024 stops a lab
    at a few hundred agents, with "Too many open files" on accept."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft
