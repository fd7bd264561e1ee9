"""The steps of a scenario file: actions (``do:``, declared with their keys in ``actions.STEPS``),
``check: ID`` points and marks, validated with the line of every error.

Service and link names are checked against the topology when ``load_scenario`` is given one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.lab.scenarios.actions import STEPS
from emulator.lab.scenarios.model import DCS, AgentSetup, CallSetup, Outcome, Step
from emulator.lab.scenarios.schema_outcomes import read_expect
from emulator.lab.scenarios.schema_reader import Reader
from emulator.lab.scenarios.yamlnodes import LocatedList, LocatedMap, line_of


def read_steps(
    r: Reader,
    value: Any,
    line: int,
    agents: Mapping[str, AgentSetup],
    calls: Mapping[str, CallSetup],
    outcomes: Mapping[str, Outcome],
) -> tuple[Step, ...]:
    if not isinstance(value, LocatedList):
        raise r.fail(line_of(value, line), "steps", "must be a list")
    steps = []
    for index, item in enumerate(value):
        where = f"steps[{index}]"
        body = r.mapping(item, where, value.line_of(index))
        if "check" in body:
            r.keys(body, where, {"check"}, set())
            outcome_id = r.text(body, "check", where)
            if outcome_id not in outcomes:
                raise r.fail(
                    body.line_of("check"),
                    f"{where}.check",
                    f"no outcome {outcome_id!r} in this file",
                )
            steps.append(Step(body.line, "check", outcome_id))
            continue
        if "mark" in body:
            r.keys(body, where, {"mark"}, set())
            steps.append(Step(body.line, "mark", r.text(body, "mark", where)))
            continue
        if "do" not in body:
            raise r.fail(
                body.line, where, "a step is 'do: ACTION', 'check: OUTCOME' or 'mark: NAME'"
            )
        word, params = r.word(body, "do", where, STEPS)
        action = word.name
        _step_names(r, body, where, action, agents, calls)
        if action == "wait_until":
            params["expect"] = read_expect(
                r, body["expect"], body.line_of("expect"), f"{where}.expect", agents, calls
            )
        steps.append(Step(body.line, "do", action, params))
    return tuple(steps)


def _step_names(
    r: Reader,
    body: LocatedMap,
    where: str,
    action: str,
    agents: Mapping[str, AgentSetup],
    calls: Mapping[str, CallSetup],
) -> None:
    if "agent" in body:
        r.text(body, "agent", where, agents)
    if "call" in body and action != "new_call":
        r.text(body, "call", where, calls)
    if "service" in body:
        r.text(body, "service", where, sorted(r.services))
    for key in ("node", "gws"):
        if key in body:
            r.text(body, key, where, sorted(r.services))
    if "links" in body:
        r.names(body, "links", where, r.links)
    if "dcs" in body:
        r.names(body, "dcs", where, DCS)
    if "seconds" in body:
        r.number(body, "seconds", where)
    if "even_if_lost" in body:
        r.flag(body, "even_if_lost", where)
