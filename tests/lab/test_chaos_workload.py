"""``drlab chaos --workload`` on a real lab: agents and calls live under seeded faults, the
checker's verdict, a rule broken on purpose caught and shrunk to a regression case.

The broken rule is the guide's "SIP Server logs Agent 2 out before moving the ownership"
(``--break-rule=logout-before-move`` on every node): seed 2's fifth fault cuts softphone2's
path to sip1 long enough for it to register at sip2, so DN 7002 moves with agent2 logged in.
The checker must name ``logouts-explained``, shrinking must leave at most three faults, the case
it writes must fail again on the broken lab and pass on the intact one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT, drlab

TIME_SCALE = "0.05"
CASE = ROOT / "tests" / "lab" / "cases" / "logout-before-move.yaml"
SIP_NODES = ("sip1", "sip2", "sip3", "sip4")


def _lab(tmp: Path, compose: Path) -> Iterator[tuple[Path, Path]]:
    state_dir = tmp / "state"
    started = drlab(state_dir, "-f", str(compose), "up", "-d", "--time-scale", TIME_SCALE)
    if started.returncode != 0:
        drlab(state_dir, "-f", str(compose), "down")
        pytest.fail(f"the lab did not start:\n{started.stdout}\n{started.stderr}")
    try:
        yield compose, state_dir
    finally:
        drlab(state_dir, "-f", str(compose), "down")


def _run(lab: tuple[Path, Path], *args: str, timeout: float = 300) -> tuple[int, str]:
    compose, state_dir = lab
    done = drlab(state_dir, "-f", str(compose), *args, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def intact_lab(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield from _lab(tmp_path, ROOT / "compose.yaml")


@pytest.fixture
def broken_lab(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for node in SIP_NODES:
        document["services"][node]["command"].append("--break-rule=logout-before-move")
    variant = tmp_path / "compose.yaml"
    variant.write_text(yaml.safe_dump(document, sort_keys=False))
    yield from _lab(tmp_path, variant)


def test_a_workload_under_chaos_keeps_every_invariant(intact_lab: tuple[Path, Path]) -> None:
    history = intact_lab[1] / "history.jsonl"
    code, out = _run(
        intact_lab,
        "chaos",
        "--workload",
        "--seed",
        "3",
        "--faults",
        "12",
        "--history",
        str(history),
    )
    assert code == 0, out
    for invariant in (
        "one-owner-per-dn",
        "no-stuck-call",
        "logouts-explained",
        "relogin-after-heal",
        "media-accounted",
        "no-crash",
        "every-request-answered",
        "reference-ids-answered-once",
    ):
        assert f"{invariant} " in out and "VIOLATED" not in out, out
    assert "chaos seed 3: no violation" in out
    entries = [json.loads(line) for line in history.read_text().splitlines()]
    ops = [e for e in entries if e["kind"] == "op"]
    done = {(e["op"], e["phase"]) for e in ops}
    # Live agents and calls: the desktops took calls and did call control, proven by events.
    assert {("call", "ok"), ("hold", "ok"), ("retrieve", "ok"), ("release", "ok")} <= done
    assert sum(1 for e in ops if e["op"] == "relogin" and e["phase"] == "ok") == 2
    # Each operation is written when invoked and when it completed, with its timing.
    invoked = {e["id"] for e in ops if e["phase"] == "invoke"}
    completed = {e["id"]: e for e in ops if e["phase"] != "invoke"}
    assert invoked == set(completed) and all("ms" in e for e in completed.values())
    faults = [e for e in entries if e["kind"] == "fault"]
    assert {e["phase"] for e in faults} <= {"apply", "revert", "apply failed", "revert failed"}
    assert len([e for e in faults if e["phase"] == "apply"]) == 12


@pytest.mark.timeout(900)
def test_a_broken_rule_is_caught_shrunk_and_kept_as_a_case(
    broken_lab: tuple[Path, Path], tmp_path: Path
) -> None:
    case = tmp_path / "case.yaml"
    code, out = _run(
        broken_lab,
        "chaos", "--workload", "--seed", "2", "--faults", "5", "--duration", "400",
        "--shrink", "-o", str(case),
        timeout=800,
    )  # fmt: skip
    assert code == 1, out
    assert (
        "VIOLATION logouts-explained: sip1 moved DN 7002 with agent agent2 still logged in" in out
    )
    assert "seed 2, faults:" in out and "violated here" in out
    written = yaml.safe_load(case.read_text())
    assert written["invariant"] == "logouts-explained" and written["seed"] == 2
    assert 1 <= len(written["faults"]) <= 3, written
    assert f"shrunk to {len(written['faults'])} fault(s)" in out
    code, out = _run(broken_lab, "chaos", "--replay", str(case))
    assert code == 1 and "VIOLATION logouts-explained" in out, out


def test_the_kept_case_passes_on_the_intact_lab(intact_lab: tuple[Path, Path]) -> None:
    """The regression case shrinking wrote for logout-before-move (tests/lab/cases)."""
    code, out = _run(intact_lab, "chaos", "--replay", str(CASE))
    assert code == 0, out
    assert "was logouts-explained" in out and "OwnershipMove 1" in out, out


def test_bad_chaos_arguments_are_refused_before_anything_starts(tmp_path: Path) -> None:
    bad_case = tmp_path / "case.yaml"
    bad_case.write_text("kind: drlab-chaos-case\nseed: 1\ninvariant: x\nfaults:\n- {kind: kill}\n")
    for args, message in (
        (("--workload", "--seed", "1"), "--seed and --faults are required"),
        (("--seed", "1", "--faults", "3", "--shrink"), "--shrink needs --workload"),
        (("--replay", str(bad_case)), "fault 1: missing"),
        (
            ("--workload", "--seed", "1", "--faults", "2", "--agent", "nobody"),
            "user:password:DN@DC",
        ),
        (("--workload", "--seed", "1", "--faults", "2", "--agent", "a:b:7001@DC9"), "DC9"),
    ):
        done = drlab(tmp_path / "state", "chaos", *args)
        assert done.returncode != 0, (args, done.stdout)
        assert message in done.stdout + done.stderr, (args, done.stderr)
