"""``python -m emulator.proxy``: run one sticky proxy until SIGTERM/SIGINT.

Example::

    python -m emulator.proxy --name proxy-dc1 --dc DC1 --listen 127.0.0.1:8080 \\
        --upstream gws1=127.0.0.1:8101 --upstream gws2=127.0.0.1:8102 \\
        --health-path /health --health-interval 1 --time-scale 0.1
"""

from __future__ import annotations

import asyncio

import click

from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.common.cli import endpoint_option, raise_open_files_limit, stop_signal
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale
from emulator.proxy.config import ProxyConfig
from emulator.proxy.server import StickyProxy
from emulator.proxy.upstreams import Upstream

# Scaled network timeouts never go below these: on a loaded CI machine a healthy loopback
# answer can take tens of milliseconds, and a false "down" would fail over for nothing.
_MIN_HEALTH_TIMEOUT = 0.2
_MIN_CONNECT_TIMEOUT = 0.2
_MIN_READ_TIMEOUT = 1.0


def _upstreams(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[Upstream, ...]:
    upstreams: list[Upstream] = []
    for value in values:
        name, sep, address = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=HOST:PORT (e.g. gws1=127.0.0.1:8101)")
        try:
            upstreams.append(Upstream(name, parse_endpoint(address)))
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    if len({u.name for u in upstreams}) != len(upstreams):
        raise click.BadParameter("upstream names must be unique")
    return tuple(upstreams)


@click.command()
@click.option("--name", required=True, help="Service name, e.g. proxy-dc1.")
@click.option("--dc", required=True, help="Data centre, e.g. DC1.")
@click.option("--listen", default="127.0.0.1:8080", callback=endpoint_option, show_default=True)
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    required=True,
    callback=_upstreams,
    help="NAME=HOST:PORT of a node of this DC (repeatable).",
)
@click.option("--health-path", default="/health", show_default=True)
@click.option("--health-interval", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--health-timeout", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--connect-timeout", type=float, default=5.0, show_default=True, help="Seconds.")
@click.option(
    "--read-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds an upstream may take to answer (must exceed the CometD long-poll).",
)
@click.option("--cookie", "cookie_name", default="DRLAB_UPSTREAM", show_default=True)
@click.option("--status-path", default="/proxy/status", show_default=True)
@click.option("--time-scale", type=float, default=1.0, show_default=True)
@click.option(
    "--break-rule",
    "broken",
    multiple=True,
    type=click.Choice(["sticky-repin"]),
    help="Fault injection: break this rule (scenario mutation matrix). Never default.",
)
def main(
    name: str,
    dc: str,
    listen: Endpoint,
    upstreams: tuple[Upstream, ...],
    health_path: str,
    health_interval: float,
    health_timeout: float,
    connect_timeout: float,
    read_timeout: float,
    cookie_name: str,
    status_path: str,
    time_scale: float,
    broken: tuple[str, ...],
) -> None:
    """Run a cookie-sticky HTTP/1.1 + WebSocket reverse proxy for one data centre."""
    try:
        scale = TimeScale(time_scale)
        if min(health_interval, health_timeout, connect_timeout, read_timeout) <= 0:
            raise ValueError("every timer must be > 0")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    config = ProxyConfig(
        name=name,
        dc=dc,
        listen=listen,
        upstreams=upstreams,
        health_path=health_path,
        health_interval=scale(health_interval),
        health_timeout=max(_MIN_HEALTH_TIMEOUT, scale(health_timeout)),
        connect_timeout=max(_MIN_CONNECT_TIMEOUT, scale(connect_timeout)),
        read_timeout=max(_MIN_READ_TIMEOUT, scale(read_timeout)),
        cookie_name=cookie_name,
        status_path=status_path,
        broken=frozenset(broken),
    )
    raise_open_files_limit()
    asyncio.run(_run(config))


async def _run(config: ProxyConfig) -> None:
    stop = stop_signal()
    log = JsonLog(config.name, config.dc)
    proxy = StickyProxy(config, log)
    try:
        await proxy.start()
    except OSError as exc:
        log.error("listen_failed", error=str(exc), listen=str(config.listen))
        await proxy.stop()
        raise SystemExit(2) from None
    log.event(
        "ready",
        endpoints={"http": str(proxy.endpoint)},
        upstreams={u.name: str(u.endpoint) for u in config.upstreams},
        healthy=[u.name for u in proxy.pool.healthy()],
        health_interval=config.health_interval,
        read_timeout=config.read_timeout,
    )
    await stop.wait()
    await proxy.stop()
    log.event("stopped")


if __name__ == "__main__":
    main()
