"""``python -m emulator.sipcluster``: run one SIP Cluster node until SIGTERM/SIGINT.

``--sip HOST:PORT`` adds the SIP side (registrar and B2BUA on UDP and TCP, RTP on ``--media``);
``--phone-route``/``--phone-media``/``--pstn-route``/``--pstn-media`` give the relay links a lab
routes phones through (see ``sip_config``).
"""

from __future__ import annotations

import asyncio

import click

from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.common.cli import endpoint_option, raise_open_files_limit, stop_signal
from emulator.common.timescale import TimeScale
from emulator.sip.transaction import TimerConfig
from emulator.sipcluster.config import DnRange, NodeConfig, Peer, Timers
from emulator.sipcluster.rules import Rule
from emulator.sipcluster.service import NodeService
from emulator.sipcluster.sip_config import SipConfig, parse_mapping


def _peers(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Peer]:
    peers = []
    for value in values:
        name, sep, rest = value.partition("=")
        dc, at, address = rest.partition("@")
        if not (sep and at and name and dc):
            raise click.BadParameter(
                f"{value!r} is not NAME=DC@HOST:PORT (e.g. sip3=DC2@127.0.0.1:4100)"
            )
        try:
            peers.append(Peer(name, dc, parse_endpoint(address)))
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return peers


