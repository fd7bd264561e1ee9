"""The timeline merges the runner's entries with every service's log, in time order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emulator.lab.timeline import Timeline, format_entry


def write(path: Path, *records: dict[str, Any] | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        for record in records:
            out.write((record if isinstance(record, str) else json.dumps(record)) + "\n")


def test_entries_of_every_source_are_merged_by_time(tmp_path: Path) -> None:
    write(
        tmp_path / "lab.jsonl",
        {"ts": 10.0, "service": "lab", "event": "fault.cut", "links": ["gws1-sip1"]},
        {"ts": 13.0, "service": "lab", "event": "fault.heal", "links": ["gws1-sip1"]},
    )
    write(
        tmp_path / "logs" / "sip1.log",
        {"ts": 11.0, "service": "sip1", "event": "tlib.client_gone", "reason": "reset"},
        {"ts": 12.0, "service": "sip1", "event": "agent.logout", "DN": "7001"},
    )
    write(tmp_path / "logs" / "links.log", {"ts": 10.5, "service": "links", "event": "link.cut"})
    events = [entry["event"] for entry in Timeline(tmp_path).read()]
    assert events == [
        "fault.cut",
        "link.cut",
        "tlib.client_gone",
        "agent.logout",
        "fault.heal",
    ]


def test_a_second_read_returns_only_new_entries_and_waits_for_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "sip1.log"
    write(log, {"ts": 1.0, "service": "sip1", "event": "ready"})
    timeline = Timeline(tmp_path)
    assert [e["event"] for e in timeline.read()] == ["ready"]
    with log.open("a") as out:
        out.write('{"ts": 2.0, "service": "sip1", "event": "tc.pe')
    assert timeline.read() == []
    with log.open("a") as out:
        out.write('er_up"}\n')
    assert [e["event"] for e in timeline.read()] == ["tc.peer_up"]


def test_a_traceback_line_is_kept_at_the_time_of_the_entry_before_it(tmp_path: Path) -> None:
    write(
        tmp_path / "logs" / "gws1.log",
        {"ts": 5.0, "service": "gws1", "event": "ready"},
        "Traceback (most recent call last):",
    )
    entries = Timeline(tmp_path).read()
    assert entries[1] == {
        "ts": 5.0,
        "service": "gws1",
        "event": "output",
        "message": "Traceback (most recent call last):",
    }
    assert format_entry(entries[1]).endswith("gws1       | Traceback (most recent call last):")


def test_filters_keep_a_service_and_the_faults_aimed_at_it(tmp_path: Path) -> None:
    write(
        tmp_path / "lab.jsonl",
        {"ts": 1.0, "service": "lab", "event": "service.kill", "target": "sip3"},
        {"ts": 2.0, "service": "lab", "event": "service.kill", "target": "sip1"},
    )
    write(
        tmp_path / "logs" / "sip3.log",
        {"ts": 3.0, "service": "sip3", "event": "ready"},
        {"ts": 4.0, "service": "sip3", "event": "tc.peer_up"},
    )
    kept = Timeline(tmp_path, services=["sip3"]).read()
    assert [(e["event"], e["ts"]) for e in kept] == [
        ("service.kill", 1.0),
        ("ready", 3.0),
        ("tc.peer_up", 4.0),
    ]
    only = Timeline(tmp_path, events=["service.*"], exclude=["*sip1*"]).read()
    assert len(only) == 2
    assert [e["event"] for e in Timeline(tmp_path, exclude=["tc.*", "ready"]).read()] == [
        "service.kill",
        "service.kill",
    ]


def test_the_readable_line_shows_time_service_event_and_key_fields_first() -> None:
    line = format_entry(
        {
            "ts": 0.0,
            "service": "sip1",
            "dc": "DC1",
            "level": "warning",
            "event": "agent.logout",
            "reason": "LogoutOnDisconnect",
            "AgentID": "agent1",
            "DN": "7001",
        }
    )
    time_text, rest = line.split("  ", 1)
    assert len(time_text) == len("00:00:00.000")
    assert rest.split() == [
        "sip1",
        "agent.logout",
        "[warning]",
        "DN=7001",
        "AgentID=agent1",
        "reason=LogoutOnDisconnect",
    ]
