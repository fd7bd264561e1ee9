"""``python -m clients.softphone``: run one softphone until SIGTERM/SIGINT.

Example: ``python -m clients.softphone --name softphone2 --dn 7002 --registrar sip1=127.0.1.1:5060
--registrar sip3=127.0.2.1:5060 --time-scale 0.05 --control 127.0.0.1:0``.  Logs JSON lines to
stdout and prints ``ready`` with ``endpoints`` (``http``, ``sip``) once listening.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from clients.phoneline.cli import node_params, phone_config, phone_options, serve
from clients.softphone.config import SoftphoneConfig
from clients.softphone.phone import Softphone
from emulator.common.cli import raise_open_files_limit
from emulator.common.jsonlog import JsonLog

# The rule a failed refresh keeps: retried at the same registrar until the registration expires
# (clients/softphone/registration_core.py).
REFRESH_KEPT_UNTIL_EXPIRY = "refresh-kept-until-expiry"


@click.command()
@click.option("--name", required=True, help="Service name, e.g. softphone2.")
@click.option("--dn", required=True, help="The agent's DN, e.g. 7002.")
@click.option(
    "--registrar",
    "registrars",
    multiple=True,
    required=True,
    callback=node_params,
    help="NAME=HOST:PORT, in failover order (DC1 nodes, then DC2 nodes). Repeatable.",
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
@click.option(
    "--register-timeout",
    type=float,
    default=None,
    help="Seconds one REGISTER may take before failing over (default: timer F = 64*T1).",
)
@click.option("--max-calls", type=int, default=4, show_default=True)
@click.option(
    "--break-rule",
    "broken",
    type=click.Choice([REFRESH_KEPT_UNTIL_EXPIRY]),
    multiple=True,
    help="Fault injection for the scenario mutation matrix: break a rule (never by default).",
)
@phone_options
def main(**options: Any) -> None:
    """Run a SIP softphone: register with failover, answer calls, measure RTP both ways."""
    broken = options.pop("broken")
    options["break_refresh_kept_until_expiry"] = REFRESH_KEPT_UNTIL_EXPIRY in broken
    config, control = phone_config(SoftphoneConfig, options)
    log = JsonLog(config.name, config.dc)
    raise_open_files_limit()
    asyncio.run(serve(Softphone(config, log), control, log, DN=config.dn))


if __name__ == "__main__":
    main()