def _optional_endpoint(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> Endpoint | None:
    return None if value is None else endpoint_option(ctx, param, value)


def _dn_endpoints(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Endpoint]:
    mapping = {}
    for value in values:
        try:
            dn, address = parse_mapping(value, what=f"--{param.name}")
            mapping[dn] = parse_endpoint(address)
        except ValueError as exc:
            raise click.BadParameter(f"{exc} (e.g. 7002=127.0.12.25:5060)") from None
    return mapping


def _agent_numbers(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    try:
        return dict(parse_mapping(value, what="--agent-number") for value in values)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (e.g. 7001=agent-7001)") from None


@click.command()
@click.option("--name", required=True, help="Node name, e.g. sip1.")
@click.option("--dc", required=True, help="Data centre, e.g. DC1.")
@click.option(
    "--tlib", default="127.0.0.1:0", callback=endpoint_option, help="T-Lib listen host:port."
)
@click.option(
    "--tc", default="127.0.0.1:0", callback=endpoint_option, help="TC-layer listen host:port."
)
@click.option(
    "--control", default="127.0.0.1:0", callback=endpoint_option, help="Control HTTP host:port."
)
@click.option(
    "--peer", "peers", multiple=True, callback=_peers, help="NAME=DC@HOST:PORT of a peer's TC port."
)
@click.option("--dns", default="7000-7999", help="DN range this cluster serves, N-M.")
@click.option(
    "--time-scale", type=float, default=1.0, show_default=True, help="Multiplies every timer."
)
@click.option("--addp-interval", type=float, default=10.0, show_default=True)
@click.option("--addp-timeout", type=float, default=10.0, show_default=True)
@click.option("--tc-interval", type=float, default=2.0, show_default=True)
@click.option("--tc-timeout", type=float, default=4.0, show_default=True)
@click.option("--ownership-move-delay", type=float, default=30.0, show_default=True)
@click.option("--after-call-work-period", type=float, default=10.0, show_default=True)
@click.option("--logout-on-disconnect/--no-logout-on-disconnect", default=True, show_default=True)
@click.option(
    "--sip", callback=_optional_endpoint, help="SIP (UDP and TCP) listen host:port; off if unset."
)
@click.option(
    "--media",
    callback=_optional_endpoint,
    help="Phone-facing RTP host:port, one port for all calls (default: the SIP host, port 0).",
)
@click.option(
    "--phone-route",
    "phone_routes",
    multiple=True,
    callback=_dn_endpoints,
    help="DN=HOST:PORT: where this node sends INVITEs to that DN's softphone (a relay link).",
)
@click.option(
    "--phone-media",
    multiple=True,
    callback=_dn_endpoints,
    help="DN=HOST:PORT: the RTP address this node's SDP gives that DN's softphone.",
)
@click.option(
    "--pstn-route", callback=_optional_endpoint, help="HOST:PORT of the PSTN gateway (agent calls)."
)
@click.option(
    "--pstn-media", callback=_optional_endpoint, help="RTP address this node's SDP gives the PSTN."
)
@click.option(
    "--agent-number",
    "agent_numbers",
    multiple=True,
    callback=_agent_numbers,
    help="DN=NUMBER of a PSTN agent's phone (default: agent-DN). Repeatable.",
)
@click.option("--ring-timeout", type=float, default=60.0, show_default=True, help="Seconds.")
@click.option(
    "--rtp-timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Media seconds a leg may go silent before the call ends as lost (not scaled; 0: never).",
)
@click.option("--sip-tcp/--no-sip-tcp", default=True, show_default=True)
@click.option(
    "--break-rule",
    "broken",
    multiple=True,
    type=click.Choice([rule.value for rule in Rule]),
    help="Fault injection: break this rule of the guide (scenario mutation matrix). Never default.",
)
def main(
    name: str,
    dc: str,
    tlib: Endpoint,
    tc: Endpoint,
    control: Endpoint,
    peers: list[Peer],
    dns: str,
    time_scale: float,
    addp_interval: float,
    addp_timeout: float,
    tc_interval: float,
    tc_timeout: float,
    ownership_move_delay: float,
    after_call_work_period: float,
    logout_on_disconnect: bool,
    sip: Endpoint | None,
    media: Endpoint | None,
    phone_routes: dict[str, Endpoint],
    phone_media: dict[str, Endpoint],
    pstn_route: Endpoint | None,
    pstn_media: Endpoint | None,
    agent_numbers: dict[str, str],
    ring_timeout: float,
    rtp_timeout: float,
    sip_tcp: bool,
    broken: tuple[str, ...],
) -> None:
    """Run one SIP Cluster node (T-Lib server, TC-layer peer, control endpoint)."""
    try:
        scale = TimeScale(time_scale)
        dn_range = DnRange.parse(dns)
        timers = Timers(
            addp_interval,
            addp_timeout,
            tc_interval,
            tc_timeout,
            ownership_move_delay,
            after_call_work_period,
        )
        if min(vars(timers).values()) <= 0:
            raise ValueError("every timer must be > 0")
        sip_config = None
        if sip is not None:
            sip_config = SipConfig(
                sip=sip,
                media=media or Endpoint(sip.host, 0),
                scale=scale,
                timers=TimerConfig(),
                tcp=sip_tcp,
                phone_routes=phone_routes,
                phone_media=phone_media,
                pstn_route=pstn_route,
                pstn_media=pstn_media,
                agent_numbers=agent_numbers,
                ring_timeout=ring_timeout,
                rtp_timeout=rtp_timeout,
            )
        elif media or phone_routes or phone_media or pstn_route or pstn_media:
            raise ValueError("--media, --phone-*, --pstn-* need --sip")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    config = NodeConfig(
        name=name,
        dc=dc,
        tlib=tlib,
        tc=tc,
        control=control,
        peers=tuple(peers),
        dns=dn_range,
        timers=scale.scaled(timers),
        logout_on_disconnect=logout_on_disconnect,
        sip=sip_config,
        broken=frozenset(Rule(name) for name in broken),
    )
    raise_open_files_limit()
    asyncio.run(_run(config))


async def _run(config: NodeConfig) -> None:
    stop = stop_signal()
    service = NodeService(config)
    if config.broken:
        service.log.warning("rules.broken", rules=sorted(config.broken))
    try:
        await service.start()
    except OSError as exc:
        service.log.error("listen_failed", error=str(exc))
        await service.stop()
        raise SystemExit(2) from None
    await stop.wait()
    service.log.event("stopping")
    await service.stop()
    service.log.event("stopped")


if __name__ == "__main__":
    main()
