"""Outcomes of a scenario file and their expectations, validated against ``checks.EXPECTS``.

An outcome is ``id``, ``title``, ``expect`` (a kind declared in ``checks``, or ``all: [...]`` of
them), ``within`` and ``hold``; a ``wait_until`` step states its condition the same way. The keys
a kind takes are declared once, beside its check; this module only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.lab.scenarios.checks import EXPECTS
from emulator.lab.scenarios.events import read_event
from emulator.lab.scenarios.model import AgentSetup, CallSetup, Expect, Outcome
from emulator.lab.scenarios.schema_reader import Reader
from emulator.lab.scenarios.yamlnodes import LocatedList, LocatedMap, line_of


def read_outcomes(
    r: Reader,
    value: Any,
    line: int,
    agents: Mapping[str, AgentSetup],
    calls: Mapping[str, CallSetup],
) -> dict[str, Outcome]:
    if not isinstance(value, LocatedList) or not value:
        raise r.fail(line_of(value, line), "outcomes", "must be a non-empty list")
    outcomes: dict[str, Outcome] = {}
    for index, item in enumerate(value):
        where = f"outcomes[{index}]"
        body = r.mapping(item, where, value.line_of(index))
        r.keys(body, where, {"id", "title", "expect"}, {"within", "hold"})
        outcome_id = r.text(body, "id", where)
        if outcome_id in outcomes:
            raise r.fail(body.line_of("id"), f"{where}.id", f"{outcome_id} is listed twice")
        expect = read_expect(
            r, body["expect"], body.line_of("expect"), f"{outcome_id}.expect", agents, calls
        )
        outcomes[outcome_id] = Outcome(
            id=outcome_id,
            title=r.text(body, "title", where),
            expect=expect,
            within=r.number(body, "within", where) if "within" in body else 0.0,
            hold=r.number(body, "hold", where) if "hold" in body else 0.0,
            line=body.line,
        )
    return outcomes


def read_expect(
    r: Reader,
    value: Any,
    line: int,
    where: str,
    agents: Mapping[str, AgentSetup],
    calls: Mapping[str, CallSetup],
) -> Expect:
    body = r.mapping(value, where, line)
    if "kind" not in body:
        raise r.fail(body.line, where, f"missing 'kind'; valid: {', '.join(EXPECTS)}")
    word, params = r.word(body, "kind", where, EXPECTS)
    kind = word.name
    for key in ("agent", "agents"):
        if key in body:
            r.names(body, key, where, agents)
    for key in ("call", "calls", "shown_to"):
        if key in body:
            r.names(body, key, where, agents if key == "shown_to" else calls)
    if kind == "log" and r.services:
        r.names(body, "service", where, r.services)
    for key in ("logged_in", "available", "absent", "present", "ok", "shown", "refused_by_server"):
        if key in body:
            r.flag(body, key, where)
    for key in ("seconds", "tolerance", "at_most", "at_least", "logins_at_least"):
        if key in body:
            r.number(body, key, where)
    for key in ("from", "to"):
        if key in body:
            params[key] = _events(r, body, key, f"{where}.{key}", agents, calls)
    children: tuple[Expect, ...] = ()
    if kind == "all":
        items = body["of"]
        if not isinstance(items, LocatedList) or not items:
            raise r.fail(body.line_of("of"), f"{where}.of", "must be a non-empty list")
        children = tuple(
            read_expect(r, item, items.line_of(i), f"{where}.of[{i}]", agents, calls)
            for i, item in enumerate(items)
        )
    return Expect(body.line, kind, params, children)


def _events(
    r: Reader,
    body: LocatedMap,
    key: str,
    where: str,
    agents: Mapping[str, AgentSetup],
    calls: Mapping[str, CallSetup],
) -> tuple[Any, ...]:
    """An interval's end: one event, or a list of them (the latest counts)."""
    value = body[key]
    items = list(value) if isinstance(value, LocatedList) else [value]
    if not items:
        raise r.fail(body.line_of(key), where, "must name at least one event")
    lines = (
        [value.line_of(i) for i in range(len(items))]
        if isinstance(value, LocatedList)
        else [body.line_of(key)]
    )
    return tuple(
        read_event(r, r.mapping(item, f"{where}[{i}]", lines[i]), f"{where}[{i}]", agents, calls)
        for i, item in enumerate(items)
    )
