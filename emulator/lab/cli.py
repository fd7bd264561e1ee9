"""``drlab``: start, observe and break the lab (DESIGN §4).

Lifecycle and service faults live here (``up``, ``down``, ``status``, ``logs``, ``kill``,
``stop``, ``start``, ``pause``, ``resume``); link faults, the timeline and chaos in
``cli_faults``; ``drlab wwe`` is the WWE desktop of ``clients.wwe``. Misuse exits 2 with the
valid choices; a lab operation that fails exits 1 (``cli_support``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from clients.wwe.cli import cli as wwe_cli
from emulator.lab import cli_faults
from emulator.lab.cli_chaos import chaos
from emulator.lab.cli_scenarios import scenario as scenario_cli
from emulator.lab.cli_support import engine_of, fail, faults_of
from emulator.lab.dashboard import DEFAULT_PORT, BadRequest, check_bind, serve
from emulator.lab.errors import LabError
from emulator.lab.faults import LabFaults
from emulator.lab.status import lab_status


@click.group()
@click.option(
    "--file",
    "-f",
    "file",
    default="compose.yaml",
    show_default=True,
    envvar="DRLAB_COMPOSE_FILE",
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
    type=click.Choice(["embedded", "compose"]),
    default="embedded",
    show_default=True,
    envvar="DRLAB_ENGINE",
    help="embedded: local processes, no Docker; compose: Docker containers (same compose.yaml).",
)
@click.pass_context
def main(ctx: click.Context, file: Path, state_dir: Path, engine: str) -> None:
    """drlab — a Genesys SIP Cluster + GWS + WWE disaster-recovery lab."""
    ctx.obj = {"file": file, "state_dir": state_dir, "engine": engine}


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
    engine = engine_of(ctx)
    click.echo(
        f"starting {len(engine.topology.services)} services from {engine.topology.path} "
        f"(time scale {time_scale})"
    )
    try:
        engine.up(time_scale, click.echo)
    except LabError as exc:
        fail(exc)
    click.echo(f"lab is up: {len(engine.topology.links)} links on the relay; 'drlab status'")
    if detach:
        return
    click.echo("following logs; Ctrl-C stops the lab")
    try:
        _follow(lambda: engine.logs(None))
    except KeyboardInterrupt:
        pass
    finally:
        engine.down(click.echo)


@main.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop every service of the lab (also after a crashed runner)."""
    try:
        engine_of(ctx).down(click.echo)
    except LabError as exc:
        fail(exc)
    click.echo("lab is down")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="The machine-readable map of the lab.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Services, links (state, toxics) and DN owners."""
    try:
        report = lab_status(engine_of(ctx))
    except LabError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for service in report["services"]:
        endpoints = " ".join(f"{k}={v}" for k, v in service["endpoints"].items())
        click.echo(
            f"{service['name']:<10} {service['dc'] or '-':<4} {service['kind']:<11} "
            f"{service['state']:<8} {service['pid'] or '-':<8} {endpoints}"
        )
    for link in report["links"]:
        toxics = ", ".join(f"{t['name']}({t['type']})" for t in link["toxics"])
        heal = f" heals in {link['heal_in']} s" if link["heal_in"] is not None else ""
        click.echo(
            f"link {link['name']:<15} {link['state']:<9} {link['listen']} -> {link['upstream']}"
            f"{heal}{'  toxics: ' + toxics if toxics else ''}"
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
    engine = engine_of(ctx)
    if service is not None:
        _check(faults_of(ctx).check_service, service)
    paths = engine.logs(service)
    for path in paths:
        click.echo(path.read_text(errors="replace"), nl=False)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            _follow(lambda: engine.logs(service), from_end=True)


def _follow(paths: Callable[[], list[Path]], from_end: bool = False) -> None:
    offsets: dict[Path, int] = {}
    if from_end:
        offsets = {path: path.stat().st_size for path in paths()}
    while True:
        for path in paths():
            try:
                with path.open("rb") as log:
                    log.seek(offsets.get(path, 0))
                    data = log.read()
            except OSError:
                continue
            offsets[path] = offsets.get(path, 0) + len(data)
            if data:
                click.echo(data.decode(errors="replace"), nl=False)
        time.sleep(0.2)


def _check(check: Callable[[str], str], name: str) -> str:
    try:
        return check(name)
    except LabError as exc:
        fail(exc)


_SIGNALLED: dict[str, tuple[Callable[[LabFaults, str], Coroutine[Any, Any, int]], str]] = {
    "kill": (LabFaults.kill, "SIGKILL a service (a crash)."),
    "pause": (LabFaults.pause, "SIGSTOP a service (a silent peer)."),
    "resume": (LabFaults.resume, "SIGCONT a paused service."),
}


def _signal_command(verb: str) -> Any:
    action, doc = _SIGNALLED[verb]

    @click.pass_context
    def command(ctx: click.Context, service: str) -> None:
        faults = faults_of(ctx)
        _check(faults.check_service, service)
        try:
            pid = asyncio.run(action(faults, service))
        except LabError as exc:
            fail(exc)
        click.echo(f"{verb} {service} (pid {pid})")

    command.__doc__ = doc
    return main.command(name=verb)(click.argument("service")(command))


for _verb in _SIGNALLED:
    _signal_command(_verb)


@main.command()
@click.argument("service")
@click.pass_context
def stop(ctx: click.Context, service: str) -> None:
    """Stop a service gracefully (SIGTERM, SIGKILL after a grace period)."""
    faults = faults_of(ctx)
    _check(faults.check_service, service)
    try:
        asyncio.run(faults.stop(service))
    except LabError as exc:
        fail(exc)
    click.echo(f"stopped {service}")


@main.command()
@click.argument("service")
@click.pass_context
def start(ctx: click.Context, service: str) -> None:
    """Start a stopped or killed service again."""
    faults = faults_of(ctx)
    _check(faults.check_service, service)
    try:
        asyncio.run(faults.start(service, click.echo))
    except LabError as exc:
        fail(exc)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token", default=None, help="Required of every API request (and to bind beyond loopback)."
)
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, token: str | None) -> None:
    """Serve the live dashboard of the running lab (topology, links, owners, timeline, faults)."""
    try:
        check_bind(host, token)
    except BadRequest as exc:
        raise click.UsageError(str(exc)) from None
    engine = engine_of(ctx)
    click.echo(f"drlab ui: http://{host}:{port}/ (Ctrl-C stops)")
    try:
        asyncio.run(serve(engine, host, port, token))
    except OSError as exc:
        fail(LabError(f"cannot serve on {host}:{port}: {exc.strerror or exc}"))
    except KeyboardInterrupt:
        pass


cli_faults.register(main)
main.add_command(chaos)
main.add_command(wwe_cli, name="wwe")
main.add_command(scenario_cli, name="scenario")
