"""``drlab scenario list|run``: the seed's DR scenarios against a fresh lab (issue 7).

``run NAME...|--all`` starts a lab per scenario (its own state directory under
``STATE_DIR/scenarios/NAME``; the published ports mean no other lab may be up) with drlab's
engine — ``drlab --engine compose scenario run`` runs each lab in Docker containers, faults
being ``docker kill``/``pause`` and cuts in the relay container — prints progress
while it runs (steps, outcome verdicts as they land), then the merged timeline of each run and a
verdict table; ``--report FILE.json|FILE.xml|FILE.html`` writes the JSON, JUnit or HTML
report. Exit 1 when an outcome fails, 2 on misuse (unknown scenario, a scenario file with an
error: file:line).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from emulator.lab.cli_support import engine_of, fail
from emulator.lab.engine.factory import ENGINES, make_engine
from emulator.lab.errors import LabError
from emulator.lab.scenarios.model import Scenario
from emulator.lab.scenarios.mutants import MUTANTS, judge, matrix_lines
from emulator.lab.scenarios.report import timeline_text, verdict_table, write_report
from emulator.lab.scenarios.runner import WWE_DESKTOPS, RunOptions, run_all
from emulator.lab.scenarios.schema import load_scenario
from emulator.lab.scenarios.schema_reader import ScenarioError
from emulator.lab.topology import Topology

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "scenarios"


def load_all(directory: Path, topology: Topology) -> list[Scenario]:
    """Every ``*.yaml`` of the directory, validated; the first bad file raises ScenarioError."""
    return [
        load_scenario(path, topology.names(), [*topology.links, *topology.groups])
        for path in sorted(directory.glob("*.yaml"))
    ]


@click.group(name="scenario")
def scenario() -> None:
    """The seed's DR scenarios: list them, run them, get a verdict per outcome."""


@scenario.command(name="list")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
)
@click.pass_context
def list_scenarios(ctx: click.Context, directory: Path) -> None:
    """Scenario names, titles and the outcome ids each one checks."""
    try:
        scenarios = load_all(directory, engine_of(ctx).topology)
    except ScenarioError as exc:
        raise click.UsageError(str(exc)) from None
    for item in scenarios:
        click.echo(f"{item.name:<22} {item.title}")
        click.echo(f"{'':<22} outcomes: B.1 B.2 B.3 {' '.join(item.outcome_ids())}")


def time_scale_option(default: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--time-scale",
        type=click.FloatRange(min=0.001, max=100.0),
        default=default,
        show_default=True,
        help="Multiplies every protocol timer and deadline.",
    )


@scenario.command(name="run")
@click.argument("names", nargs=-1)
@click.option("--all", "run_every", is_flag=True, help="Run every scenario of the directory.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
)
@time_scale_option(default=1.0)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write FILE.json (JSON), FILE.xml (JUnit) or FILE.html (a self-contained page with the "
    "verdicts and a swimlane timeline with the fault spans).",
)
@click.option(
    "--engine",
    type=click.Choice(sorted(ENGINES)),
    default=None,
    help="How each run's lab runs: embedded (local processes) or compose (Docker containers); "
    "default: drlab's own --engine.",
)
@click.option(
    "--service-arg",
    "service_args",
    multiple=True,
    metavar="SERVICE=ARG",
    help="Add ARG to SERVICE's command in every run (break a rule on purpose).",
)
@click.option("--no-timeline", is_flag=True, help="Do not print the merged timelines.")
@click.pass_context
def run(
    ctx: click.Context,
    names: tuple[str, ...],
    run_every: bool,
    directory: Path,
    time_scale: float,
    report_path: Path | None,
    engine: str | None,
    service_args: tuple[str, ...],
    no_timeline: bool,
) -> None:
    """Run scenarios NAME... (or --all) on a fresh lab each; exit 1 if any outcome fails."""
    root = ctx.find_root().obj
    engine = engine or root.get("engine") or "embedded"
    lab = make_engine(engine, engine_of(ctx).topology, root["state_dir"])
    try:
        scenarios = load_all(directory, lab.topology)
    except ScenarioError as exc:
        raise click.UsageError(str(exc)) from None
    by_name = {item.name: item for item in scenarios}
    if run_every == bool(names):
        raise click.UsageError("give scenario names or --all (not both)")
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise click.UsageError(
            f"unknown scenario {', '.join(unknown)}; valid: {', '.join(by_name)}"
        )
    try:
        alive = lab.running()
    except LabError as exc:  # the compose engine: no Docker engine answers
        fail(exc)
    if alive:
        down = "drlab down" if engine == "embedded" else f"drlab --engine {engine} down"
        where = lab.state_dir if engine == "embedded" else "containers"
        click.echo(f"drlab: a lab is running ({where}); '{down}' first", err=True)
        sys.exit(1)
    extra: dict[str, list[str]] = {}
    for item in service_args:
        service, sep, arg = item.partition("=")
        if not sep or (service not in lab.topology.services and service != WWE_DESKTOPS):
            raise click.UsageError(
                f"--service-arg wants SERVICE=ARG with a known service (or {WWE_DESKTOPS} for "
                f"the agents' desktops), got {item!r}"
            )
        extra.setdefault(service, []).append(arg)
    chosen = scenarios if run_every else [by_name[name] for name in names]
    options = RunOptions(lab.topology.path, root["state_dir"], time_scale, extra, engine)
    results = run_all(chosen, options, lambda line: click.echo(line))
    if not no_timeline:
        for result in results:
            click.echo(f"\n--- timeline of {result.name} ---")
            for line in timeline_text(result):
                click.echo(line)
    click.echo("")
    for line in verdict_table(results):
        click.echo(line)
    if report_path is not None:
        write_report(report_path, results)
        click.echo(f"report written to {report_path}")
    if not all(result.passed for result in results):
        sys.exit(1)


@scenario.command(name="mutants")
@click.option("--only", "only", multiple=True, help="Run only this mutant (repeatable).")
@time_scale_option(default=0.05)
@click.option("--quiet", is_flag=True, help="Print only the matrix, not each run's progress.")
@click.pass_context
def mutants(ctx: click.Context, only: tuple[str, ...], time_scale: float, quiet: bool) -> None:
    """Break each rule the verdicts rely on, one at a time, and show which outcomes then fail.

    Exit 1 if a mutant is missed: its outcomes pass with the rule broken, or others fail.
    """
    root = ctx.find_root().obj
    engine = root.get("engine") or "embedded"
    lab = make_engine(engine, engine_of(ctx).topology, root["state_dir"])
    known = {m.name: m for m in MUTANTS}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise click.UsageError(f"unknown mutant {unknown[0]!r}; valid: {', '.join(known)}")
    try:
        by_name = {item.name: item for item in load_all(DEFAULT_DIR, lab.topology)}
    except ScenarioError as exc:
        raise click.UsageError(str(exc)) from None
    verdicts = []
    for mutant in [known[name] for name in only] if only else MUTANTS:
        click.echo(f"-- mutant {mutant.name}: {mutant.rule}")
        extra = {service: list(args) for service, args in mutant.args.items()}
        options = RunOptions(lab.topology.path, root["state_dir"], time_scale, extra, engine)
        progress = (lambda line: None) if quiet else (lambda line: click.echo(line))
        (result,) = run_all([by_name[mutant.scenario]], options, progress)
        verdicts.append(judge(mutant, result))
        click.echo(f"   {verdicts[-1].describe()}")
    click.echo("")
    for line in matrix_lines(verdicts):
        click.echo(line)
    if not all(v.caught for v in verdicts):
        sys.exit(1)
