"""``python -m emulator.gws``: run one GWS API node until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.common.cli import endpoint_option, raise_open_files_limit, stop_signal
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale
from emulator.gws.config import ConfigError, GwsConfig, GwsTimers, UserDirectory
from emulator.gws.server import GwsServer


def _sip(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, Endpoint]:
    name, sep, address = value.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{value!r} is not NAME=HOST:PORT (e.g. sip1=127.0.0.1:4000)")
    try:
        return name, parse_endpoint(address)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--name", required=True, help="Node name, e.g. gws1.")
@click.option("--dc", required=True, help="Data centre, e.g. DC1.")
@click.option(
    "--http", default="127.0.0.1:0", callback=endpoint_option, help="HTTP listen host:port."
)
@click.option("--sip", required=True, callback=_sip, help="NAME=HOST:PORT of the SIP node's T-Lib.")
@click.option(
    "--users",
    "users_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON file of users (list of {username, password, dn, ...}).",
)
@click.option("--user", "user_options", multiple=True, help="NAME:PASSWORD:DN (repeatable).")
@click.option(
    "--session-timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds a session survives without its CometD client.",
)
@click.option("--addp-interval", type=float, default=10.0, show_default=True)
@click.option("--addp-timeout", type=float, default=10.0, show_default=True)
@click.option(
    "--reconnect-min",
    type=float,
    default=1.0,
    show_default=True,
    help="First T-Lib reconnect backoff (doubles up to --reconnect-max).",
)
@click.option("--reconnect-max", type=float, default=30.0, show_default=True)
@click.option(
    "--cometd-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="How long a /meta/connect is held.",
)
@click.option(
    "--cometd-max-interval",
    type=float,
    default=10.0,
    show_default=True,
    help="How long a CometD client may go without /meta/connect.",
)
@click.option(
    "--auth-secret",
    default="drlab-lab-auth-secret",
    show_default=True,
    help="Lab-wide secret signing bearer tokens (same on every GWS node).",
)
@click.option(
    "--token-ttl",
    type=float,
    default=3600.0,
    show_default=True,
    help="Access token lifetime in seconds (not scaled).",
)
@click.option(
    "--unregister-on-timeout/--no-unregister-on-timeout",
    default=True,
    show_default=True,
    help="Send RequestUnregisterAddress when a session times out (off: SCENARIOS S1.14).",
)
@click.option(
    "--time-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiplies every protocol timer.",
)
def main(
    name: str,
    dc: str,
    http: Endpoint,
    sip: tuple[str, Endpoint],
    users_file: Path | None,
    user_options: tuple[str, ...],
    session_timeout: float,
    addp_interval: float,
    addp_timeout: float,
    reconnect_min: float,
    reconnect_max: float,
    cometd_timeout: float,
    cometd_max_interval: float,
    auth_secret: str,
    token_ttl: float,
    unregister_on_timeout: bool,
    time_scale: float,
) -> None:
    """Run one GWS API node (Workspace API v3 + CometD; T-Lib client of one SIP node)."""
    try:
        scale = TimeScale(time_scale)
        users = UserDirectory.from_options(users_file, user_options)
        timers = GwsTimers(
            session_timeout=session_timeout,
            addp_interval=addp_interval,
            addp_timeout=addp_timeout,
            reconnect_min=reconnect_min,
            reconnect_max=max(reconnect_min, reconnect_max),
            cometd_timeout=cometd_timeout,
            cometd_max_interval=cometd_max_interval,
        )
        if min(vars(timers).values()) <= 0 or token_ttl <= 0:
            raise ValueError("every timer must be > 0")
    except (ValueError, ConfigError) as exc:
        raise click.UsageError(str(exc)) from None
    sip_name, sip_endpoint = sip
    config = GwsConfig(
        name=name,
        dc=dc,
        sip_name=sip_name,
        sip_host=sip_endpoint.host,
        sip_port=sip_endpoint.port,
        users=users,
        timers=scale.scaled(timers),
        auth_secret=auth_secret,
        token_ttl=token_ttl,
        unregister_on_timeout=unregister_on_timeout,
    )
    raise_open_files_limit()
    asyncio.run(_run(config, http))


async def _run(config: GwsConfig, http: Endpoint) -> None:
    stop = stop_signal()
    log = JsonLog(config.name, config.dc)
    server = GwsServer(config, http=http, log=log)
    try:
        await server.start()
    except OSError as exc:
        log.error("listen_failed", error=str(exc))
        await server.close()
        raise SystemExit(2) from None
    log.event(
        "ready",
        endpoints=server.endpoints(),
        sip=f"{config.sip_name}={config.sip_host}:{config.sip_port}",
        users=len(config.users),
        time_scale_session_timeout=config.timers.session_timeout,
    )
    await stop.wait()
    await server.close()


if __name__ == "__main__":
    main()
