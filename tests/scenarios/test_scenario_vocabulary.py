"""The scenario vocabulary: each word declared once, the schema reading the same registry, and
timed claims stated as intervals between observed events."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.lab.scenarios.actions import STEPS
from emulator.lab.scenarios.checks import EXPECTS
from emulator.lab.scenarios.events import EventSpec
from emulator.lab.scenarios.schema import load_scenario
from emulator.lab.scenarios.schema_reader import ScenarioError
from emulator.lab.scenarios.vocabulary import Vocabulary
from emulator.lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = load_topology(ROOT / "compose.yaml")

SCENARIO = """\
name: timed
title: a timed claim
setup:
  agents:
    agent2: {{dn: "7002", phone: pstn, dc: DC1, gws: gws1, owner: sip1}}
steps:
  - {{do: cut, links: [gws1-sip1]}}
outcomes:
  - id: X.1
    title: the move waits 30 s
    expect:
      kind: interval
{body}
"""


def load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(body=body))
    return load_scenario(path, TOPOLOGY.names(), TOPOLOGY.links)


def test_a_word_declared_twice_is_refused() -> None:
    vocabulary: Vocabulary[object] = Vocabulary("action")  # type: ignore[type-var]
    vocabulary.add("cut", print)
    with pytest.raises(ValueError, match="'cut' is declared twice"):
        vocabulary.add("cut", print)


def test_every_step_and_expectation_the_runner_knows_is_in_the_registry() -> None:
    assert {"cut", "partition", "kill", "login", "call_control", "desk_phone"} <= set(STEPS)
    assert {"interval", "logouts", "log", "media", "all"} <= set(EXPECTS)
    assert EXPECTS["interval"].required == {"from", "to"}


def test_an_interval_reads_its_events(tmp_path: Path) -> None:
    scenario = load(
        tmp_path,
        """      from:
        - {mark: "acw-over:agent2"}
        - {log: sip3, event: tlib.request, fields: {DN: "7002"}}
      to: {log: sip1, event: ownership.move, fields: {DN: "7002", owner: sip3}}
      seconds: 30
      tolerance: 2""",
    )
    expect = scenario.outcomes["X.1"].expect  # type: ignore[attr-defined]
    assert expect.params["from"] == (
        EventSpec("mark", "acw-over:agent2"),
        EventSpec("log", "sip3", "tlib.request", fields={"DN": "7002"}),
    )
    assert expect.params["to"][0].describe() == "sip1 ownership.move DN=7002 owner=sip3"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("      to: {mark: x}\n      seconds: 3", "missing required key 'from'"),
        ("      from: {mark: x}\n      to: {sip1: y}", "an event is {log: ...}"),
        ("      from: {mark: x}\n      to: {log: sip9, event: e}", "unknown name 'sip9'"),
        ("      from: {mark: x}\n      to: {desk: agent7, shows: X}", "'agent7' is not one of"),
        ("      from: {mark: x}\n      to: {mark: y}\n      seconds: -1", "must be a number >= 0"),
        ("      from: {mark: x}\n      to: {mark: y}\n      within: 3", "unknown key"),
    ],
)
def test_a_bad_interval_fails_with_its_line(tmp_path: Path, body: str, error: str) -> None:
    with pytest.raises(ScenarioError, match=r"s\.yaml:\d+: ") as caught:
        load(tmp_path, body)
    assert error in str(caught.value)
