"""``drlab``: start, observe and break the lab (DESIGN §4).

Misuse (an unknown service, a bad option) exits 2 with a message that lists the valid choices;
a lab operation that fails exits 1 with what went wrong and what to do.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from emulator.lab.embedded import EmbeddedEngine, LabError
from emulator.lab.status import lab_status
from emulator.lab.topology import TopologyError, load_topology


@click.group()
@click.option(
    "--file",
    "-f",
    "file",
    default="compose.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The topology (a Compose file).",
)
@click.option(
    "--state-dir",
    default=".drlab",
    show_default=True,
    envvar="DRLAB_STATE_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the lab keeps pids and logs.",
)
@click.option(
    "--engine",
    type=click.Choice(["embedded"]),
    default="embedded",
    show_default=True,
    help="embedded: local processes, no Docker.",
)
@click.pass_context
def main(ctx: click.Context, file: Path, state_dir: Path, engine: str) -> None:
    """drlab — a Genesys SIP Cluster + GWS + WWE disaster-recovery lab."""
    ctx.obj = {"file": file, "state_dir": state_dir}


def _engine(ctx: click.Context) -> EmbeddedEngine:
    try:
        topology = load_topology(ctx.obj["file"])
    except TopologyError as exc:
        raise click.UsageError(str(exc)) from None
    return EmbeddedEngine(topology, ctx.obj["state_dir"])


def _service(engine: EmbeddedEngine, name: str) -> str:
    if name not in engine.topology.services:
        valid = ", ".join(engine.topology.names())
        raise click.BadParameter(f"unknown service {name!r}; valid services: {valid}")
    return name


def _fail(exc: Exception) -> None:
    click.echo(f"drlab: {exc}", err=True)
    sys.exit(1)


@main.command()
@click.option("-d", "--detach", is_flag=True, help="Return once every service is ready.")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.001, max=100.0),
    default=1.0,
    show_default=True,
    help="Multiplies every protocol timer (0.05 runs the 30 s move delay in 1.5 s).",
)
@click.pass_context
def up(ctx: click.Context, detach: bool, time_scale: float) -> None:
    """Start every service of the topology and wait until each is ready."""
    engine = _engine(ctx)
    click.echo(f"starting {len(engine.topology.services)} services (time scale {time_scale})")
    try:
        engine.up(time_scale, click.echo)
    except LabError as exc:
        _fail(exc)
    click.echo("lab is up")
    if detach:
        return
    click.echo("following logs; Ctrl-C stops the lab")
    try:
        _follow(engine.logs(None))
    except KeyboardInterrupt:
        pass
    finally:
        engine.down(click.echo)


@main.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop every service of the lab."""
    _engine(ctx).down(click.echo)
    click.echo("lab is down")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="The machine-readable map of the lab.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Services, their state and endpoints; DN owners."""
    report = lab_status(_engine(ctx))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for service in report["services"]:
        endpoints = " ".join(f"{k}={v}" for k, v in service["endpoints"].items())
        click.echo(
            f"{service['name']:<10} {service['dc']:<4} {service['kind']:<11} "
            f"{service['state']:<8} {service['pid'] or '-':<8} {endpoints}"
        )
    for dn, record in report["dns"].items():
        split = "  (views differ)" if "views" in record else ""
        click.echo(f"DN {dn}: owner {record['owner']} (epoch {record['epoch']}){split}")


@main.command()
@click.argument("service", required=False)
@click.option("-f", "--follow", is_flag=True)
@click.pass_context
def logs(ctx: click.Context, service: str | None, follow: bool) -> None:
    """Print the JSON-lines logs of one service, or of all."""
    engine = _engine(ctx)
    if service is not None:
        _service(engine, service)
    paths = engine.logs(service)
    for path in paths:
        click.echo(path.read_text(errors="replace"), nl=False)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            _follow(paths)


def _follow(paths: list[Path]) -> None:
    offsets = {path: path.stat().st_size if path.exists() else 0 for path in paths}
    while True:
        for path in paths:
            try:
                with path.open("rb") as log:
                    log.seek(offsets[path])
                    data = log.read()
            except OSError:
                continue
            offsets[path] += len(data)
            if data:
                click.echo(data.decode(errors="replace"), nl=False)
        time.sleep(0.2)


_SIGNALS: dict[str, tuple[signal.Signals, str]] = {
    "kill": (signal.SIGKILL, "service.kill"),
    "pause": (signal.SIGSTOP, "service.pause"),
    "resume": (signal.SIGCONT, "service.resume"),
}


def _signal_command(verb: str) -> Any:
    sig, event = _SIGNALS[verb]

    @click.pass_context
    def command(ctx: click.Context, service: str) -> None:
        engine = _engine(ctx)
        _service(engine, service)
        try:
            pid = engine.signal(service, sig, event)
        except LabError as exc:
            _fail(exc)
        click.echo(f"{verb} {service} (pid {pid}, {sig.name})")

    command.__doc__ = {
        "kill": "SIGKILL a service (a crash).",
        "pause": "SIGSTOP a service (a silent peer).",
        "resume": "SIGCONT a paused service.",
    }[verb]
    return main.command(name=verb)(click.argument("service")(command))


for _verb in _SIGNALS:
    _signal_command(_verb)


@main.command()
@click.argument("service")
@click.pass_context
def stop(ctx: click.Context, service: str) -> None:
    """Stop a service gracefully (SIGTERM)."""
    engine = _engine(ctx)
    _service(engine, service)
    try:
        engine.stop(service)
    except LabError as exc:
        _fail(exc)
    click.echo(f"stopped {service}")


@main.command()
@click.argument("service")
@click.pass_context
def start(ctx: click.Context, service: str) -> None:
    """Start a stopped or killed service again."""
    engine = _engine(ctx)
    _service(engine, service)
    try:
        engine.start(service, click.echo)
    except LabError as exc:
        _fail(exc)
