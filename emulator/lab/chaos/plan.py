"""``drlab chaos``: reproducible fault sequences drawn from a seed (DESIGN §3).

``plan_chaos`` is pure: the topology, the seed, the number of faults and the duration give the
same list of faults every time (``random.Random(seed)``, names drawn from sorted lists). A fault
is a kind (kill + restart, pause + resume, cut reset + heal, cut blackhole + heal, DC partition +
heal, toxic + removal), a target, when it starts and how long it holds, in lab seconds — scaled
by the lab's time scale like every timer. A fault holds 5-25 % of the duration, but of at most
``HOLD_SPAN``: 200 faults over 2,000 lab seconds hold 20-100 s each, a few at a time, not
dozens at once (a lab that is never whole runs no workload). Two faults never hold the same
service or link at the same time (a partition holds every link it cuts), so each revert undoes
exactly its own fault.

``run_chaos`` applies and reverts them on schedule through ``LabFaults`` (each one on the
timeline, tagged ``source=chaos seed N``) and, whatever happens — a failed step, Ctrl-C — ends by
bringing the lab back: every service running, every link healed, every chaos toxic removed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from emulator.lab.engine.protocol import Progress
from emulator.lab.errors import LabError
from emulator.lab.faults import LabFaults
from emulator.lab.topology import Topology


class FaultKind(StrEnum):
    KILL = "kill"
    PAUSE = "pause"
    CUT = "cut"
    BLACKHOLE = "blackhole"
    PARTITION = "partition"
    TOXIC = "toxic"


# How often each kind is drawn.
WEIGHTS: dict[FaultKind, int] = {
    FaultKind.KILL: 2,
    FaultKind.PAUSE: 2,
    FaultKind.CUT: 3,
    FaultKind.BLACKHOLE: 2,
    FaultKind.PARTITION: 1,
    FaultKind.TOXIC: 2,
}
HOLD_SHARE = (0.05, 0.25)  # a fault holds this share of the duration,
HOLD_SPAN = 400.0  # of at most this many lab seconds: a long run is many faults, not longer ones
PLACEMENT_TRIES = 50
TOXIC_PREFIX = "chaos"


@dataclass(frozen=True)
class ChaosFault:
    index: int
    kind: FaultKind
    target: str  # a service, a link, or "DC1 DC2" for a partition
    at: float
    hold: float
    toxic_type: str | None = None
    stream: str | None = None
    attributes: tuple[tuple[str, int], ...] = ()

    @property
    def toxic_name(self) -> str:
        return f"{TOXIC_PREFIX}{self.index}"

    def describe(self) -> str:
        what = {
            FaultKind.KILL: f"kill {self.target}, start it again",
            FaultKind.PAUSE: f"pause {self.target}, resume it",
            FaultKind.CUT: f"cut {self.target} (reset), heal it",
            FaultKind.BLACKHOLE: f"cut {self.target} (blackhole), heal it",
            FaultKind.PARTITION: f"partition {self.target}, heal it",
            FaultKind.TOXIC: f"toxic {self.toxic_type} on {self.target} ({self.stream} "
            + " ".join(f"{k}={v}" for k, v in self.attributes)
            + "), remove it",
        }[self.kind]
        return f"#{self.index:<3} at {self.at:7.1f} s  for {self.hold:6.1f} s  {what}"

    def step(self, applying: bool) -> str:
        """One line for the moment the fault is applied or reverted."""
        if self.kind is FaultKind.TOXIC:
            action = f"add toxic {self.toxic_name}" if applying else f"remove {self.toxic_name}"
            return f"#{self.index} {action} ({self.toxic_type}) on {self.target}"
        verbs = {
            FaultKind.KILL: ("kill", "start"),
            FaultKind.PAUSE: ("pause", "resume"),
            FaultKind.CUT: ("cut (reset)", "heal"),
            FaultKind.BLACKHOLE: ("cut (blackhole)", "heal"),
            FaultKind.PARTITION: ("partition", "heal partition"),
        }[self.kind]
        return f"#{self.index} {verbs[0] if applying else verbs[1]} {self.target}"

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "index": self.index,
            "kind": str(self.kind),
            "target": self.target,
            "at": self.at,
            "hold": self.hold,
        }
        if self.toxic_type:
            record.update(
                toxic=self.toxic_type, stream=self.stream, attributes=dict(self.attributes)
            )
        return record


def _holds(topology: Topology, kind: FaultKind, target: str) -> set[str]:
    """What a fault occupies while it holds: its service, its link, or a partition's links."""
    if kind is FaultKind.PARTITION:
        dc_a, dc_b = target.split()
        return set(topology.crossing(dc_a, dc_b))
    return {target}


