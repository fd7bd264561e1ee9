"""Seeded chaos plans: reproducible, every fault reverted, no two faults on one target at once."""

from __future__ import annotations

from pathlib import Path

from emulator.lab.chaos import FaultKind, plan_chaos
from emulator.lab.topology import load_topology

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def test_the_same_seed_gives_the_same_fault_sequence() -> None:
    topology = load_topology(COMPOSE)
    first = plan_chaos(topology, seed=7, faults=20, duration=200.0)
    again = plan_chaos(load_topology(COMPOSE), seed=7, faults=20, duration=200.0)
    assert first == again
    assert [f.describe() for f in first] == [f.describe() for f in again]


def test_another_seed_gives_another_sequence() -> None:
    topology = load_topology(COMPOSE)
    assert plan_chaos(topology, 7, 20, 200.0) != plan_chaos(topology, 8, 20, 200.0)


def test_a_plan_has_the_asked_number_of_faults_in_time_order_numbered_in_order() -> None:
    plan = plan_chaos(load_topology(COMPOSE), seed=3, faults=40, duration=100.0)
    assert len(plan) == 40
    assert [f.index for f in plan] == list(range(1, 41))
    assert [f.at for f in plan] == sorted(f.at for f in plan)
    assert all(f.hold > 0 for f in plan)


def test_two_faults_never_hold_the_same_service_or_link_at_the_same_time() -> None:
    topology = load_topology(COMPOSE)
    plan = plan_chaos(topology, seed=11, faults=60, duration=120.0)

    def held(fault_target: str, kind: FaultKind) -> set[str]:
        if kind is FaultKind.PARTITION:
            return set(topology.crossing(*fault_target.split()))
        return {fault_target}

    for i, one in enumerate(plan):
        for other in plan[i + 1 :]:
            overlap = one.at < other.at + other.hold and other.at < one.at + one.hold
            if overlap:
                assert not held(one.target, one.kind) & held(other.target, other.kind), (
                    one.describe(),
                    other.describe(),
                )


def test_chaos_never_kills_or_pauses_the_relay_and_draws_every_kind() -> None:
    topology = load_topology(COMPOSE)
    plan = plan_chaos(topology, seed=6, faults=200, duration=2000.0)
    assert {f.kind for f in plan} == set(FaultKind)
    for fault in plan:
        if fault.kind in (FaultKind.KILL, FaultKind.PAUSE):
            assert fault.target in topology.services and fault.target != "links"
        elif fault.kind is FaultKind.PARTITION:
            assert fault.target == "DC1 DC2"
        else:
            assert fault.target in topology.links
        if fault.kind is FaultKind.TOXIC:
            assert fault.toxic_name == f"chaos{fault.index}"
            assert fault.attributes


def test_chaos_puts_no_slicer_toxic_on_a_udp_link() -> None:
    topology = load_topology(COMPOSE)
    plan = plan_chaos(topology, seed=3, faults=300, duration=3000.0)
    toxics = [f for f in plan if f.kind is FaultKind.TOXIC]
    assert any(topology.links[f.target].protocol == "udp" for f in toxics)
    assert not any(
        f.toxic_type == "slicer" and topology.links[f.target].protocol == "udp" for f in toxics
    )
