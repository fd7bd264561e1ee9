"""Shrinking a failing chaos run to the smallest fault sequence that still breaks the invariant.

``shrink`` is delta debugging (Zeller's ddmin) over the faults, then over their holds: a
candidate is kept when a fresh run of it still violates the *same* invariant. Faults are tried
alone first (one fault is the commonest cause), then complements of ever smaller chunks; each
kept candidate is re-timed so its first fault starts at once (no idle lab seconds). Then each
fault's hold is halved while the violation remains, down to ``MIN_HOLD``. Every attempt is a
whole run on a fresh lab, so a shrunk case is one that really fails, not a guess.

The result is written as a chaos case (``case_yaml``): the seed, the invariant, and the faults
with their times, which ``drlab chaos --replay FILE`` runs again with the workload and the
checker, exit 1 while it still fails: a regression case to keep with the tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from emulator.lab.chaos.plan import ChaosFault, FaultKind
from emulator.lab.errors import LabError

MIN_HOLD = 1.0  # lab seconds
CASE_KIND = "drlab-chaos-case"

# A fresh run of these faults; the names of the invariants it violated.
Attempt = Callable[[list[ChaosFault]], Awaitable[set[str]]]


def retimed(faults: Sequence[ChaosFault]) -> list[ChaosFault]:
    """The faults in their order, numbered again, the first one starting at 0."""
    if not faults:
        return []
    first = min(fault.at for fault in faults)
    ordered = sorted(faults, key=lambda fault: (fault.at, fault.index))
    return [
        dataclasses.replace(fault, index=i, at=round(fault.at - first, 1))
        for i, fault in enumerate(ordered, 1)
    ]


async def shrink(
    plan: Sequence[ChaosFault],
    invariant: str,
    attempt: Attempt,
    progress: Callable[[str], None],
) -> list[ChaosFault]:
    tries = 0

    async def still_fails(candidate: list[ChaosFault]) -> bool:
        nonlocal tries
        tries += 1
        violated = await attempt(retimed(candidate))
        kept = invariant in violated
        shown = ", ".join(f"#{f.index}" for f in candidate)
        progress(
            f"shrink try {tries}: {len(candidate)} fault(s) [{shown}] -> "
            + ("still violates " + invariant if kept else "passes")
        )
        return kept

    current = list(plan)
    for fault in current:  # one fault alone
        if len(current) > 1 and await still_fails([fault]):
            current = [fault]
            break
    chunks = 2
    while len(current) > 1:
        size = max(1, len(current) // chunks)
        removed = False
        for start in range(0, len(current), size):
            candidate = current[:start] + current[start + size :]
            if candidate and await still_fails(candidate):
                current, chunks, removed = candidate, max(chunks - 1, 2), True
                break
        if not removed:
            if size == 1:
                break
            chunks = min(chunks * 2, len(current))
    for i, fault in enumerate(current):
        while fault.hold / 2 >= MIN_HOLD:
            shorter = dataclasses.replace(fault, hold=round(fault.hold / 2, 1))
            candidate = [*current[:i], shorter, *current[i + 1 :]]
            if not await still_fails(candidate):
                break
            current, fault = candidate, shorter
    return retimed(current)


def case_yaml(seed: int, invariant: str, faults: Sequence[ChaosFault], note: str = "") -> str:
    document: dict[str, Any] = {
        "kind": CASE_KIND,
        "seed": seed,
        "invariant": invariant,
        "faults": [_fault_record(fault) for fault in faults],
    }
    if note:
        document["note"] = note
    return yaml.safe_dump(document, sort_keys=False)


def _fault_record(fault: ChaosFault) -> dict[str, Any]:
    record = fault.to_json()
    del record["index"]
    return record


def read_case(path: Path) -> tuple[int, str, list[ChaosFault]]:
    """A chaos case file: its seed, its invariant and its faults; ``file: what`` on bad input."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read the case: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != CASE_KIND:
        raise LabError(f"{path}: not a chaos case (kind: {CASE_KIND})")
    seed, invariant, records = (document.get(k) for k in ("seed", "invariant", "faults"))
    if not isinstance(seed, int) or not isinstance(invariant, str):
        raise LabError(f"{path}: a case needs seed (an integer) and invariant (a name)")
    if not isinstance(records, list) or not records:
        raise LabError(f"{path}: a case needs a list of faults")
    faults = [_read_fault(path, i, record) for i, record in enumerate(records, 1)]
    return seed, invariant, retimed(faults)


def _read_fault(path: Path, index: int, record: Any) -> ChaosFault:
    where = f"{path}: fault {index}"
    if not isinstance(record, dict):
        raise LabError(f"{where}: not a mapping")
    try:
        kind = FaultKind(record["kind"])
        at, hold = float(record["at"]), float(record["hold"])
        target = str(record["target"])
    except KeyError as exc:
        raise LabError(f"{where}: missing {exc.args[0]}") from exc
    except (ValueError, TypeError) as exc:
        raise LabError(f"{where}: {exc}") from exc
    if at < 0 or hold <= 0:
        raise LabError(f"{where}: at must be >= 0 and hold > 0")
    attributes = record.get("attributes") or {}
    if kind is FaultKind.TOXIC and (
        not isinstance(attributes, dict) or not record.get("toxic") or not record.get("stream")
    ):
        raise LabError(f"{where}: a toxic needs toxic, stream and attributes")
    return ChaosFault(
        index,
        kind,
        target,
        at,
        hold,
        record.get("toxic"),
        record.get("stream"),
        tuple((str(k), int(v)) for k, v in dict(attributes).items()),
    )
