"""``python -m clients.softphone``: run one softphone until SIGTERM/SIGINT.

Example: ``python -m clients.softphone --name softphone2 --dn 7002 --registrar sip1=127.0.1.1:5060
--registrar sip3=127.0.2.1:5060 --time-scale 0.05 --control 127.0.0.1:0``.  Logs JSON lines to
stdout and prints ``ready`` with ``endpoints`` (``http``, ``sip``) once listening.
"""

from __future__ import annotations

import asyncio

import click

from clients.phoneline.cli import endpoint_param, node_params, serve
from clients.softphone.config import SoftphoneConfig
from clients.softphone.phone import Softphone
from clients.softphone.registration import RegistrarEntry
from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale


@click.command()
@click.option("--name", required=True, help="Service name, e.g. softphone2.")
@click.option("--dc", default="", help="Data centre of the phone, if any.")
@click.option("--dn", required=True, help="The agent's DN, e.g. 7002.")
@click.option(
    "--registrar",
    "registrars",
    multiple=True,
    required=True,
    callback=node_params,
    help="NAME=HOST:PORT, in failover order (DC1 nodes, then DC2 nodes). Repeatable.",
)
@click.option("--sip", default="127.0.0.1:0", callback=endpoint_param, help="SIP UDP host:port.")
@click.option("--rtp-host", default="127.0.0.1", show_default=True, help="RTP bind address.")
@click.option(
    "--control", default="127.0.0.1:0", callback=endpoint_param, help="Control HTTP host:port."
)
@click.option(
    "--time-scale", type=float, default=1.0, show_default=True, help="Multiplies every SIP timer."
)
@click.option("--expires", type=int, default=60, show_default=True, help="Registration expiry, s.")
@click.option("--refresh-ratio", type=float, default=0.5, show_default=True)
@click.option(
    "--retry-interval",
    type=float,
    default=10.0,
    show_default=True,
    help="Pause after every registrar failed in a row, s.",
)
@click.option("--t1", type=float, default=0.5, show_default=True, help="SIP T1 (RFC 3261), s.")
@click.option(
    "--register-timeout",
    type=float,
    default=None,
    help="Seconds one REGISTER may take before failing over (default: timer F = 64*T1).",
)
@click.option("--auto-answer/--no-auto-answer", default=True, show_default=True)
@click.option("--answer-delay", type=float, default=0.0, show_default=True, help="Seconds.")
@click.option(
    "--rtp-timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds without RTP before a call is ended as lost (not time-scaled).",
)
@click.option("--gap-threshold", type=float, default=1.0, show_default=True)
@click.option("--max-calls", type=int, default=4, show_default=True)
def main(
    name: str,
    dc: str,
    dn: str,
    registrars: tuple[RegistrarEntry, ...],
    sip: Endpoint,
    rtp_host: str,
    control: Endpoint,
    time_scale: float,
    expires: int,
    refresh_ratio: float,
    retry_interval: float,
    t1: float,
    register_timeout: float | None,
    auto_answer: bool,
    answer_delay: float,
    rtp_timeout: float,
    gap_threshold: float,
    max_calls: int,
) -> None:
    """Run a SIP softphone: register with failover, answer calls, measure RTP both ways."""
    try:
        parse_endpoint(f"{rtp_host}:0")
        config = SoftphoneConfig(
            name=name,
            dn=dn,
            registrars=registrars,
            dc=dc,
            sip=sip,
            rtp_host=rtp_host,
            scale=TimeScale(time_scale),
            expires=expires,
            refresh_ratio=refresh_ratio,
            retry_interval=retry_interval,
            t1=t1,
            register_timeout=register_timeout,
            auto_answer=auto_answer,
            answer_delay=answer_delay,
            rtp_timeout=rtp_timeout,
            gap_threshold=gap_threshold,
            max_calls=max_calls,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    log = JsonLog(config.name, config.dc)
    asyncio.run(serve(Softphone(config, log), control, log, DN=config.dn))


if __name__ == "__main__":
    main()
