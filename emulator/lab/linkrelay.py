"""``python -m emulator.lab.linkrelay [--file compose.yaml] RELAY_OPTIONS...``: the lab's relay.

Runs the fault relay (``python -m emulator.links``) with the link table of the topology file
(``x-drlab-links``), so compose.yaml stays the one source of the links under both engines: the
embedded runner and ``docker compose`` start the same command, and neither needs a generated file
on disk. The table is handed to the relay as its ``--config`` through an anonymous in-memory file
(``memfd``), read once at start; every other option is the relay's own (``--api``,
``--time-scale``, ...). The file is ``--file``, else ``$DRLAB_COMPOSE_FILE`` (set by the embedded
engine to the file it runs), else ``compose.yaml`` in the working directory (the image's).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from emulator.lab.topology import TopologyError, load_topology
from emulator.links.__main__ import main as relay_main

EXIT_USAGE = 2


@click.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.option(
    "--file",
    envvar="DRLAB_COMPOSE_FILE",
    default="compose.yaml",
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.argument("relay_args", nargs=-1, type=click.UNPROCESSED)
def main(file: Path, relay_args: tuple[str, ...]) -> None:
    """Start the relay with the links of FILE; RELAY_ARGS go to ``python -m emulator.links``."""
    if "--config" in relay_args:
        click.echo("linkrelay: the links come from the topology file; drop --config", err=True)
        sys.exit(EXIT_USAGE)
    try:
        topology = load_topology(file)
    except TopologyError as exc:
        click.echo(f"linkrelay: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    table = {"links": [link.relay_config() for link in topology.links.values()]}
    descriptor = os.memfd_create("drlab-links.json", 0)
    os.write(descriptor, json.dumps(table).encode())
    relay_main.main(
        args=["--config", f"/proc/self/fd/{descriptor}", *relay_args],
        prog_name="python -m emulator.lab.linkrelay",
    )


if __name__ == "__main__":
    main()