def plan_chaos(topology: Topology, seed: int, faults: int, duration: float) -> list[ChaosFault]:
    rng = random.Random(seed)
    services = sorted(s.name for s in topology.services.values() if s.kind != "links")
    links = sorted(topology.links)
    dcs = topology.dcs()
    pairs = [f"{a} {b}" for i, a in enumerate(dcs) for b in dcs[i + 1 :]]
    targets: dict[FaultKind, list[str]] = {
        FaultKind.KILL: services,
        FaultKind.PAUSE: services,
        FaultKind.CUT: links,
        FaultKind.BLACKHOLE: links,
        FaultKind.PARTITION: pairs,
        FaultKind.TOXIC: links,
    }
    kinds = [kind for kind in WEIGHTS if targets[kind]]
    if not kinds:
        raise LabError("the topology has nothing chaos can break (no services, no links)")
    weights = [WEIGHTS[kind] for kind in kinds]
    busy: list[tuple[float, float, set[str]]] = []
    plan: list[ChaosFault] = []
    for index in range(1, faults + 1):
        for _ in range(PLACEMENT_TRIES):
            kind = rng.choices(kinds, weights)[0]
            target = rng.choice(targets[kind])
            hold = round(rng.uniform(*HOLD_SHARE) * min(duration, HOLD_SPAN), 1)
            at = round(rng.uniform(0.0, duration - hold), 1)
            held = _holds(topology, kind, target)
            if not any(at < end and start < at + hold and held & h for start, end, h in busy):
                break
        else:  # a crowded plan: this fault waits until everything before it is reverted
            at = round(max(end for _, end, _ in busy), 1)
        busy.append((at, at + hold, held))
        toxic = (
            _draw_toxic(rng, topology.links[target].protocol)
            if kind is FaultKind.TOXIC
            else (None, None, ())
        )
        plan.append(ChaosFault(index, kind, target, at, hold, *toxic))
    ordered = sorted(plan, key=lambda fault: (fault.at, fault.index))
    return [dataclasses.replace(fault, index=i) for i, fault in enumerate(ordered, 1)]


def _draw_toxic(rng: random.Random, protocol: str) -> tuple[str, str, tuple[tuple[str, int], ...]]:
    # A UDP link has no byte stream to slice (the relay refuses a slicer there).
    kinds = ["latency", "bandwidth", "slicer", "timeout", "reset_peer"]
    toxic_type = rng.choice([k for k in kinds if not (protocol == "udp" and k == "slicer")])
    stream = rng.choice(["downstream", "upstream"])
    if toxic_type == "latency":
        latency = rng.randrange(50, 501, 50)
        attributes = {"latency": latency, "jitter": rng.randrange(0, latency // 2 + 1, 10)}
    elif toxic_type == "bandwidth":
        attributes = {"rate": rng.choice([10, 50, 100, 1000])}
    elif toxic_type == "slicer":
        size = rng.randrange(16, 513, 16)
        attributes = {"average_size": size, "size_variation": size // 2, "delay": 100}
    else:
        attributes = {"timeout": rng.randrange(0, 2001, 250)}
    return toxic_type, stream, tuple(attributes.items())


# -- running a plan -----------------------------------------------------------------------


async def apply_fault(faults: LabFaults, fault: ChaosFault) -> None:
    if fault.kind is FaultKind.KILL:
        await faults.kill(fault.target)
    elif fault.kind is FaultKind.PAUSE:
        await faults.pause(fault.target)
    elif fault.kind in (FaultKind.CUT, FaultKind.BLACKHOLE):
        mode = "reset" if fault.kind is FaultKind.CUT else "blackhole"
        await faults.cut([fault.target], mode=mode)
    elif fault.kind is FaultKind.PARTITION:
        dc_a, dc_b = fault.target.split()
        await faults.partition(dc_a, dc_b)
    else:
        assert fault.toxic_type is not None and fault.stream is not None
        await faults.add_toxic(
            fault.target,
            fault.toxic_type,
            dict(fault.attributes),
            name=fault.toxic_name,
            stream=fault.stream,
        )


async def revert_fault(faults: LabFaults, fault: ChaosFault, progress: Progress) -> None:
    if fault.kind is FaultKind.KILL:
        await faults.start(fault.target, progress)
    elif fault.kind is FaultKind.PAUSE:
        await faults.resume(fault.target)
    elif fault.kind in (FaultKind.CUT, FaultKind.BLACKHOLE):
        await faults.heal([fault.target])
    elif fault.kind is FaultKind.PARTITION:
        await faults.heal(faults.topology.crossing(*fault.target.split()))
    else:
        await faults.remove_toxic(fault.target, fault.toxic_name)


# Told of each step as it is taken: the fault, applied (True) or reverted, and the error if
# it failed.
StepListener = Callable[[ChaosFault, bool, str | None], None]


async def run_chaos(
    faults: LabFaults,
    plan: list[ChaosFault],
    progress: Progress,
    on_step: StepListener | None = None,
) -> int:
    """Apply and revert every fault on schedule, then restore the lab; returns failed steps."""
    scale = await asyncio.to_thread(faults.engine.time_scale)
    steps = sorted(
        [(f.at, 1, f, True) for f in plan] + [(f.at + f.hold, 0, f, False) for f in plan],
        key=lambda step: (step[0], step[1], step[2].index),
    )
    failures = 0
    begun = time.monotonic()
    try:
        for at, _, fault, applying in steps:
            await asyncio.sleep(max(0.0, begun + at * scale - time.monotonic()))
            stamp = f"[{time.monotonic() - begun:6.2f} s] {fault.step(applying)}"
            try:
                if applying:
                    await apply_fault(faults, fault)
                else:
                    await revert_fault(faults, fault, progress)
            except LabError as exc:
                failures += 1
                progress(f"{stamp} FAILED: {exc}")
                if on_step is not None:
                    on_step(fault, applying, str(exc))
                continue
            progress(stamp)
            if on_step is not None:
                on_step(fault, applying, None)
    finally:
        toxics = {(f.target, f.toxic_name) for f in plan if f.kind is FaultKind.TOXIC}
        await faults.restore(progress, toxics)
    return failures
