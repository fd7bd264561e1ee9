"""The embedded engine: every service of compose.yaml as a local process (DESIGN §4).

State lives in a directory (default ``.drlab/``): ``state.json`` (pids, endpoints, time scale),
one log file per service (the service's JSON lines), and ``lab.jsonl`` — the runner's own
timeline entries (service start, stop, kill, pause, resume). Processes are started in their own
session so that ``drlab up -d`` can return and ``drlab down`` finds them again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.lab.topology import ServiceSpec, Topology

READY_TIMEOUT = 30.0
STOP_GRACE = 5.0


class LabError(RuntimeError):
    """A lab operation failed; the message says what and what to do."""


@dataclass
class ServiceProcess:
    name: str
    pid: int
    log: Path
    endpoints: dict[str, str]


def process_state(pid: int) -> str:
    """running | paused | stopped, read from /proc (a zombie counts as stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "stopped"
    state = stat.rsplit(")", 1)[1].split()[0]
    return {"T": "paused", "t": "paused", "Z": "stopped", "X": "stopped"}.get(state, "running")


class EmbeddedEngine:
    def __init__(self, topology: Topology, state_dir: Path) -> None:
        self.topology = topology
        self.state_dir = state_dir
        self.state_file = state_dir / "state.json"
        self.timeline = JsonLog("lab", "", _append(state_dir / "lab.jsonl"))

    # -- persisted state ------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {"services": {}, "time_scale": 1.0}
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def running(self) -> dict[str, int]:
        """Services whose process is alive (running or paused), by name."""
        services = self.load()["services"]
        return {
            name: int(entry["pid"])
            for name, entry in services.items()
            if process_state(int(entry["pid"])) != "stopped"
        }

    # -- lifecycle ------------------------------------------------------------------------

    def up(self, time_scale: float, progress: Callable[[str], None]) -> None:
        alive = self.running()
        if alive:
            raise LabError(
                f"a lab is already running from {self.state_dir} ({', '.join(sorted(alive))}); "
                f"run 'drlab down' first"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.save({"services": {}, "time_scale": time_scale, "file": str(self.topology.path)})
        try:
            for name in self.topology.start_order():
                self.start(name, progress)
        except LabError:
            self.down(lambda line: None)
            raise

    def start(self, name: str, progress: Callable[[str], None]) -> ServiceProcess:
        spec = self.topology.services[name]
        state = self.load()
        entry = state["services"].get(name)
        if entry and process_state(int(entry["pid"])) != "stopped":
            raise LabError(f"{name} is already running (pid {entry['pid']})")
        log_path = self.state_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self._argv(spec, float(state.get("time_scale", 1.0)))
        offset = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=Path(__file__).resolve().parents[2],
            )
        endpoints = self._wait_ready(name, process, log_path, offset)
        state = self.load()
        state["services"][name] = {
            "pid": process.pid,
            "log": str(log_path),
            "endpoints": endpoints,
            "dc": spec.dc,
            "kind": spec.kind,
        }
        self.save(state)
        self.timeline.event("service.start", target=name, pid=process.pid)
        shown = ", ".join(f"{key} {value}" for key, value in endpoints.items())
        progress(f"  {name:<10} ready  {shown}")
        return ServiceProcess(name, process.pid, log_path, endpoints)

    def _argv(self, spec: ServiceSpec, time_scale: float) -> list[str]:
        command = list(spec.command)
        if command[0] in ("python", "python3"):
            command[0] = sys.executable
        if "--time-scale" not in command:
            command += ["--time-scale", str(time_scale)]
        return command

    def _wait_ready(
        self, name: str, process: subprocess.Popen[bytes], log_path: Path, offset: int
    ) -> dict[str, str]:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            for record in _records(log_path, offset):
                if record.get("event") == "ready":
                    endpoints = record.get("endpoints") or {}
                    return {str(k): str(v) for k, v in endpoints.items()}
            if process.poll() is not None:
                raise LabError(
                    f"{name} exited with code {process.returncode} before it was ready; "
                    f"last log lines:\n{_tail(log_path, offset)}"
                )
            time.sleep(0.05)
        process.kill()
        raise LabError(
            f"{name} was not ready within {READY_TIMEOUT:.0f} s; last log lines:\n"
            f"{_tail(log_path, offset)}"
        )

    def signal(self, name: str, sig: signal.Signals, event: str) -> int:
        entry = self.load()["services"].get(name)
        if entry is None or process_state(int(entry["pid"])) == "stopped":
            raise LabError(f"{name} is not running")
        pid = int(entry["pid"])
        os.kill(pid, sig)
        self.timeline.event(event, target=name, pid=pid, signal=sig.name)
        return pid

    def stop(self, name: str) -> None:
        entry = self.load()["services"].get(name)
        if entry is None:
            raise LabError(f"{name} is not running")
        pid = int(entry["pid"])
        if process_state(pid) == "paused":
            os.kill(pid, signal.SIGCONT)
        if process_state(pid) != "stopped":
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, STOP_GRACE):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, STOP_GRACE)
        self.timeline.event("service.stop", target=name, pid=pid)

    def down(self, progress: Callable[[str], None]) -> None:
        state = self.load()
        for name in reversed(list(state["services"])):
            pid = int(state["services"][name]["pid"])
            if process_state(pid) != "stopped":
                with contextlib.suppress(ProcessLookupError):
                    self.stop(name)
                progress(f"  {name:<10} stopped")
        with contextlib.suppress(OSError):
            self.state_file.unlink()

    def logs(self, name: str | None) -> list[Path]:
        services = self.load()["services"]
        names = [name] if name else list(services)
        return [Path(services[n]["log"]) for n in names if n in services]


def _append(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a")


def _records(path: Path, offset: int) -> Iterator[dict[str, Any]]:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().splitlines()
    except OSError:
        return
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                yield record


def _tail(path: Path, offset: int, count: int = 20) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-count:]) or "(empty log)"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if process_state(pid) == "stopped":
            return True
        time.sleep(0.02)
    return False
