"""The chaos checker's invariants over synthetic evidence: each holds on a good history and is
violated by the one thing that breaks it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulator.lab.chaos.checker import (
    INVARIANTS,
    Evidence,
    FaultWindow,
    check_all,
    every_request_answered,
    logouts_explained,
    media_accounted,
    no_crash,
    no_stuck_call,
    one_owner_per_dn,
    reference_ids_answered_once,
    relogin_after_heal,
)
from emulator.lab.chaos.plan import ChaosFault, FaultKind
from emulator.lab.topology import load_topology

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
T0 = 1_000_000.0


def evidence(**fields: Any) -> Evidence:
    base = Evidence(load_topology(COMPOSE), [], [], [])
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def line(service: str, event: str, at: float, **fields: Any) -> dict[str, Any]:
    return {"ts": T0 + at, "service": service, "level": "info", "event": event, **fields}


def window(kind: FaultKind, target: str, start: float, end: float) -> FaultWindow:
    return FaultWindow(ChaosFault(1, kind, target, start, end - start), T0 + start, T0 + end)


def names(violations: list[Any]) -> list[str]:
    return [v.invariant for v in violations]


def test_every_invariant_cites_its_rule_and_has_a_unique_name() -> None:
    assert len({i.name for i in INVARIANTS}) == len(INVARIANTS) == 8
    assert all(len(i.rule) > 20 for i in INVARIANTS)


def test_nodes_that_agree_on_the_owner_hold_and_a_split_view_is_a_violation() -> None:
    agreed = {
        "sip1": {"ownership": {"7002": {"owner": "sip1", "epoch": 2}}, "owned": {"7002": {}}},
        "sip3": {"ownership": {"7002": {"owner": "sip1", "epoch": 2}}, "owned": {}},
    }
    assert one_owner_per_dn(evidence(nodes=agreed)) == []
    split = {**agreed, "sip3": {"ownership": {"7002": {"owner": "sip3", "epoch": 2}}}}
    [violation] = one_owner_per_dn(evidence(nodes=split))
    assert "disagree" in violation.detail and "sip3: sip3 epoch 2" in violation.detail
    two = {
        "sip1": {"ownership": {"7002": {"owner": "sip1", "epoch": 2}}, "owned": {"7002": {}}},
        "sip2": {"ownership": {"7002": {"owner": "sip1", "epoch": 2}}, "owned": {"7002": {}}},
    }
    assert "owned by sip1 and sip2" in one_owner_per_dn(evidence(nodes=two))[0].detail


def test_a_call_left_on_a_node_a_phone_or_a_desktop_is_stuck() -> None:
    assert no_stuck_call(evidence(nodes={"sip1": {"calls": [], "owned": {}}})) == []
    stuck = evidence(
        nodes={
            "sip1": {"calls": [{"ConnID": "c1"}], "owned": {"7001": {"Calls": [{"ConnID": "c1"}]}}}
        },
        phone_calls={"pstn": [{"id": "c1", "state": "talking"}, {"id": "c2", "state": "ended"}]},
        desktop_calls={"agent1": ["c1"]},
    )
    details = [v.detail for v in no_stuck_call(stuck)]
    assert len(details) == 4
    assert any("agent1's desktop" in d for d in details)
    assert not any("c2" in d for d in details)


def _tlib(gws: str, at: float, kind: str, message: str, ref: int, **fields: Any) -> dict[str, Any]:
    return line(gws, f"tlib.{kind}", at, sip="sip1", message=message, ReferenceID=ref, **fields)


def test_a_logout_no_node_logged_a_rule_for_is_unexplained() -> None:
    up = line("gws1", "tlib.link_up", 0.0, sip="sip1")
    logout = _tlib("gws1", 5.0, "event", "EventAgentLogout", 0, DN="7001", Reason="OwnershipMove")
    assert names(logouts_explained(evidence(logs=[up, logout]))) == ["logouts-explained"]
    rule = line("sip1", "agent.logout", 4.9, DN="7001", reason="OwnershipMove")
    move = line("sip1", "ownership.move", 4.95, DN="7001")
    assert logouts_explained(evidence(logs=[up, rule, move, logout])) == []
    # Asked for by the desktop: its RequestAgentLogout has the event's ReferenceID.
    asked = _tlib("gws1", 4.0, "request", "RequestAgentLogout", 7, DN="7001")
    answer = _tlib("gws1", 4.1, "event", "EventAgentLogout", 7, DN="7001", Reason="Request")
    assert logouts_explained(evidence(logs=[up, asked, answer])) == []


def test_a_logout_after_the_ownership_move_breaks_logout_before_move() -> None:
    move = line("sip1", "ownership.move", 5.0, DN="7002")
    late = line("sip1", "agent.logout", 5.001, DN="7002", AgentID="agent2", reason="OwnershipMove")
    [violation] = logouts_explained(evidence(logs=[move, late]))
    assert "after moving its ownership" in violation.detail
    early = {**late, "ts": T0 + 4.999}
    assert logouts_explained(evidence(logs=[early, move])) == []


def _call(service: str, at: float, gap_ms: float, node: str = "sip1") -> list[dict[str, Any]]:
    return [
        line(service, "call.ringing", at, call="c1", node=node, DN="7002"),
        line(service, "call.answered", at + 0.1, call="c1"),
        line(service, "media.gap", at + 1.0, call="c1", state="started", gap_ms=1000.0),
        line(service, "media.gap", at + 1.0 + gap_ms / 1000, call="c1", gap_ms=gap_ms),
        line(
            service,
            "call.ended",
            at + 6.0,
            call="c1",
            end_reason="released",
            media={"talking": True},
        ),
    ]


def test_a_media_gap_needs_a_fault_on_the_calls_path() -> None:
    logs = _call("softphone2", 0.0, 2000.0)
    assert names(media_accounted(evidence(logs=logs))) == ["media-accounted"]
    on_path = window(FaultKind.CUT, "softphone2-dc1-sip1-rtp", -0.5, 3.0)
    assert media_accounted(evidence(logs=logs, windows=[on_path])) == []
    elsewhere = window(FaultKind.KILL, "gws3", -0.5, 3.0)
    assert names(media_accounted(evidence(logs=logs, windows=[elsewhere]))) == ["media-accounted"]
    node_killed = window(FaultKind.KILL, "sip1", -0.5, 3.0)
    assert media_accounted(evidence(logs=logs, windows=[node_killed])) == []
    too_early = window(FaultKind.CUT, "softphone2-dc1-sip1-rtp", -5.0, -3.0)
    assert names(media_accounted(evidence(logs=logs, windows=[too_early]))) == ["media-accounted"]


def test_a_dropout_under_a_second_is_not_a_gap() -> None:
    logs = [
        line("pstn", "call.answered", 0.0, call="c1"),
        line("pstn", "media.dropout", 1.0, call="c1", gap_ms=400.0),
        line("pstn", "call.ended", 2.0, call="c1", end_reason="released", media={"talking": True}),
    ]
    assert media_accounted(evidence(logs=logs)) == []


def test_an_error_line_a_crash_entry_or_a_stopped_service_is_a_crash() -> None:
    assert no_crash(evidence(services={"sip1": "running"})) == []
    error = {**line("gws1", "tlib.listener_error", 1.0, error="KeyError('x')"), "level": "error"}
    crash = {"kind": "crash", "service": "sip2", "state": "stopped", "ts": T0 + 2, "t": 2.0}
    found = no_crash(evidence(logs=[error], history=[crash], services={"sip4": "stopped"}))
    assert [v.detail.split()[0] for v in found] == ["gws1:", "sip2", "sip4"]


def test_a_tlib_request_needs_its_event_unless_its_connection_died() -> None:
    up = line("gws1", "tlib.link_up", 0.0, sip="sip1")
    request = _tlib("gws1", 1.0, "request", "RequestHoldCall", 5, DN="7001")
    later = line("gws1", "session.created", 20.0)
    assert names(every_request_answered(evidence(logs=[up, request, later]))) == [
        "every-request-answered"
    ]
    answered = _tlib("gws1", 1.1, "event", "EventHeld", 5, DN="7001")
    assert every_request_answered(evidence(logs=[up, request, answered, later])) == []
    down = line("gws1", "tlib.link_down", 2.0, sip="sip1")
    assert every_request_answered(evidence(logs=[up, request, down, later])) == []


def _op(op_id: int, phase: str, at: float, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "op",
        "id": op_id,
        "process": "agent1",
        "op": "hold",
        "phase": phase,
        "ts": T0 + at,
        "t": at,
        **fields,
    }


def test_a_desktop_request_without_answer_needs_a_fault_and_every_request_completes() -> None:
    history = [_op(1, "invoke", 1.0), _op(1, "info", 4.0, ms=3000.0, error="no event")]
    assert names(every_request_answered(evidence(history=history))) == ["every-request-answered"]
    fault = window(FaultKind.PAUSE, "gws1", 0.5, 2.0)
    assert every_request_answered(evidence(history=history, windows=[fault])) == []
    unfinished = [_op(2, "invoke", 1.0)]
    assert "never completed" in every_request_answered(evidence(history=unfinished))[0].detail


def test_a_reference_id_answered_twice_on_one_connection_is_a_violation() -> None:
    up = line("gws1", "tlib.link_up", 0.0, sip="sip1")
    first = _tlib("gws1", 1.0, "event", "EventHeld", 5)
    again = _tlib("gws1", 1.1, "event", "EventHeld", 5)
    [violation] = reference_ids_answered_once(evidence(logs=[up, first, again]))
    assert "answered 2 times" in violation.detail
    # A new connection counts from 1 again.
    reconnected = line("gws1", "tlib.link_up", 1.05, sip="sip1")
    assert reference_ids_answered_once(evidence(logs=[up, first, reconnected, again])) == []


def test_every_agent_must_log_on_again_after_the_heal() -> None:
    healed = evidence(agents=("agent1", "agent2"), healed_at=T0 + 10)
    ok = {"kind": "op", "op": "relogin", "phase": "ok", "process": "agent1", "ts": T0 + 11}
    before = {**ok, "process": "agent2", "ts": T0 + 9}
    healed.history = [ok, before]
    assert [v.detail for v in relogin_after_heal(healed)] == [
        "agent2 could not log in and go Ready after the heal"
    ]


@pytest.mark.parametrize("invariant", [i.name for i in INVARIANTS])
def test_check_all_runs_only_the_named_invariants(invariant: str) -> None:
    assert check_all(evidence(), [invariant]) == []


def test_a_call_that_never_talked_is_a_silence_only_past_the_talking_threshold() -> None:
    def call(lasted: float) -> list[dict[str, Any]]:
        return [
            line("pstn", "call.answered", 0.0, call="c1"),
            line(
                "pstn", "call.ended", lasted, call="c1", end_reason="bye", media={"talking": False}
            ),
        ]

    assert media_accounted(evidence(logs=call(0.4))) == []
    assert names(media_accounted(evidence(logs=call(3.0)))) == ["media-accounted"]


def test_a_dn_moved_with_its_agent_logged_in_is_a_violation_a_conflict_is_not() -> None:
    dropped = line(
        "sip1", "agent.dropped", 5.0, DN="7002", AgentID="agent2", reason="OwnershipMove"
    )
    [violation] = logouts_explained(evidence(logs=[dropped]))
    assert "moved DN 7002 with agent agent2 still logged in" in violation.detail
    up = line("gws1", "tlib.link_up", 0.0, sip="sip1")
    conflict = {**dropped, "reason": "OwnershipConflict"}
    told = _tlib(
        "gws1", 5.01, "event", "EventAgentLogout", 0, DN="7002", Reason="OwnershipConflict"
    )
    assert logouts_explained(evidence(logs=[up, conflict, told])) == []
