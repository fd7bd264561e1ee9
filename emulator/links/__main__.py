"""``python -m emulator.links``: run the fault relay with its Toxiproxy-compatible API.

    python -m emulator.links --name links --api 127.0.0.1:8474 [--config links.json]
        [--time-scale F] [--seed N] [--udp-idle S]

``--config`` is ``{"links": [{"name", "listen", "upstream", "protocol"}, ...]}`` (or Toxiproxy's
plain list of proxies). Logs JSON lines to stdout: ``ready`` with ``endpoints`` and the bound
``links`` once listening, then every fault, heal and toxic change. Exits 0 on SIGTERM/SIGINT,
2 on a bad option, an unreadable config or an address that is taken or not on loopback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from emulator.common.addresses import Endpoint
from emulator.common.cli import endpoint_option, raise_open_files_limit, stop_signal
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale
from emulator.links.errors import LinksError
from emulator.links.model import NewLink
from emulator.links.schema import parse_config
from emulator.links.service import LinksService

EXIT_USAGE = 2


def _load_config(path: str | None) -> list[NewLink]:
    if path is None:
        return []
    try:
        return parse_config(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--config") from None
    except LinksError as exc:
        raise click.BadParameter(f"{path}: {exc.message}", param_hint="--config") from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--name", default="links", show_default=True, help="Service name in the logs.")
@click.option("--dc", default="", help="Data centre label in the logs.")
@click.option(
    "--api",
    default="127.0.0.1:8474",
    show_default=True,
    callback=endpoint_option,
    help="host:port of the HTTP API (loopback).",
)
@click.option("--config", type=click.Path(dir_okay=False), help="JSON file of links to create.")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Factor applied to every TTL.",
)
@click.option("--seed", type=int, help="Seed of toxicity and jitter draws.")
@click.option(
    "--udp-idle",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds before an idle UDP session is forgotten.",
)
def main(
    name: str,
    dc: str,
    api: Endpoint,
    config: str | None,
    time_scale: float,
    seed: int | None,
    udp_idle: float,
) -> None:
    links = _load_config(config)
    log = JsonLog(name, dc)
    service = LinksService(
        api=api,
        links=links,
        log=log,
        time_scale=TimeScale(time_scale),
        seed=seed,
        udp_idle_timeout=udp_idle,
    )
    raise_open_files_limit()
    sys.exit(asyncio.run(_serve(service, log)))


async def _serve(service: LinksService, log: JsonLog) -> int:
    stop = stop_signal()
    try:
        async with service:
            log.event("ready", endpoints=service.endpoints, links=service.link_endpoints())
            await stop.wait()
            log.event("stopping")
    except LinksError as exc:
        log.error("startup_failed", error=exc.message)
        return EXIT_USAGE
    log.event("stopped")
    return 0


if __name__ == "__main__":
    main()
