"""One chaos run with a workload: agents and calls live, the seeded faults, the heal, the checks.

The order, so that every invariant has its evidence:

1. the workload starts and every agent logs on (faults hit live agents, not an idle lab);
2. the faults are applied and reverted on schedule (``run_chaos``), each one in the history;
   meanwhile a monitor notes any service that is down with no fault holding it (``crash``);
3. after the heal the agents stop working and the customers hang up every call;
4. the settled invariants (one owner per DN, no stuck call on a node, a phone or a desktop still
   connected) are polled until they hold or the bound passes, and the last state read is kept;
   then every agent opens a new page, logs on and stays Ready (``relogin``), within the bound;
5. every invariant is checked over the history and all the services' logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.wwe import AgentState, Connection
from emulator.lab.chaos.checker import (
    INVARIANTS,
    Evidence,
    FaultWindow,
    Violation,
    check_all,
)
from emulator.lab.chaos.history import History
from emulator.lab.chaos.livelab import LiveLab
from emulator.lab.chaos.plan import ChaosFault, FaultKind, run_chaos
from emulator.lab.chaos.workload import Desk, Workload, WorkloadAgent, WorkloadTimes
from emulator.lab.engine.logs import records
from emulator.lab.engine.protocol import Engine, Progress
from emulator.lab.faults import LabFaults

SETTLE = 90.0  # lab seconds after the heal for the lab to settle: the 60 s give-up, the 30 s move
MIN_SETTLE = 20.0  # real seconds, whatever the time scale
RELOGIN_QUIET = 70.0  # lab seconds Ready after the heal: past the 60 s give-up of old pages
MIN_RELOGIN_QUIET = 1.0  # real seconds
LOGON_WAIT = 15.0  # real seconds for every agent to log on before the first fault
MONITOR_PERIOD = 0.5  # real seconds between looks at the services' states
LOG_FLUSH = 0.3  # real seconds for the services' last log lines to be written
WINDOW_BEFORE = 20  # history entries shown before a violation
WINDOW_AFTER = 8  # and after it


@dataclass
class ChaosOutcome:
    seed: int
    plan: list[ChaosFault]
    history: History
    violations: list[Violation]
    failed_steps: int
    operations: Counter[tuple[str, str]] = field(default_factory=Counter)  # (op, phase) -> n
    logouts: Counter[str] = field(default_factory=Counter)  # reason -> n

    @property
    def ok(self) -> bool:
        return not self.violations


async def run_workload_chaos(
    engine: Engine,
    plan: list[ChaosFault],
    seed: int,
    history_path: Path,
    progress: Progress,
    agents: tuple[WorkloadAgent, ...],
    times: WorkloadTimes | None = None,
) -> ChaosOutcome:
    scale = await asyncio.to_thread(engine.time_scale)
    history = History(history_path)
    faults = LabFaults(engine, source=f"chaos seed {seed}")
    settle = max(SETTLE * scale, MIN_SETTLE)
    async with LiveLab(engine) as lab:
        workload = Workload(lab, history, agents, seed, scale, times)
        history.record("phase", name="workload", seed=seed, faults=[f.to_json() for f in plan])
        workload.start()
        await _all_logged_on(workload)
        held: set[str] = set()
        failures = 0
        monitor = asyncio.create_task(_monitor(engine, history, held))
        try:
            failures = await run_chaos(faults, plan, progress, _recorder(history, held))
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            healed_at = time.time()
            history.record("phase", name="heal")
            await workload.stop()
        progress("healed; the customers hang up, every agent logs on again")
        await _hang_up_all(workload)
        evidence = await _settled(engine, lab, workload, history, plan, healed_at, settle)
        await _relogin_all(workload, settle)
        await workload.close()
    await asyncio.sleep(LOG_FLUSH)
    evidence.logs = _read_logs(engine, since=history.entries[0]["ts"])
    violations = check_all(evidence)
    for violation in violations:
        history.record("violation", invariant=violation.invariant, detail=violation.detail)
    history.close()
    return ChaosOutcome(
        seed,
        plan,
        history,
        violations,
        failures,
        Counter(
            (e["op"], e["phase"])
            for e in history.entries
            if e["kind"] == "op" and e["phase"] != "invoke"
        ),
        Counter(str(e.get("reason")) for e in evidence.logs if e.get("event") == "agent.logout"),
    )


def _recorder(history: History, held: set[str]) -> Any:
    def on_step(fault: ChaosFault, applying: bool, error: str | None) -> None:
        history.record(
            "fault",
            index=fault.index,
            phase=("apply" if applying else "revert") + (" failed" if error else ""),
            fault=fault.describe(),
            **({"error": error} if error else {}),
        )
        if fault.kind in (FaultKind.KILL, FaultKind.PAUSE):
            if applying:
                held.add(fault.target)
            elif error is None:
                held.discard(fault.target)

    return on_step


async def _monitor(engine: Engine, history: History, held: set[str]) -> None:
    """Note a service seen down twice in a row with no kill or pause holding it."""
    names = [n for n, s in engine.topology.services.items() if s.kind != "links"]
    suspects: set[str] = set()
    reported: set[str] = set()
    while True:
        await asyncio.sleep(MONITOR_PERIOD)
        states = await asyncio.gather(*(asyncio.to_thread(engine.service_state, n) for n in names))
        for name, state in zip(names, states, strict=True):
            down = state != "running" and name not in held
            if down and name in suspects and name not in reported:
                history.record("crash", service=name, state=state)
                reported.add(name)
            suspects = (suspects | {name}) if down else (suspects - {name})
            if not down:
                reported.discard(name)


async def _all_logged_on(workload: Workload) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LOGON_WAIT):
            # The desks' clients are replaced as pages reopen: no one event to wait on.
            while not all(  # noqa: ASYNC110
                desk.client is not None and desk.client.voice.agent_state is AgentState.READY
                for desk in workload.desks.values()
            ):
                await asyncio.sleep(0.1)


async def _hang_up_all(workload: Workload) -> None:
    for call in await workload.lab.phone_calls(workload.pstn):
        if call.get("direction") == "outbound" and call.get("state") != "ended":
            await workload.hang_up(str(call.get("id")))


async def _relogin_all(workload: Workload, settle: float) -> None:
    """Every agent opens a new page, logs on and is Ready, and stays Ready for ``quiet``: an
    old page's session still ending (its unregister logs the agent out, seed S1) makes it log in
    again, as a real agent would. One ``relogin`` operation per agent says whether it did."""
    loop = asyncio.get_running_loop()
    quiet = max(workload.lab_seconds(RELOGIN_QUIET), MIN_RELOGIN_QUIET)

    async def one(desk: Desk) -> None:
        operation = workload.history.invoke(desk.agent.user, "relogin")
        deadline = loop.time() + settle
        fresh, ready_since = False, None
        while loop.time() < deadline:
            client = desk.client
            if not fresh or client is None or client.connection is not Connection.CONNECTED:
                fresh = await workload.log_on(desk, "login")
                if not fresh:
                    await asyncio.sleep(max(workload.lab_seconds(workload.times.retry_min), 0.2))
                continue
            state = client.voice.agent_state
            if state is AgentState.READY:
                ready_since = ready_since or loop.time()
                if loop.time() - ready_since >= quiet:
                    operation.ok(node=client.node)
                    return
            else:
                ready_since = None
                await _ready(workload, desk)
            await asyncio.sleep(0.1)
        operation.fail(f"not logged in and Ready for {quiet:.1f} s within {settle:.1f} s")

    await asyncio.gather(*(one(desk) for desk in workload.desks.values()))


async def _ready(workload: Workload, desk: Desk) -> None:
    client = desk.client
    assert client is not None
    state = client.voice.agent_state
    live = any(not call.state.ended for call in client.calls.values())
    if state is AgentState.LOGGED_OUT and client.voice.available and not live:
        await workload.request(
            desk,
            "agent_login",
            client.agent_login,
            lambda: client.voice.agent_state is not AgentState.LOGGED_OUT,
        )
    elif state in (AgentState.NOT_READY, AgentState.LOGGED_IN):
        await workload.request(
            desk, "ready", client.ready, lambda: client.voice.agent_state is AgentState.READY
        )


async def _settled(
    engine: Engine,
    lab: LiveLab,
    workload: Workload,
    history: History,
    plan: list[ChaosFault],
    healed_at: float,
    settle: float,
) -> Evidence:
    evidence = Evidence(
        engine.topology,
        history.entries,
        [],
        _windows(history, plan, healed_at),
        agents=tuple(workload.desks),
        healed_at=healed_at,
    )
    settled = [invariant.name for invariant in INVARIANTS if invariant.settled]
    deadline = asyncio.get_running_loop().time() + settle
    while True:
        evidence.nodes = await lab.node_states()
        evidence.phone_calls = {phone: await lab.phone_calls(phone) for phone in lab.phones()}
        # The pages that lived through the faults: one still connected must have dropped
        # every call the customers ended (a page that gave up shows what it last knew).
        evidence.desktop_calls = {
            user: sorted(desk.client.calls)
            for user, desk in workload.desks.items()
            if desk.client is not None and desk.client.connection is Connection.CONNECTED
        }
        if not check_all(evidence, settled) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    names = list(engine.topology.services)
    states = await asyncio.gather(*(asyncio.to_thread(engine.service_state, n) for n in names))
    evidence.services = dict(zip(names, states, strict=True))
    history.record("phase", name="settled", nodes=sorted(evidence.nodes))
    return evidence


def _windows(history: History, plan: list[ChaosFault], healed_at: float) -> list[FaultWindow]:
    """When each fault of ``plan`` really held: from its apply entry to its revert entry (the
    heal, when its revert failed)."""
    faults = {fault.index: fault for fault in plan}
    applied: dict[int, float] = {}
    reverted: dict[int, float] = {}
    for entry in history.entries:
        if entry["kind"] != "fault":
            continue
        if entry["phase"].startswith("apply"):
            applied[entry["index"]] = entry["ts"]
        elif entry["phase"] == "revert":
            reverted[entry["index"]] = entry["ts"]
    return [
        FaultWindow(faults[index], at, reverted.get(index, healed_at))
        for index, at in sorted(applied.items())
    ]


def _read_logs(engine: Engine, since: float) -> list[dict[str, Any]]:
    """The services' lines of this run (a lab's logs hold every run since it came up)."""
    entries = [
        entry
        for path in engine.logs(None)
        for entry in records(path)
        if float(entry.get("ts") or 0.0) >= since
    ]
    entries.sort(key=lambda e: float(e.get("ts") or 0.0))
    return entries


def outcome_lines(outcome: ChaosOutcome, window: float = 5.0) -> list[str]:
    """The verdict: per invariant, and for a violation the seed, the faults and the history
    around it."""
    lines = [f"checker: {len(INVARIANTS)} invariants over {len(outcome.history.entries)} entries"]
    broken = Counter(v.invariant for v in outcome.violations)
    for invariant in INVARIANTS:
        mark = f"VIOLATED ({broken[invariant.name]})" if broken[invariant.name] else "holds"
        lines.append(f"  {invariant.name:<28} {mark}   -- {invariant.rule}")
    ops = ", ".join(f"{op} {phase} {n}" for (op, phase), n in sorted(outcome.operations.items()))
    lines.append(f"operations: {ops or 'none'}")
    logouts = ", ".join(f"{reason} {n}" for reason, n in sorted(outcome.logouts.items()))
    lines.append(f"agent logouts by rule: {logouts or 'none'}")
    if not outcome.violations:
        return lines
    lines.append(f"seed {outcome.seed}, faults:")
    lines += [f"  {fault.describe()}" for fault in outcome.plan]
    for violation in outcome.violations[:10]:
        lines.append(f"VIOLATION {violation.invariant}: {violation.detail}")
        if violation.ts is None:
            continue
        before = [
            e for e in outcome.history.entries if violation.ts - window <= e["ts"] <= violation.ts
        ]
        after = [
            e
            for e in outcome.history.entries
            if violation.ts < e["ts"] <= violation.ts + window / 2
        ]
        lines += ["    " + _entry_line(entry) for entry in before[-WINDOW_BEFORE:]]
        lines.append(f"    ---- {violation.invariant} violated here")
        lines += ["    " + _entry_line(entry) for entry in after[:WINDOW_AFTER]]
    if len(outcome.violations) > 10:
        lines.append(f"... and {len(outcome.violations) - 10} more (see the history)")
    lines.append(f"history: {outcome.history.path}")
    return lines


def _entry_line(entry: dict[str, Any]) -> str:
    rest = " ".join(f"{k}={v}" for k, v in entry.items() if k not in ("t", "ts", "kind", "faults"))
    return f"[{entry['t']:8.2f} s] {entry['kind']:<8} {rest}"
