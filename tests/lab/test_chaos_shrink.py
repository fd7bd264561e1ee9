"""Shrinking a failing fault sequence (ddmin, then the holds), and the chaos case file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from emulator.lab.chaos.plan import ChaosFault, FaultKind, plan_chaos
from emulator.lab.chaos.shrink import MIN_HOLD, case_yaml, read_case, retimed, shrink
from emulator.lab.chaos.workload import WorkloadAgent
from emulator.lab.errors import LabError
from emulator.lab.topology import load_topology

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def plan(count: int = 12) -> list[ChaosFault]:
    return plan_chaos(load_topology(COMPOSE), seed=5, faults=count, duration=400.0)


async def test_shrinking_keeps_only_the_faults_that_together_break_the_invariant() -> None:
    faults = plan()
    tried: list[list[ChaosFault]] = []

    def what(fault: ChaosFault) -> str:
        return f"{fault.kind} {fault.target}"

    culprits = {what(faults[3]), what(faults[8])}

    async def attempt(candidate: list[ChaosFault]) -> set[str]:
        tried.append(candidate)
        # The violation needs both culprits, each held at least 8 lab seconds.
        held = {what(f) for f in candidate if f.hold >= 8.0}
        return {"one-owner-per-dn"} if culprits <= held else {"no-crash"}

    smallest = await shrink(faults, "one-owner-per-dn", attempt, lambda _line: None)
    assert {what(f) for f in smallest} == culprits
    assert all(8.0 <= f.hold < 16.0 or f.hold / 2 < MIN_HOLD for f in smallest)
    assert smallest[0].at == 0.0 and [f.index for f in smallest] == [1, 2]
    assert all(candidate for candidate in tried)


async def test_a_single_fault_that_breaks_it_alone_is_found_first() -> None:
    faults = plan()

    async def attempt(candidate: list[ChaosFault]) -> set[str]:
        return {"no-crash"} if any(f.target == faults[5].target for f in candidate) else set()

    smallest = await shrink(faults, "no-crash", attempt, lambda _line: None)
    assert [f.target for f in smallest] == [faults[5].target]
    assert smallest[0].hold < MIN_HOLD * 2


def test_a_case_file_round_trips(tmp_path: Path) -> None:
    faults = retimed(plan(4))
    path = tmp_path / "case.yaml"
    path.write_text(case_yaml(5, "no-crash", faults, "a note"))
    seed, invariant, back = read_case(path)
    assert (seed, invariant) == (5, "no-crash")
    assert back == faults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: something-else\n", "not a chaos case"),
        ("kind: drlab-chaos-case\nseed: x\ninvariant: no-crash\n", "seed (an integer)"),
        ("kind: drlab-chaos-case\nseed: 1\ninvariant: no-crash\nfaults: []\n", "list of faults"),
        (
            "kind: drlab-chaos-case\nseed: 1\ninvariant: i\nfaults:\n- {kind: kill, at: 0}\n",
            "fault 1: missing hold",
        ),
        (
            "kind: drlab-chaos-case\nseed: 1\ninvariant: i\nfaults:\n"
            "- {kind: melt, target: sip1, at: 0, hold: 1}\n",
            "fault 1: 'melt' is not a valid FaultKind",
        ),
        (
            "kind: drlab-chaos-case\nseed: 1\ninvariant: i\nfaults:\n"
            "- {kind: kill, target: sip1, at: -1, hold: 1}\n",
            "at must be >= 0",
        ),
        ("kind: [\n", "cannot read the case"),
    ],
)
def test_a_bad_case_file_is_refused_naming_the_file_and_what(
    text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(text)
    with pytest.raises(LabError) as error:
        read_case(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_retimed_starts_at_zero_and_numbers_in_order() -> None:
    faults = [dataclasses.replace(f, at=f.at + 100) for f in plan(3)][::-1]
    again = retimed(faults)
    assert again[0].at == 0.0 and [f.index for f in again] == [1, 2, 3]
    by_time = sorted(faults, key=lambda f: f.at)
    assert [f.target for f in again] == [f.target for f in by_time]
    assert [f.at for f in again] == [round(f.at - by_time[0].at, 1) for f in by_time]


@pytest.mark.parametrize("text", ["agent1", "a:b:c", "a:b:7001@", ":b:7001@DC1", "a:b:c:d@DC1"])
def test_a_workload_agent_is_user_password_dn_at_dc(text: str) -> None:
    with pytest.raises(LabError, match="is not user:password:DN@DC"):
        WorkloadAgent.parse(text)
    assert WorkloadAgent.parse("agent9:pw:7009@DC2") == WorkloadAgent("agent9", "pw", "7009", "DC2")


def test_fault_kinds_in_a_case_are_the_chaos_kinds() -> None:
    assert {k.value for k in FaultKind} >= {"kill", "cut", "partition", "toxic"}
