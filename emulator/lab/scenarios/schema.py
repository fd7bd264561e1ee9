"""Scenario files (``scenarios/*.yaml``): their schema, validated with the line of every error.

A scenario states the lab it needs (extra service arguments), the setup (agents, their phone
type, DC and GWS node, which node owns each DN, which node each call lands on), the steps
(faults, agent actions, waits, marks, and ``check: ID`` points where an outcome must hold within
its deadline) and the expected outcomes of ``shared/SCENARIOS.md``. Every value keeps its line
(``yamlnodes``), so a bad file fails with ``file:line: where: what`` and nothing is run.

This module reads the document, its ``lab`` arguments and ``setup``, and checks that every label
and mark an outcome names is made by a step. The step vocabulary is ``schema_steps``, the outcome
vocabulary ``schema_outcomes``, the errors and located checks ``schema_reader``, and what a loaded
scenario is ``model``.

Times (``within``, ``hold``, ``seconds``) are lab seconds, multiplied by the run's time scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from emulator.lab.scenarios.model import (
    DCS,
    PHONES,
    AgentSetup,
    CallSetup,
    Expect,
    Outcome,
    Scenario,
    Step,
)
from emulator.lab.scenarios.schema_outcomes import read_outcomes
from emulator.lab.scenarios.schema_reader import Reader, ScenarioError
from emulator.lab.scenarios.schema_steps import read_steps
from emulator.lab.scenarios.yamlnodes import LocatedList, LocatedMap, YamlSyntaxError, load_located


def load_scenario(path: Path, services: Iterable[str] = (), links: Iterable[str] = ()) -> Scenario:
    """Read and validate one scenario file; raises ``ScenarioError`` naming file, line and key."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(path, 0, "", f"cannot read: {exc.strerror}") from None
    try:
        document = load_located(text)
    except YamlSyntaxError as exc:
        raise ScenarioError(path, exc.line, "", exc.message) from None
    reader = Reader(path, services, links)
    return _scenario(reader, reader.mapping(document, "scenario", 1))


def _scenario(r: Reader, doc: LocatedMap) -> Scenario:
    r.keys(doc, "scenario", {"name", "title", "setup", "steps", "outcomes"}, {"description", "lab"})
    name = r.text(doc, "name", "scenario")
    lab_args = _lab(r, doc.get("lab"), doc.line_of("lab"))
    setup = r.mapping(doc["setup"], "setup", doc.line_of("setup"))
    r.keys(setup, "setup", {"agents"}, {"calls"})
    agents = _agents(r, r.mapping(setup["agents"], "setup.agents", setup.line_of("agents")))
    calls = _calls(r, setup.get("calls"), setup.line_of("calls"), agents)
    # Calls a step places later (``new_call``) can be named by expectations too.
    known = dict(calls)
    for item in doc["steps"] if isinstance(doc["steps"], LocatedList) else []:
        if isinstance(item, LocatedMap) and item.get("do") == "new_call":
            placed = str(item.get("call"))
            known[placed] = CallSetup(placed, str(item.get("agent")), str(item.get("node")))
    outcomes = read_outcomes(r, doc["outcomes"], doc.line_of("outcomes"), agents, known)
    steps = read_steps(r, doc["steps"], doc.line_of("steps"), agents, known, outcomes)
    _check_references(r, steps, outcomes)
    return Scenario(
        name=name,
        title=r.text(doc, "title", "scenario"),
        path=r.path,
        description=str(doc.get("description", "")).strip(),
        lab_args=lab_args,
        agents=agents,
        calls=calls,
        steps=steps,
        outcomes=outcomes,
    )


def _lab(r: Reader, value: Any, line: int) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    body = r.mapping(value, "lab", line)
    r.keys(body, "lab", set(), {"args"})
    args = r.mapping(body.get("args", LocatedMap(line)), "lab.args", body.line_of("args"))
    out = {}
    for service, items in args.items():
        where = f"lab.args.{service}"
        if r.services and service not in r.services:
            raise r.fail(
                args.line_of(service), where, f"unknown service; valid: {_shown(r.services)}"
            )
        if not isinstance(items, LocatedList) or not all(isinstance(i, str) for i in items):
            raise r.fail(args.line_of(service), where, "must be a list of command-line arguments")
        out[service] = tuple(items)
    return out


def _agents(r: Reader, body: LocatedMap) -> dict[str, AgentSetup]:
    agents = {}
    for name, value in body.items():
        where = f"setup.agents.{name}"
        agent = r.mapping(value, where, body.line_of(name))
        r.keys(agent, where, {"dn", "phone", "dc", "gws", "owner"}, {"password"})
        agents[name] = AgentSetup(
            name=name,
            dn=r.text(agent, "dn", where),
            password=r.text(agent, "password", where) if "password" in agent else name,
            phone=r.text(agent, "phone", where, PHONES),
            dc=r.text(agent, "dc", where, DCS),
            gws=_service(r, agent, "gws", where),
            owner=_service(r, agent, "owner", where),
        )
    if not agents:
        raise r.fail(body.line, "setup.agents", "at least one agent is needed")
    return agents


def _calls(
    r: Reader, value: Any, line: int, agents: Mapping[str, AgentSetup]
) -> dict[str, CallSetup]:
    if value is None:
        return {}
    body = r.mapping(value, "setup.calls", line)
    calls = {}
    for name, item in body.items():
        where = f"setup.calls.{name}"
        call = r.mapping(item, where, body.line_of(name))
        r.keys(call, where, {"agent", "node"}, set())
        calls[name] = CallSetup(
            name, r.text(call, "agent", where, agents), _service(r, call, "node", where)
        )
    return calls


def _service(r: Reader, body: LocatedMap, key: str, where: str) -> str:
    return r.text(body, key, where, sorted(r.services))


def _check_references(r: Reader, steps: tuple[Step, ...], outcomes: Mapping[str, Outcome]) -> None:
    """Labels and marks an expectation names must be made by a step of the file."""
    labels = {str(s.params["label"]) for s in steps if "label" in s.params}
    marks = {s.name for s in steps if s.kind == "mark"} | {"start", "fault"}

    def visit(expect: Expect, outcome: Outcome) -> None:
        label = expect.params.get("label")
        if label is not None and label not in labels:
            raise r.fail(expect.line, f"{outcome.id}.expect.label", f"no step has label {label!r}")
        for key in ("since", "until"):
            mark = expect.params.get(key)
            if mark is not None and mark not in marks:
                raise r.fail(
                    expect.line,
                    f"{outcome.id}.expect.{key}",
                    f"no mark {mark!r}; marks: {_shown(marks)}",
                )
        for child in expect.children:
            visit(child, outcome)

    for outcome in outcomes.values():
        visit(outcome.expect, outcome)


def _shown(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
