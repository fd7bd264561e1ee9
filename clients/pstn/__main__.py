"""``python -m clients.pstn``: run the PSTN gateway until SIGTERM/SIGINT.

Example: ``python -m clients.pstn --name pstn --sip 127.0.3.1:5060 --control 127.0.3.1:9000
--node sip1=127.0.12.11:5060 --node sip3=127.0.12.13:5060 --agent 7001=agent-7001
--time-scale 0.05``. Logs JSON lines to stdout and prints ``ready`` with ``endpoints``
(``http``, ``sip``) once listening.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from clients.phoneline.cli import node_params, phone_config, phone_options, serve
from clients.pstn.config import PstnConfig
from clients.pstn.gateway import Pstn
from emulator.common.cli import raise_open_files_limit
from emulator.common.jsonlog import JsonLog


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
@click.option("--max-calls", type=int, default=1000, show_default=True)
@click.option(
    "--keepalive",
    type=float,
    default=30.0,
    show_default=True,
    help="Real seconds between OPTIONS pings of each node (0: never).",
)
@click.option("--caller", default="+15551230000", show_default=True, help="Default customer.")
@phone_options
def main(**options: Any) -> None:
    """Run the PSTN gateway: place customer calls, answer PSTN agent phones, measure RTP."""
    config, control = phone_config(PstnConfig, options)
    log = JsonLog(config.name, config.dc)
    pstn = Pstn(config, log)
    raise_open_files_limit()
    asyncio.run(serve(pstn, control, log, place=pstn.place, agents=config.agents))


if __name__ == "__main__":
    main()
