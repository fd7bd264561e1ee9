"""``drlab chaos``: seeded faults, on an idle lab or against live agents with a checker.

    drlab chaos --seed N --faults K [--duration S] [--dry-run]
    drlab chaos --workload --seed N --faults K [--agent USER:PASSWORD:DN@DC ...] [--history F]
    drlab chaos --workload --seed N --faults K --shrink [-o case.yaml]
    drlab chaos --replay case.yaml

Without ``--workload`` the faults run on the lab as it is, and the verdict is that the lab is
healthy after them. With it, the lab's agents log on, take calls and do call control while the
faults run; the history goes to ``--history`` (JSON lines), and the checker's invariants are
checked over it: exit 1 on any violation, printed with the seed, the faults and the history
around it. ``--shrink`` then reruns the seed's faults on a fresh lab each time (the lab is
restarted) until the smallest sequence that still violates the same invariant remains, and
writes it as a chaos case; ``--replay`` runs a case again. Durations are lab seconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from emulator.lab.chaos import ChaosFault, FaultKind, plan_chaos, run_chaos
from emulator.lab.chaos.run import ChaosOutcome, outcome_lines, run_workload_chaos
from emulator.lab.chaos.shrink import Attempt, case_yaml, read_case, shrink
from emulator.lab.chaos.workload import DEFAULT_AGENTS, WorkloadAgent
from emulator.lab.cli_support import engine_of, fail, faults_of
from emulator.lab.engine.protocol import Engine
from emulator.lab.errors import LabError
from emulator.lab.faults import LabFaults
from emulator.lab.status import wait_healthy

DEFAULT_CASE = "chaos-case.yaml"


@click.command()
@click.option("--seed", type=int, help="Same seed, same fault sequence.")
@click.option("--faults", "count", type=click.IntRange(min=1, max=1000))
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Lab seconds the faults are spread over (default 10 per fault; scaled).",
)
@click.option("--dry-run", is_flag=True, help="Print the sequence only.")
@click.option("--workload", is_flag=True, help="Agents and calls live; check the invariants.")
@click.option(
    "--agent",
    "agent_specs",
    multiple=True,
    metavar="USER:PASSWORD:DN@DC",
    help="A workload agent (default: agent1 on DC1, agent2 on DC2).",
)
@click.option("--history", "history_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--shrink", "shrinking", is_flag=True, help="Shrink a violation to a chaos case.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Where --shrink writes the case (default {DEFAULT_CASE}).",
)
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Run a chaos case (from --shrink) with the workload.",
)
@click.pass_context
def chaos(
    ctx: click.Context,
    seed: int | None,
    count: int | None,
    duration: float | None,
    dry_run: bool,
    workload: bool,
    agent_specs: tuple[str, ...],
    history_path: Path | None,
    shrinking: bool,
    output: Path | None,
    replay: Path | None,
) -> None:
    """Draw COUNT faults from SEED, apply them over the duration, then revert them all."""
    engine = engine_of(ctx)
    if replay is not None:
        if seed is not None or count is not None or shrinking:
            raise click.UsageError("--replay takes the seed and the faults from the case")
        try:
            seed, invariant, plan = read_case(replay)
        except LabError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(f"chaos case {replay}: seed {seed}, {len(plan)} fault(s), was {invariant}")
        workload = True
    else:
        if seed is None or count is None:
            raise click.UsageError("--seed and --faults are required (or --replay CASE)")
        if shrinking and not workload:
            raise click.UsageError("--shrink needs --workload (it shrinks a checker violation)")
        duration = duration if duration is not None else 10.0 * count
        try:
            plan = plan_chaos(engine.topology, seed, count, duration)
        except LabError as exc:
            fail(exc)
        click.echo(f"chaos seed {seed}: {count} faults over {duration:g} lab seconds")
    try:
        agents = tuple(WorkloadAgent.parse(spec) for spec in agent_specs) or DEFAULT_AGENTS
        _check_plan(faults_of(ctx), plan, agents)
    except LabError as exc:
        fail(exc)
    for fault in plan:
        click.echo(f"  {fault.describe()}")
    if dry_run:
        return
    if not engine.running():
        fail(LabError("the lab is not running; 'drlab up -d' first"))
    scale = engine.time_scale()
    span = max(f.at + f.hold for f in plan)
    click.echo(f"running at time scale {scale:g} ({span * scale:.1f} s real)")
    if not workload:
        _idle_chaos(ctx, seed, plan, scale)
        return
    history = history_path or engine.state_dir / "chaos" / f"history-seed{seed}.jsonl"
    outcome = _workload_run(engine, seed, plan, history, agents)
    if outcome.ok or not shrinking:
        if not outcome.ok:
            fail(LabError(f"{len(outcome.violations)} invariant violation(s), seed {seed}"))
        return
    invariant = outcome.violations[0].invariant
    click.echo(f"shrinking seed {seed} on {invariant} (a fresh lab per try)")
    smallest = asyncio.run(
        shrink(plan, invariant, _fresh_attempt(engine, seed, history, agents, scale), click.echo)
    )
    target = output or Path(DEFAULT_CASE)
    note = f"shrunk from {len(plan)} faults of seed {seed}"
    target.write_text(case_yaml(seed, invariant, smallest, note), encoding="utf-8")
    click.echo(f"shrunk to {len(smallest)} fault(s), written to {target}:")
    for fault in smallest:
        click.echo(f"  {fault.describe()}")
    fail(LabError(f"seed {seed} violates {invariant}; replay: drlab chaos --replay {target}"))


def _check_plan(
    faults: LabFaults, plan: list[ChaosFault], agents: tuple[WorkloadAgent, ...]
) -> None:
    """Every target and every agent's DC named before anything starts."""
    for fault in plan:
        if fault.kind in (FaultKind.KILL, FaultKind.PAUSE):
            faults.check_service(fault.target)
        elif fault.kind is FaultKind.PARTITION:
            for dc in fault.target.split():
                faults.check_dc(dc)
        else:
            faults.check_link(fault.target)
    for agent in agents:
        faults.check_dc(agent.dc)


