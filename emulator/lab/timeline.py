"""``drlab timeline``: one time-ordered view of the runner's and every service's logs (DESIGN §3).

Sources are the runner's ``lab.jsonl`` (lab up/down, service start/stop/kill/pause/resume, every
fault and heal, chaos plans) and each service's JSON-lines log; entries are merged by their
``ts`` (wall-clock, only for ordering across processes). A line that is not JSON (a traceback on
a service's stderr) is kept as an ``output`` entry at the time of the entry before it, so a crash
shows where it happened. The readable form is one line per entry: time, service, event, then the
fields a DR engineer looks for first (target, link, DN, AgentID, ConnID, message, ...).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

HIDDEN = ("ts", "service", "dc", "level", "event")
# Shown first, in this order; the other fields follow as they come.
KEY_FIELDS = (
    "target",
    "links",
    "link",
    "dcs",
    "mode",
    "ttl",
    "DN",
    "ThisDN",
    "AgentID",
    "ConnID",
    "ReferenceID",
    "message",
    "peer",
    "reason",
    "error",
)
MAX_VALUE = 80
# What the run reports and the dashboard leave out: connection bookkeeping of the relay, idle
# heartbeats, every HTTP request and token check.
ROUTINE_EVENTS = ("link.connection_*", "*heartbeat*", "http.request", "auth.*")


@dataclass
class _Source:
    path: Path
    offset: int = 0
    last_ts: float = 0.0
    partial: bytes = field(default=b"")


def timeline_sources(state_dir: Path) -> list[Path]:
    return [state_dir / "lab.jsonl", *sorted((state_dir / "logs").glob("*.log"))]


class Timeline:
    """Reads every source from where it was last read; ``read`` returns new entries merged."""

    def __init__(
        self,
        state_dir: Path,
        services: Iterable[str] | None = None,
        events: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> None:
        self.state_dir = state_dir
        self.services = set(services) if services else None
        self.events = tuple(events)  # glob patterns of events to keep (all when empty)
        self.exclude = tuple(exclude)  # glob patterns of events to leave out
        self._sources: dict[Path, _Source] = {}

    def wanted(self, entry: dict[str, Any]) -> bool:
        event = str(entry.get("event", ""))
        if self.events and not any(fnmatch.fnmatchcase(event, p) for p in self.events):
            return False
        if any(fnmatch.fnmatchcase(event, pattern) for pattern in self.exclude):
            return False
        if self.services is None:
            return True
        return entry.get("service") in self.services or entry.get("target") in self.services

    def read(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for path in timeline_sources(self.state_dir):
            source = self._sources.setdefault(path, _Source(path))
            entries.extend(_read_new(source))
        entries = [entry for entry in entries if self.wanted(entry)]
        entries.sort(key=lambda entry: float(entry.get("ts", 0.0)))
        return entries

    def follow(self, emit: Callable[[dict[str, Any]], None], poll: float = 0.2) -> None:
        """Emit what is there, then new entries as they are written, until interrupted."""
        while True:
            for entry in self.read():
                emit(entry)
            time.sleep(poll)


def _read_new(source: _Source) -> Iterator[dict[str, Any]]:
    try:
        with source.path.open("rb") as log:
            log.seek(source.offset)
            data = log.read()
    except OSError:
        return
    source.offset += len(data)
    data = source.partial + data
    lines = data.split(b"\n")
    source.partial = lines.pop()  # an unfinished last line waits for the next read
    service = source.path.stem if source.path.suffix == ".log" else "lab"
    for raw in lines:
        if not raw.strip():
            continue
        record: Any = None
        with contextlib.suppress(ValueError):
            record = json.loads(raw)
        if isinstance(record, dict) and "ts" in record:
            with contextlib.suppress(TypeError, ValueError):
                source.last_ts = float(record["ts"])
            yield record
        else:
            text = raw.decode(errors="replace").rstrip()
            yield {"ts": source.last_ts, "service": service, "event": "output", "message": text}


def format_entry(entry: dict[str, Any]) -> str:
    try:
        when = datetime.fromtimestamp(float(entry.get("ts", 0.0))).strftime("%H:%M:%S.%f")[:-3]
    except (TypeError, ValueError, OverflowError):
        when = "??:??:??.???"
    service = str(entry.get("service", "?"))
    event = str(entry.get("event", "?"))
    level = entry.get("level")
    if level in ("warning", "error"):
        event = f"{event} [{level}]"
    if event == "output":
        return f"{when}  {service:<10} | {entry.get('message', '')}"
    fields = [key for key in KEY_FIELDS if key in entry]
    fields += [key for key in entry if key not in HIDDEN and key not in KEY_FIELDS]
    shown = " ".join(f"{key}={_value(entry[key])}" for key in fields)
    return f"{when}  {service:<10} {event:<24} {shown}".rstrip()


def _value(value: Any) -> str:
    if isinstance(value, str):
        text = value if value and " " not in value else json.dumps(value)
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        text = ",".join(value)
    else:
        text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."
