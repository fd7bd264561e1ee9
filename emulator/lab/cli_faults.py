"""``drlab cut|heal|partition|toxic|timeline``: link faults and the timeline (chaos: ``cli_chaos``).

    drlab cut LINK... [--mode reset|blackhole] [--ttl S]
    drlab heal LINK... | --all
    drlab partition DC1 DC2 [--mode reset|blackhole] [--ttl S]
    drlab toxic add LINK --type latency --attr latency=100 [--attr jitter=10] [--stream upstream]
                    [--toxicity 0.5] [--name N] [--ttl S]
    drlab toxic rm LINK NAME
    drlab timeline [--follow] [--json] [--service NAME] [--event GLOB] [--exclude GLOB]
                   [--html FILE]

TTLs are lab seconds, multiplied by the lab's ``--time-scale``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import click

from emulator.lab.cli_support import engine_of, fail, faults_of
from emulator.lab.errors import LabError
from emulator.lab.faults import CUT_MODES, STREAMS, TOXIC_TYPES
from emulator.lab.timeline import ROUTINE_EVENTS, Timeline, format_entry
from emulator.ui.report import timeline_report

TTL = click.FloatRange(min=0, min_open=True)
TTL_HELP = "Heal by itself after this many lab seconds (scaled by the time scale)."


def _scaled(ctx: click.Context, seconds: float | None) -> str:
    if seconds is None:
        return ""
    real = seconds * engine_of(ctx).time_scale()
    return f", heals by itself in {seconds:g} s ({real:.2f} s real)"


@click.command()
@click.argument("links", nargs=-1, required=True)
@click.option("--mode", type=click.Choice(CUT_MODES), default="reset", show_default=True)
@click.option("--ttl", type=TTL, help=TTL_HELP)
@click.pass_context
def cut(ctx: click.Context, links: tuple[str, ...], mode: str, ttl: float | None) -> None:
    """Cut links or link groups (softphone2-dc1: every softphone2-dc1-* link) at one instant:
    reset (connections reset, new ones refused) or blackhole (bytes dropped)."""
    try:
        names = asyncio.run(faults_of(ctx).cut(links, mode, ttl))
    except LabError as exc:
        fail(exc)
    click.echo(f"cut {', '.join(names)} ({mode}){_scaled(ctx, ttl)}")


@click.command()
@click.argument("links", nargs=-1)
@click.option("--all", "heal_all", is_flag=True, help="Heal every link of the relay.")
@click.pass_context
def heal(ctx: click.Context, links: tuple[str, ...], heal_all: bool) -> None:
    """Heal cut or black-holed links (toxics stay: 'drlab toxic rm')."""
    if bool(links) == heal_all:
        raise click.UsageError("give the links to heal, or --all")
    try:
        names = asyncio.run(faults_of(ctx).heal(None if heal_all else links))
    except LabError as exc:
        fail(exc)
    click.echo(f"healed {'every link' if heal_all else ', '.join(names)}")


@click.command()
@click.argument("dc_a")
@click.argument("dc_b")
@click.option("--mode", type=click.Choice(CUT_MODES), default="reset", show_default=True)
@click.option("--ttl", type=TTL, help=TTL_HELP)
@click.pass_context
def partition(ctx: click.Context, dc_a: str, dc_b: str, mode: str, ttl: float | None) -> None:
    """Cut every link between two DCs at one instant."""
    try:
        names = asyncio.run(faults_of(ctx).partition(dc_a, dc_b, ttl, mode))
    except LabError as exc:
        fail(exc)
    click.echo(f"partition {dc_a} {dc_b}: cut {', '.join(names)} ({mode}){_scaled(ctx, ttl)}")


@click.group()
def toxic() -> None:
    """Add or remove toxics (Toxiproxy's: latency, bandwidth, slicer, limit_data, ...)."""


def _attributes(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    attributes: dict[str, int] = {}
    for value in values:
        key, sep, number = value.partition("=")
        try:
            attributes[key] = int(number)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not NAME=INTEGER (e.g. latency=100)") from None
        if not (sep and key):
            raise click.BadParameter(f"{value!r} is not NAME=INTEGER (e.g. latency=100)")
    return attributes


@toxic.command(name="add")
@click.argument("link")
@click.option("--type", "toxic_type", type=click.Choice(TOXIC_TYPES), required=True)
@click.option("--attr", "attributes", multiple=True, callback=_attributes, help="NAME=INTEGER.")
@click.option("--stream", type=click.Choice(STREAMS), default="downstream", show_default=True)
@click.option("--toxicity", type=click.FloatRange(0.0, 1.0), default=1.0, show_default=True)
@click.option("--name", help="Toxic name (default TYPE_STREAM).")
@click.option("--ttl", type=TTL, help="Remove it by itself after this many lab seconds.")
@click.pass_context
def toxic_add(
    ctx: click.Context,
    link: str,
    toxic_type: str,
    attributes: dict[str, int],
    stream: str,
    toxicity: float,
    name: str | None,
    ttl: float | None,
) -> None:
    """Add a toxic to LINK."""
    try:
        spec = asyncio.run(
            faults_of(ctx).add_toxic(
                link,
                toxic_type,
                attributes,
                name=name,
                stream=stream,
                toxicity=toxicity,
                ttl=ttl,
            )
        )
    except LabError as exc:
        fail(exc)
    shown = " ".join(f"{k}={v}" for k, v in spec.to_json()["attributes"].items())
    click.echo(f"toxic {spec.name} on {link}: {spec.type} {spec.stream} {shown}")


@toxic.command(name="rm")
@click.argument("link")
@click.argument("name")
@click.pass_context
def toxic_rm(ctx: click.Context, link: str, name: str) -> None:
    """Remove toxic NAME from LINK."""
    try:
        asyncio.run(faults_of(ctx).remove_toxic(link, name))
    except LabError as exc:
        fail(exc)
    click.echo(f"removed toxic {name} from {link}")


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of readable lines.")
@click.option("--service", "services", multiple=True, help="Only entries of (or about) it.")
@click.option("--event", "events", multiple=True, help="Only events matching this glob.")
@click.option("--exclude", multiple=True, help="Leave out events matching this glob.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the entries as one self-contained HTML page (swimlanes, fault spans) instead.",
)
@click.pass_context
def timeline(
    ctx: click.Context,
    follow: bool,
    as_json: bool,
    services: tuple[str, ...],
    events: tuple[str, ...],
    exclude: tuple[str, ...],
    html_path: Path | None,
) -> None:
    """Faults, service starts/stops and every service's log, merged in time order."""
    if html_path is not None and follow:
        raise click.UsageError("--html writes what is there now: it cannot --follow")
    engine = engine_of(ctx)
    faults = faults_of(ctx)
    for name in services:
        try:
            faults.check_service(name)
        except LabError as exc:
            fail(exc)
    engine.logs(None)  # the compose engine copies each container's output to the state dir
    if html_path is not None and not events:
        # The page leaves out the routine events, as the run reports do: thousands of relay
        # connection entries would bury the faults and stall the browser.
        exclude = (*exclude, *ROUTINE_EVENTS)
    view = Timeline(engine.state_dir, services or None, events, exclude)

    def emit(entry: dict[str, Any]) -> None:
        click.echo(json.dumps(entry, default=str) if as_json else format_entry(entry))

    if html_path is not None:
        entries = view.read()
        try:
            html_path.parent.mkdir(parents=True, exist_ok=True)
            html_path.write_text(timeline_report(entries))
        except OSError as exc:
            fail(LabError(f"cannot write {html_path}: {exc.strerror or exc}"))
        click.echo(f"timeline of {len(entries)} entries written to {html_path}")
        return
    if not follow:
        for entry in view.read():
            emit(entry)
        return
    with contextlib.suppress(KeyboardInterrupt):
        view.follow(emit)


def register(group: click.Group) -> None:
    for command in (cut, heal, partition, toxic, timeline):
        group.add_command(command)