def _workload_run(
    engine: Engine,
    seed: int,
    plan: list[ChaosFault],
    history: Path,
    agents: tuple[WorkloadAgent, ...],
) -> ChaosOutcome:
    engine.timeline.event(
        "chaos.plan", seed=seed, workload=True, faults=[fault.to_json() for fault in plan]
    )
    try:
        outcome = asyncio.run(run_workload_chaos(engine, plan, seed, history, click.echo, agents))
    except LabError as exc:
        fail(exc)
    for line in outcome_lines(outcome):
        click.echo(line)
    if outcome.failed_steps:
        click.echo(f"{outcome.failed_steps} chaos steps failed (see 'drlab timeline')")
    verdict = "no violation" if outcome.ok else f"{len(outcome.violations)} violation(s)"
    click.echo(f"chaos seed {seed}: {verdict}; history in {outcome.history.path}")
    return outcome


def _fresh_attempt(
    engine: Engine,
    seed: int,
    history: Path,
    agents: tuple[WorkloadAgent, ...],
    scale: float,
) -> Attempt:
    tries = 0

    async def attempt(faults: list[ChaosFault]) -> set[str]:
        nonlocal tries
        tries += 1
        await asyncio.to_thread(engine.down, _quiet)
        await asyncio.to_thread(engine.up, scale, _quiet)
        if problems := await wait_healthy(engine, 30.0):
            raise LabError(f"the lab did not come up for a shrink try: {'; '.join(problems)}")
        path = history.with_name(f"{history.stem}-shrink{tries}{history.suffix}")
        outcome = await run_workload_chaos(engine, faults, seed, path, _quiet, agents)
        return {violation.invariant for violation in outcome.violations}

    return attempt


def _idle_chaos(ctx: click.Context, seed: int, plan: list[ChaosFault], scale: float) -> None:
    faults = faults_of(ctx, source=f"chaos seed {seed}")
    engine = faults.engine
    engine.timeline.event(
        "chaos.plan", seed=seed, faults=[fault.to_json() for fault in plan], **faults.context
    )
    try:
        failures = asyncio.run(run_chaos(faults, plan, click.echo))
        problems = asyncio.run(wait_healthy(engine, timeout=15.0 + 60.0 * scale))
    except LabError as exc:
        fail(exc)
    engine.timeline.event("chaos.end", failures=failures, problems=problems, **faults.context)
    if problems:
        fail(LabError("the lab is not healthy after chaos: " + "; ".join(problems)))
    click.echo(f"chaos done: {failures} failed steps; lab healthy (services running, links up)")
    if failures:
        fail(LabError(f"{failures} chaos steps failed (see 'drlab timeline')"))


def _quiet(_line: str) -> None:
    """Progress of a shrink try's lab restart: the try's own line says what matters."""
