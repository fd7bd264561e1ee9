"""What both engines share, by composition: the state directory and the start in waves.

``StateFiles`` owns an engine's directory: ``state.json`` (pids, endpoints, time scale, written
atomically), ``logs/SERVICE.log`` (each service's JSON lines) and ``lab.jsonl`` (the lab's own
timeline). ``start_in_waves`` is ``up`` after the engine's own refusals: the services of one
wave of ``depends_on`` depth together, the next once all are ready, everything stopped again when
one fails — so no lab is left half-started.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, TextIO

from emulator.common.jsonlog import JsonLog
from emulator.lab.engine.protocol import Engine, Progress
from emulator.lab.errors import LabError
from emulator.lab.topology import Topology


class StateFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_file = root / "state.json"
        self.timeline_path = root / "lab.jsonl"
        self._timeline: JsonLog | None = None

    @property
    def timeline(self) -> JsonLog:
        # Opened on first use: a command refused for misuse leaves no state directory behind.
        if self._timeline is None:
            self._timeline = JsonLog("lab", "", _append(self.timeline_path))
        return self._timeline

    def saved(self) -> dict[str, Any]:
        """The state as last written (pids, endpoints, time scale), without asking anyone."""
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {"services": {}, "time_scale": 1.0}
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def update(self, name: str, **fields: Any) -> None:
        """Merge ``fields`` into one service's saved entry."""
        state = self.saved()
        state.setdefault("services", {}).setdefault(name, {}).update(fields)
        self.save(state)

    def begin(self, topology: Topology, time_scale: float) -> None:
        """A fresh state for a lab about to start, and its ``lab.up`` entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.save({"services": {}, "time_scale": time_scale, "file": str(topology.path)})
        self.timeline.event("lab.up", file=str(topology.path), time_scale=time_scale)

    def forget(self) -> None:
        """The lab is down: no state left (the logs and the timeline stay)."""
        with contextlib.suppress(OSError):
            self.state_file.unlink()

    def endpoints(self, name: str) -> dict[str, str]:
        entry = self.saved()["services"].get(name) or {}
        return {str(k): str(v) for k, v in (entry.get("endpoints") or {}).items()}

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def logs(self, name: str | None) -> list[Path]:
        if name is None:
            return sorted((self.root / "logs").glob("*.log"))
        path = self.log_path(name)
        return [path] if path.exists() else []


def start_in_waves(engine: Engine, progress: Progress) -> None:
    """Start the topology's waves in order; on failure (or Ctrl-C) bring the lab down again."""
    try:
        for wave in engine.topology.start_waves():
            engine.start_many(wave, progress)
    except (LabError, KeyboardInterrupt):
        progress("stopping what was started")
        engine.down(progress)
        raise


def _append(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a")
