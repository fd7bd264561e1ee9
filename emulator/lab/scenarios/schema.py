"""Scenario files (``scenarios/*.yaml``): their schema, validated with the line of every error.

A scenario states the lab it needs (extra service arguments), the setup (agents, their phone
type, DC and GWS node, which node owns each DN, which node each call lands on), the steps
(faults, agent actions, waits, marks, and ``check: ID`` points where an outcome must hold within
its deadline) and the expected outcomes of ``shared/SCENARIOS.md``. Every value keeps its line
(``yamlnodes``), so a bad file fails with ``file:line: where: what`` and nothing is run.

Times (``within``, ``hold``, ``seconds``) are lab seconds, multiplied by the run's time scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.lab.scenarios.yamlnodes import (
    LocatedList,
    LocatedMap,
    YamlSyntaxError,
    line_of,
    load_located,
)

PHONES = ("pstn", "softphone")
DCS = ("DC1", "DC2")

# action -> (required params, optional params). Service/link names are checked against the
# topology when one is given (``load_scenario(..., topology=...)``).
ACTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "cut": (frozenset({"links"}), frozenset({"mode"})),
    "heal": (frozenset(), frozenset({"links"})),
    "partition": (frozenset({"dcs"}), frozenset({"mode"})),
    "kill": (frozenset({"service"}), frozenset()),
    "stop": (frozenset({"service"}), frozenset()),
    "start": (frozenset({"service"}), frozenset()),
    "pause": (frozenset({"service"}), frozenset()),
    "resume": (frozenset({"service"}), frozenset()),
    "login": (frozenset({"agent", "dc"}), frozenset({"gws", "label"})),
    "agent": (frozenset({"agent", "request"}), frozenset({"label"})),
    "call_control": (frozenset({"agent", "call", "request"}), frozenset({"label"})),
    "customer": (frozenset({"call", "request"}), frozenset()),
    "new_call": (frozenset({"call", "agent", "node"}), frozenset()),
    "phone": (frozenset({"agent", "node", "request"}), frozenset()),
    "wait": (frozenset({"seconds"}), frozenset()),
    "wait_acw_over": (frozenset({"agent"}), frozenset({"within"})),
    # Wait for a condition stated like an outcome's expectation (not an outcome: no verdict).
    "wait_until": (frozenset({"expect"}), frozenset({"within"})),
}
AGENT_REQUESTS = ("ready", "not_ready", "agent_login", "agent_logout")
CALL_REQUESTS = ("answer", "release", "hold", "retrieve")
CUSTOMER_REQUESTS = ("answer", "release")
PHONE_REQUESTS = ("register", "unregister")
CUT_MODES = ("reset", "blackhole")

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


class ScenarioError(ValueError):
    """A scenario file that cannot be run: ``str()`` is ``path:line: where: what``."""

    def __init__(self, path: Path | str, line: int, where: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.where = where
        self.message = message
        location = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{location}: {where + ': ' if where else ''}{message}")


@dataclass(frozen=True)
class AgentSetup:
    name: str
    dn: str
    password: str
    phone: str
    dc: str
    gws: str
    owner: str


@dataclass(frozen=True)
class CallSetup:
    name: str
    agent: str
    node: str


@dataclass(frozen=True)
class Step:
    line: int
    kind: str  # "do" | "check" | "mark"
    name: str  # the action, the outcome id, or the mark
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Expect:
    line: int
    kind: str
    params: Mapping[str, Any]
    children: tuple[Expect, ...] = ()


@dataclass(frozen=True)
class Outcome:
    id: str
    title: str
    expect: Expect
    within: float  # lab seconds (scaled) to wait for the expectation to hold
    hold: float  # lab seconds it must then keep holding (0: once is enough)
    line: int


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    path: Path
    description: str
    lab_args: Mapping[str, tuple[str, ...]]
    agents: Mapping[str, AgentSetup]
    calls: Mapping[str, CallSetup]
    steps: tuple[Step, ...]
    outcomes: Mapping[str, Outcome]

    def outcome_ids(self) -> list[str]:
        return list(self.outcomes)


class _Reader:
    """Validation helpers that know the file and raise ``ScenarioError`` with the line."""

    def __init__(self, path: Path, services: Iterable[str], links: Iterable[str]) -> None:
        self.path = path
        self.services = set(services)
        self.links = set(links)

    def fail(self, line: int, where: str, message: str) -> ScenarioError:
        return ScenarioError(self.path, line, where, message)

    def mapping(self, value: Any, where: str, line: int) -> LocatedMap:
        if not isinstance(value, LocatedMap):
            raise self.fail(line_of(value, line), where, f"must be a mapping, got {_kind(value)}")
        return value

    def keys(
        self, body: LocatedMap, where: str, required: Iterable[str], optional: Iterable[str]
    ) -> None:
        allowed = set(required) | set(optional)
        for key in body:
            if key not in allowed:
                shown = ", ".join(sorted(allowed)) or "none"
                raise self.fail(body.line_of(key), f"{where}.{key}", f"unknown key; valid: {shown}")
        for key in required:
            if key not in body:
                raise self.fail(body.line, where, f"missing required key {key!r}")

    def text(self, body: LocatedMap, key: str, where: str, choices: Iterable[str] = ()) -> str:
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(
                body.line_of(key), f"{where}.{key}", f"must be text, got {_kind(value)}"
            )
        text = str(value)
        valid = list(choices)
        if valid and text not in valid:
            raise self.fail(
                body.line_of(key), f"{where}.{key}", f"{text!r} is not one of {', '.join(valid)}"
            )
        return text

    def number(self, body: LocatedMap, key: str, where: str) -> float:
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(
                body.line_of(key), f"{where}.{key}", f"must be a number >= 0, got {value!r}"
            )
        return float(value)

    def flag(self, body: LocatedMap, key: str, where: str) -> bool:
        value = body[key]
        if not isinstance(value, bool):
            raise self.fail(
                body.line_of(key), f"{where}.{key}", f"must be true or false, got {value!r}"
            )
        return value

    def names(self, body: LocatedMap, key: str, where: str, valid: Iterable[str]) -> list[str]:
        value = body[key]
        items = value if isinstance(value, LocatedList) else [value]
        known = set(valid)
        out = []
        for item in items:
            if not isinstance(item, str) or (known and item not in known):
                shown = ", ".join(sorted(known))
                raise self.fail(
                    body.line_of(key), f"{where}.{key}", f"unknown name {item!r}; valid: {shown}"
                )
            out.append(item)
        return out


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
    reader = _Reader(path, services, links)
    return _scenario(reader, reader.mapping(document, "scenario", 1))


def _scenario(r: _Reader, doc: LocatedMap) -> Scenario:
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
    outcomes = _outcomes(r, doc["outcomes"], doc.line_of("outcomes"), agents, known)
    steps = _steps(r, doc["steps"], doc.line_of("steps"), agents, known, outcomes)
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


def _lab(r: _Reader, value: Any, line: int) -> dict[str, tuple[str, ...]]:
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


def _agents(r: _Reader, body: LocatedMap) -> dict[str, AgentSetup]:
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
    r: _Reader, value: Any, line: int, agents: Mapping[str, AgentSetup]
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


def _service(r: _Reader, body: LocatedMap, key: str, where: str) -> str:
    return r.text(body, key, where, sorted(r.services))


def _outcomes(
    r: _Reader,
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
        expect = _expect(
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


def _expect(
    r: _Reader,
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
            _expect(r, item, items.line_of(i), f"{where}.of[{i}]", agents, calls)
            for i, item in enumerate(items)
        )
    return Expect(body.line, kind, params, children)


def _steps(
    r: _Reader,
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
        action = r.text(body, "do", where, ACTIONS)
        required, optional = ACTIONS[action]
        r.keys(body, where, required | {"do"}, optional)
        _step_names(r, body, where, action, agents, calls)
        params = {key: val for key, val in body.items() if key != "do"}
        if action == "wait_until":
            params["expect"] = _expect(
                r, body["expect"], body.line_of("expect"), f"{where}.expect", agents, calls
            )
        steps.append(Step(body.line, "do", action, params))
    return tuple(steps)


def _step_names(
    r: _Reader,
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
    if "dc" in body:
        r.text(body, "dc", where, DCS)
    if "mode" in body:
        r.text(body, "mode", where, CUT_MODES)
    if "seconds" in body:
        r.number(body, "seconds", where)
    choices = {
        "agent": AGENT_REQUESTS,
        "call_control": CALL_REQUESTS,
        "customer": CUSTOMER_REQUESTS,
        "phone": PHONE_REQUESTS,
    }.get(action)
    if choices is not None:
        r.text(body, "request", where, choices)


def _check_references(r: _Reader, steps: tuple[Step, ...], outcomes: Mapping[str, Outcome]) -> None:
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


def _kind(value: Any) -> str:
    if isinstance(value, LocatedMap):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _shown(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
