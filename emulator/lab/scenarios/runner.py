"""Runs one scenario on a fresh lab: baseline (B.1-B.3), steps, outcome checks, revert, report.

The run starts the scenario's lab (``LabSession``), logs every agent on through its DC's proxy,
places and answers the setup's calls, and checks the baseline as outcomes B.1-B.3 of that
setup. Then the steps run in order; a ``check: ID`` step waits for that outcome to hold within
its deadline (lab seconds x time scale, never less than ``MIN_DEADLINE`` real seconds, because
a loopback request on a loaded 2-core machine takes that long whatever the scale) and, with
``hold``, to keep holding. Outcomes no step checks are checked after the last step; ``report``
(G.2) last of all. Faults are always reverted and the lab stopped, whatever happened.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from emulator.lab.errors import LabError
from emulator.lab.scenarios.actions import FAULTS, STEPS, answer_call, place_call
from emulator.lab.scenarios.checks import NOT_OBSERVABLE, Verdict, check
from emulator.lab.scenarios.labsession import LabSession
from emulator.lab.scenarios.model import Expect, Outcome, Scenario
from emulator.lab.scenarios.observer import DesktopOptions, Observer, wait_until
from emulator.lab.timeline import ROUTINE_EVENTS, Timeline

MIN_DEADLINE = 10.0
REGISTERED_WITHIN = 60.0  # lab s for a softphone's first registration (its expiry)
POLL = 0.05

Progress = Callable[[str], None]
# The pseudo-service of ``--service-arg``: options of every agent's WWE desktop (in the runner).
WWE_DESKTOPS = "wwe"


def desktop_options(args: Sequence[str]) -> DesktopOptions:
    """The WWE desktops' options a run was given (``wwe=--give-up-after=20``,
    ``wwe=--no-handoff``): fault injection for the mutation matrix, the guide's values
    otherwise."""
    options = DesktopOptions()
    for arg in args:
        name, sep, value = arg.partition("=")
        if name == "--no-handoff" and not sep:
            options = replace(options, handoff=False)
            continue
        if name != "--give-up-after" or not sep:
            raise LabError(f"wwe takes --give-up-after=SECONDS or --no-handoff, not {arg!r}")
        try:
            options = replace(options, give_up_after=float(value))
        except ValueError:
            raise LabError(f"wwe --give-up-after wants seconds, not {value!r}") from None
    return options


@dataclass(frozen=True)
class OutcomeResult:
    id: str
    title: str
    status: str  # pass | fail
    observed_at: float | None  # seconds since the run started (the lab was up)
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "observed_at": None if self.observed_at is None else round(self.observed_at, 3),
            "detail": self.detail,
        }


@dataclass
class ScenarioResult:
    name: str
    title: str
    time_scale: float
    outcomes: list[OutcomeResult] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    best_practice: dict[str, list[str]] = field(default_factory=dict)
    started: float = 0.0
    duration: float = 0.0
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.status == "pass" for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "passed": self.passed,
            "time_scale": self.time_scale,
            "started": self.started,
            "duration": round(self.duration, 3),
            "error": self.error,
            "best_practice_violations": self.best_practice,
            "outcomes": [outcome.to_json() for outcome in self.outcomes],
            "timeline": self.timeline,
        }


@dataclass(frozen=True)
class RunOptions:
    compose: Path
    state_dir: Path
    time_scale: float = 0.05
    # Arguments added to services for every scenario (the negative test breaks a rule here).
    extra_args: Mapping[str, Sequence[str]] = field(default_factory=dict)
    engine: str = "embedded"  # how each run's lab runs: embedded (processes) | compose (Docker)


class ScenarioRun:
    def __init__(self, scenario: Scenario, options: RunOptions, progress: Progress) -> None:
        self.scenario = scenario
        self.options = options
        self.progress = progress
        args: dict[str, list[str]] = {k: list(v) for k, v in scenario.lab_args.items()}
        for service, extra in options.extra_args.items():
            args.setdefault(service, []).extend(extra)
        self.desktop_args = args.pop(WWE_DESKTOPS, [])
        state_dir = options.state_dir / "scenarios" / scenario.name
        softphones = {a.dn: a.owner for a in scenario.agents.values() if a.phone == "softphone"}
        self.lab = LabSession(
            options.compose,
            state_dir,
            options.time_scale,
            args,
            progress,
            softphones,
            engine=options.engine,
        )
        self.result = ScenarioResult(scenario.name, scenario.title, options.time_scale)
        self.observer: Observer | None = None
        self._t0 = 0.0

    async def run(self) -> ScenarioResult:
        scenario = self.scenario
        engine = "" if self.options.engine == "embedded" else f", {self.options.engine} engine"
        self.progress(
            f"== {scenario.name}: {scenario.title} (time scale {self.options.time_scale}{engine})"
        )
        begun = time.monotonic()
        self.result.started = time.time()
        try:
            await self.lab.up()
            self._t0 = time.time()
            self.observer = Observer(
                self.lab,
                dict(scenario.agents),
                self.lab.state_dir / "logs",
                desktop_options(self.desktop_args),
            )
            self.progress(f"   lab up in {time.monotonic() - begun:.1f} s; baseline")
            await self._baseline()
            await self._steps()
            await self._remaining()
        except (LabError, OSError) as exc:
            self.result.error = str(exc)
            self.progress(f"   ERROR {exc}")
        except Exception as exc:  # a bug must still revert the faults and stop the lab
            self.result.error = f"{type(exc).__name__}: {exc}"
            self.progress(f"   ERROR {traceback.format_exc()}")
        finally:
            await self._finish()
        self._not_run()
        self.result.duration = time.monotonic() - begun
        verdict = "PASSED" if self.result.passed else "FAILED"
        self.progress(f"== {scenario.name} {verdict} in {self.result.duration:.1f} s")
        return self.result

    # -- baseline -------------------------------------------------------------------------

    async def _baseline(self) -> None:
        obs = self._obs()
        setup = self.scenario
        for agent in setup.agents.values():
            if agent.phone == "softphone":
                # The softphone registers at its owner first (LabSession): ownership follows.
                at = {"agent": agent.name, "node": agent.owner}
                await self._until(Expect(0, "phone_registration", at), REGISTERED_WITHIN)
        for agent in setup.agents.values():
            await STEPS["login"].handler(
                obs,
                {
                    "agent": agent.name,
                    "dc": agent.dc,
                    "gws": agent.gws,
                    "label": f"baseline-{agent.name}",
                },
            )
        desktops = ", ".join(
            f"{a.name} ({a.phone}, DN {a.dn}) on {a.gws}@{a.dc}" for a in setup.agents.values()
        )
        b1 = Expect(
            0,
            "all",
            {},
            tuple(
                Expect(0, "wwe_node", {"agent": a.name, "node": a.gws})
                for a in setup.agents.values()
            ),
        )
        await self._outcome(Outcome("B.1", f"Desktops: {desktops}", b1, 10.0, 0.0, 0))
        owners = ", ".join(f"{a.dn} by {a.owner}" for a in setup.agents.values())
        b2 = Expect(
            0,
            "all",
            {},
            tuple(
                Expect(0, "owner", {"agent": a.name, "node": a.owner})
                for a in setup.agents.values()
            ),
        )
        await self._outcome(Outcome("B.2", f"DN ownership: {owners}", b2, 10.0, 0.0, 0))
        for call in setup.calls.values():
            record = await place_call(obs, call.name, call.agent, call.node)
            await answer_call(obs, record)
        checks: list[Expect] = [
            Expect(0, "wwe_voice", {"agent": a.name, "logged_in": True})
            for a in setup.agents.values()
        ]
        for call in setup.calls.values():
            checks.append(Expect(0, "node_call", {"call": call.name}))
            checks.append(
                Expect(
                    0, "wwe_call", {"agent": call.agent, "call": call.name, "state": "Established"}
                )
            )
        if setup.calls:
            # "Talking", measured by the phones (B.3: "Agent1 handles Call1 and Agent2 handles
            # Call2"), not read off the call's state.
            checks.append(Expect(0, "media", {"calls": list(setup.calls), "verdict": "talking"}))
        calls = ", ".join(
            f"{c.agent} talks on {c.name} (on {c.node})" for c in setup.calls.values()
        )
        title = "Agents logged in" + (f"; {calls}" if calls else "")
        await self._outcome(
            Outcome("B.3", title, Expect(0, "all", {}, tuple(checks)), 10.0, 0.0, 0)
        )

    async def _until(self, expect: Expect, within: float) -> None:
        obs = self._obs()
        last = Verdict(False, "not checked")

        async def holds() -> bool:
            nonlocal last
            last = await check(obs, expect)
            return last.ok

        if not await wait_until(holds, obs.deadline(MIN_DEADLINE, within), POLL):
            raise LabError(f"baseline: {last.detail}")

    # -- steps ----------------------------------------------------------------------------

    async def _steps(self) -> None:
        obs = self._obs()
        total = len(self.scenario.steps)
        for index, step in enumerate(self.scenario.steps, 1):
            where = f"   step {index}/{total} (line {step.line})"
            if step.kind == "check":
                await self._outcome(self.scenario.outcomes[step.name])
                continue
            if step.kind == "mark":
                obs.mark(step.name)
                continue
            if step.name in FAULTS:
                obs.mark("fault")
            obs.log.event("scenario.step", step=index, action=step.name, line=step.line)
            try:
                said = await STEPS[step.name].handler(obs, step.params)
            except LabError as exc:
                said = f"FAILED: {exc}"
                obs.log.event("scenario.step_failed", level="warning", step=index, error=str(exc))
            self.progress(f"{where}: {said}")

    async def _remaining(self) -> None:
        left = [o for o in self.scenario.outcomes.values() if o.id not in self._obs().verdicts]
        for outcome in sorted(left, key=lambda o: o.expect.kind == "report"):
            await self._outcome(outcome)

    async def _outcome(self, outcome: Outcome) -> None:
        obs = self._obs()
        last = Verdict(False, "not checked")

        async def holds() -> bool:
            nonlocal last
            last = await check(obs, outcome.expect)
            # Waiting does not make missing evidence appear: stop at once (the verdict is fail).
            return last.ok or last.detail.startswith(NOT_OBSERVABLE)

        deadline = obs.deadline(MIN_DEADLINE, outcome.within) if outcome.within else 0.0
        ok = await wait_until(holds, deadline, POLL) and last.ok
        observed = time.time() - self._t0
        if ok and outcome.hold:
            held_for = outcome.hold * obs.scale
            broke = await wait_until(_negated(holds), held_for, POLL)
            if broke:
                ok = False
                last = Verdict(False, f"held less than {outcome.hold} lab s: {last.detail}")
            else:
                last = Verdict(True, f"held {outcome.hold} lab s: {last.detail}")
        self._record(outcome, ok, observed, last.detail)

    def _record(self, outcome: Outcome, ok: bool, observed: float | None, detail: str) -> None:
        obs = self._obs()
        status = "pass" if ok else "fail"
        fault = obs.marks.get("fault")
        if observed is not None and fault is not None:
            lab_s = (observed + self._t0 - fault) / obs.scale
            detail = f"{detail} (t+{lab_s:.1f} lab s after the fault)"
        obs.verdicts[outcome.id] = status
        result = OutcomeResult(outcome.id, outcome.title, status, observed, detail)
        self.result.outcomes.append(result)
        obs.log.event("scenario.outcome", outcome=outcome.id, status=status, detail=detail)
        self.progress(f"   {status.upper():<4} {outcome.id:<6} {outcome.title} — {detail}")

    def _not_run(self) -> None:
        done = {o.id for o in self.result.outcomes}
        expected = ["B.1", "B.2", "B.3", *self.scenario.outcomes]
        for oid in expected:
            if oid not in done:
                title = (
                    self.scenario.outcomes[oid].title
                    if oid in self.scenario.outcomes
                    else "baseline"
                )
                detail = f"not run: {self.result.error or 'the run stopped before it'}"
                self.result.outcomes.append(OutcomeResult(oid, title, "fail", None, detail))

    # -- end ------------------------------------------------------------------------------

    async def _finish(self) -> None:
        try:
            if self.observer is not None:
                self.result.best_practice = dict(self.observer.best_practice)
                await self.observer.close()
            reverted = await self.lab.revert()
            self.progress(f"   reverted: {', '.join(reverted) or 'nothing to revert'}")
        except Exception as exc:
            self.progress(f"   revert failed: {exc}")
        finally:
            timeline = Timeline(self.lab.state_dir, exclude=ROUTINE_EVENTS)
            self.result.timeline = [
                e for e in timeline.read() if float(e.get("ts", 0)) >= self.result.started
            ]
            await self.lab.down()

    def _obs(self) -> Observer:
        assert self.observer is not None
        return self.observer


def _negated(predicate: Callable[[], Any]) -> Callable[[], Any]:
    async def negated() -> bool:
        return not await predicate()

    return negated


async def run_scenarios(
    scenarios: Sequence[Scenario], options: RunOptions, progress: Progress
) -> list[ScenarioResult]:
    results = []
    for scenario in scenarios:
        results.append(await ScenarioRun(scenario, options, progress).run())
    return results


def run_all(
    scenarios: Sequence[Scenario], options: RunOptions, progress: Progress
) -> list[ScenarioResult]:
    return asyncio.run(run_scenarios(scenarios, options, progress))
