"""What every ``drlab`` command shares: finding the lab and turning lab errors into exit codes.

Misuse — an unknown service, link or DC, a bad option, a toxic the relay would refuse — is a
usage error: exit 2, with the valid choices. A lab operation that fails (a service that does not
come up, a relay that does not answer) exits 1 with what went wrong and what to do.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from emulator.lab.engine.factory import make_engine
from emulator.lab.engine.protocol import Engine
from emulator.lab.errors import FaultRefused, LabError, UnknownName
from emulator.lab.faults import LabFaults
from emulator.lab.topology import TopologyError, load_topology


def engine_of(ctx: click.Context) -> Engine:
    root = ctx.find_root()
    cached: Engine | None = root.meta.get("drlab.engine")
    if cached is not None:
        return cached
    try:
        topology = load_topology(root.obj["file"])
    except TopologyError as exc:
        raise click.UsageError(str(exc)) from None
    engine = make_engine(root.obj.get("engine") or "embedded", topology, root.obj["state_dir"])
    root.meta["drlab.engine"] = engine
    return engine


def faults_of(ctx: click.Context, source: str | None = None) -> LabFaults:
    return LabFaults(engine_of(ctx), source)


def fail(exc: Exception) -> NoReturn:
    """Exit 2 for misuse, 1 for a failed lab operation."""
    if isinstance(exc, UnknownName | FaultRefused):
        raise click.UsageError(str(exc))
    click.echo(f"drlab: {exc}", err=True)
    sys.exit(1)


__all__ = ["LabError", "engine_of", "fail", "faults_of"]
