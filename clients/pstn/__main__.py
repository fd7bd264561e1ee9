"""``python -m clients.pstn``: run the PSTN gateway until SIGTERM/SIGINT.

Example: ``python -m clients.pstn --name pstn --sip 127.0.3.1:5060 --control 127.0.3.1:9000
--node sip1=127.0.12.11:5060 --node sip3=127.0.12.13:5060 --agent 7001=agent-7001
--time-scale 0.05``. Logs JSON lines to stdout and prints ``ready`` with ``endpoints``
(``http``, ``sip``) once listening.
"""

from __future__ import annotations

import asyncio

import click

from clients.phoneline.cli import endpoint_param, node_params, serve
from clients.phoneline.config import NodeEntry
from clients.pstn.config import PstnConfig
from clients.pstn.gateway import Pstn
from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale


def _agents(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    agents = {}
    for value in values:
        dn, sep, number = value.partition("=")
        if not sep or not dn or not number:
            raise click.BadParameter(f"{value!r} is not DN=NUMBER (e.g. 7001=agent-7001)")
        agents[dn] = number
    return agents


@click.command()
@click.option("--name", default="pstn", show_default=True, help="Service name.")
@click.option("--dc", default="", help="Data centre of the gateway, if any.")
@click.option(
    "--node",
    "nodes",
    multiple=True,
    required=True,
    callback=node_params,
    help="NAME=HOST:PORT of a SIP node (the path to it). Repeatable.",
)
@click.option(
    "--agent",
    "agents",
    multiple=True,
    callback=_agents,
    help="DN=NUMBER of a PSTN agent phone this gateway answers (e.g. 7001=agent-7001).",
)
@click.option("--sip", default="127.0.0.1:0", callback=endpoint_param, help="SIP UDP host:port.")
@click.option("--rtp-host", default="127.0.0.1", show_default=True, help="RTP bind address.")
@click.option(
    "--control", default="127.0.0.1:0", callback=endpoint_param, help="Control HTTP host:port."
)
@click.option(
    "--time-scale", type=float, default=1.0, show_default=True, help="Multiplies every SIP timer."
)
@click.option("--t1", type=float, default=0.5, show_default=True, help="SIP T1 (RFC 3261), s.")
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
@click.option("--max-calls", type=int, default=1000, show_default=True)
@click.option(
    "--keepalive",
    type=float,
    default=30.0,
    show_default=True,
    help="Real seconds between OPTIONS pings of each node (0: never).",
)
@click.option("--caller", default="+15551230000", show_default=True, help="Default customer.")
def main(
    name: str,
    dc: str,
    nodes: tuple[NodeEntry, ...],
    agents: dict[str, str],
    sip: Endpoint,
    rtp_host: str,
    control: Endpoint,
    time_scale: float,
    t1: float,
    auto_answer: bool,
    answer_delay: float,
    rtp_timeout: float,
    gap_threshold: float,
    max_calls: int,
    keepalive: float,
    caller: str,
) -> None:
    """Run the PSTN gateway: place customer calls, answer PSTN agent phones, measure RTP."""
    try:
        parse_endpoint(f"{rtp_host}:0")
        config = PstnConfig(
            name=name,
            nodes=nodes,
            agents=agents,
            dc=dc,
            sip=sip,
            rtp_host=rtp_host,
            scale=TimeScale(time_scale),
            t1=t1,
            auto_answer=auto_answer,
            answer_delay=answer_delay,
            rtp_timeout=rtp_timeout,
            gap_threshold=gap_threshold,
            max_calls=max_calls,
            keepalive=keepalive,
            caller=caller,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    log = JsonLog(config.name, config.dc)
    pstn = Pstn(config, log)
    asyncio.run(serve(pstn, control, log, place=pstn.place, agents=config.agents))


if __name__ == "__main__":
    main()
