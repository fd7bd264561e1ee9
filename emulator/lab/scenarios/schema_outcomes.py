"""The outcome vocabulary of a scenario file: expectation kinds, their keys, and their validation.

An outcome is ``id``, ``title``, ``expect`` (one of ``EXPECTS``, or ``all: [...]`` of them),
``within`` and ``hold``; a ``wait_until`` step states its condition the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.lab.scenarios.model import AgentSetup, CallSetup, Expect, Outcome
from emulator.lab.scenarios.schema_reader import Reader
from emulator.lab.scenarios.yamlnodes import LocatedList, line_of

# expectation kind -> (required params, optional params)
EXPECTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "wwe_message": (frozenset({"agents", "text"}), frozenset({"since", "absent"})),
    "wwe_connection": (frozenset({"agent", "state"}), frozenset()),
    "wwe_node": (frozenset({"agent"}), frozenset({"node", "dc"})),
    "wwe_voice": (frozenset({"agent"}), frozenset({"logged_in", "available"})),
    "wwe_call": (frozenset({"agent", "call"}), frozenset({"shown", "state"})),
    "wwe_voice_history": (
        frozenset({"agent"}),
        frozenset({"since", "logged_out", "logins_at_least", "unavailable"}),
    ),
    "action": (frozenset({"label"}), frozenset({"ok", "error_code"})),
    "login": (frozenset({"label"}), frozenset({"call_reported", "rejected_code", "logged_in"})),
    "owner": (frozenset({"agent", "node"}), frozenset({"seen_by"})),
    "agent_on_node": (frozenset({"agent", "node"}), frozenset({"logged_in", "dn_status"})),
    "node_call": (frozenset({"call"}), frozenset({"present", "shown_to"})),
    "log": (frozenset({"service", "event"}), frozenset({"fields", "absent", "since", "until"})),
    "media": (frozenset({"calls", "verdict"}), frozenset()),
    "best_practice": (frozenset({"violated_by"}), frozenset()),
    "phone_registration": (frozenset({"agent", "node"}), frozenset()),
    "report": (frozenset(), frozenset()),
    "all": (frozenset({"of"}), frozenset()),
}
WWE_STATES = ("connected", "reconnecting", "gave-up", "logged-out")
MEDIA_VERDICTS = ("talking", "lost")


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
    kind = r.text(body, "kind", where, EXPECTS)
    required, optional = EXPECTS[kind]
    r.keys(body, where, required | {"kind"}, optional)
    params = {key: val for key, val in body.items() if key != "kind"}
    for key in ("agent", "agents"):
        if key in body:
            r.names(body, key, where, agents)
    if "call" in body:
        r.names(body, "call", where, calls)
    if "calls" in body:
        r.names(body, "calls", where, calls)
    if kind == "wwe_connection":
        r.text(body, "state", where, WWE_STATES)
    if kind == "media":
        r.text(body, "verdict", where, MEDIA_VERDICTS)
    if kind == "log" and r.services:
        r.names(body, "service", where, r.services)
    for key in ("logged_in", "available", "absent", "present", "ok", "shown"):
        if key in body:
            r.flag(body, key, where)
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
