"""The embedded engine: every service of compose.yaml as a local process (DESIGN §4).

State lives in a directory (default ``.drlab/``): ``state.json`` (pids, endpoints, time scale),
one log file per service (the service's JSON lines), and ``lab.jsonl`` — the runner's own
timeline entries (service start, stop, kill, pause, resume; faults are added by ``faults``).
Processes are started in their own session so that ``drlab up -d`` can return and ``drlab down``
finds them again. A pid is written to the state the moment its process exists — before it is
ready — with the process's start time, so ``drlab down`` after a crashed runner stops every
process it started and never signals an unrelated process that reused a pid.

Services start in waves of ``depends_on`` depth (the relay, then SIP nodes, GWS nodes, proxies);
the services of one wave start together and the next wave waits until all are ready (their JSON
``ready`` line). ``down`` stops them in the reverse order.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.lab.topology import ServiceSpec, Topology

READY_TIMEOUT = 30.0
STOP_GRACE = 5.0
ROOT = Path(__file__).resolve().parents[2]

Progress = Callable[[str], None]


class LabError(RuntimeError):
    """A lab operation failed; the message says what and what to do."""


@dataclass
class ServiceProcess:
    name: str
    pid: int
    log: Path
    endpoints: dict[str, str]


def process_state(pid: int, started: int | None = None) -> str:
    """running | paused | stopped, read from /proc (a zombie, or another process that reused
    the pid — its start time differs from ``started`` — counts as stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "stopped"
    fields = stat.rsplit(")", 1)[1].split()
    if started is not None and int(fields[19]) != started:
        return "stopped"
    return {"T": "paused", "t": "paused", "Z": "stopped", "X": "stopped"}.get(fields[0], "running")


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def entry_state(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "stopped"
    return process_state(int(entry["pid"]), entry.get("started"))


class EmbeddedEngine:
    name = "embedded"

    def __init__(self, topology: Topology, state_dir: Path) -> None:
        self.topology = topology
        self.state_dir = state_dir
        self.state_file = state_dir / "state.json"
        self.timeline_path = state_dir / "lab.jsonl"
        self._timeline: JsonLog | None = None

    @property
    def timeline(self) -> JsonLog:
        if self._timeline is None:
            self._timeline = JsonLog("lab", "", _append(self.timeline_path))
        return self._timeline

    # -- persisted state ------------------------------------------------------------------

    def saved(self) -> dict[str, Any]:
        """The state as last written (pids, endpoints, time scale), without asking anyone."""
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {"services": {}, "time_scale": 1.0}
        return state

    def load(self) -> dict[str, Any]:
        """The state with each service's live state (here: what /proc says of its pid)."""
        return self.saved()

    def endpoints(self, name: str) -> dict[str, str]:
        """The endpoints a service announced in its ``ready`` line ({} if it never did)."""
        entry = self.saved()["services"].get(name) or {}
        return {str(k): str(v) for k, v in (entry.get("endpoints") or {}).items()}

    def save(self, state: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def _update(self, name: str, **fields: Any) -> None:
        state = self.saved()
        state["services"].setdefault(name, {}).update(fields)
        self.save(state)

    def running(self) -> dict[str, int]:
        """Services whose process is alive (running or paused), by name."""
        return {
            name: int(entry["pid"])
            for name, entry in self.load()["services"].items()
            if entry_state(entry) != "stopped"
        }

    def service_state(self, name: str) -> str:
        return entry_state(self.load()["services"].get(name))

    def time_scale(self) -> float:
        return float(self.load().get("time_scale", 1.0))

    # -- lifecycle ------------------------------------------------------------------------

    def up(self, time_scale: float, progress: Progress) -> None:
        self.refuse_to_start(progress)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.save({"services": {}, "time_scale": time_scale, "file": str(self.topology.path)})
        self.timeline.event("lab.up", file=str(self.topology.path), time_scale=time_scale)
        try:
            for wave in self.topology.start_waves():
                self.start_many(wave, progress)
        except (LabError, KeyboardInterrupt):
            progress("stopping what was started")
            self.down(progress)
            raise

    def refuse_to_start(self, progress: Progress) -> None:
        """Raise ``LabError`` saying what to do when a lab cannot start here now."""
        alive = self.running()
        if alive:
            raise LabError(
                f"a lab is already running from {self.state_dir} ({', '.join(sorted(alive))}); "
                f"run 'drlab down' first"
            )

    def start(self, name: str, progress: Progress, **context: Any) -> ServiceProcess:
        return self.start_many([name], progress, **context)[0]

    def start_many(
        self, names: list[str], progress: Progress, **context: Any
    ) -> list[ServiceProcess]:
        """Start services together and wait until every one is ready (or one fails)."""
        time_scale = self.time_scale()
        started = []
        for name in names:
            state = self.service_state(name)
            if state != "stopped":
                raise LabError(f"{name} is already {state}; stop it first")
        for name in names:
            started.append(self._spawn(self.topology.services[name], time_scale))
        pending = {name: (process, log, offset) for name, process, log, offset in started}
        ready: list[ServiceProcess] = []
        begun = time.monotonic()
        deadline = begun + READY_TIMEOUT
        while pending:
            for name, (process, log, offset) in list(pending.items()):
                endpoints = ready_endpoints(log, offset)
                if endpoints is not None:
                    del pending[name]
                    self._update(name, endpoints=endpoints)
                    self.timeline.event("service.start", target=name, pid=process.pid, **context)
                    shown = ", ".join(f"{key} {value}" for key, value in endpoints.items())
                    took = time.monotonic() - begun
                    progress(f"  {name:<10} ready   {shown}  ({took:.1f} s)")
                    ready.append(ServiceProcess(name, process.pid, log, endpoints))
                elif process.poll() is not None:
                    raise LabError(
                        f"{name} exited with code {process.returncode} before it was ready; "
                        f"last log lines ({log}):\n{log_tail(log, offset)}"
                    )
            if pending and time.monotonic() > deadline:
                name, (process, log, offset) = next(iter(pending.items()))
                process.kill()
                raise LabError(
                    f"{name} was not ready within {READY_TIMEOUT:.0f} s; last log lines ({log}):\n"
                    f"{log_tail(log, offset)}"
                )
            if pending:
                time.sleep(0.05)
        return ready

    def _spawn(
        self, spec: ServiceSpec, time_scale: float
    ) -> tuple[str, subprocess.Popen[bytes], Path, int]:
        log_path = self.log_path(spec.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = log_path.stat().st_size if log_path.exists() else 0
        env = {**os.environ, "DRLAB_COMPOSE_FILE": str(self.topology.path.resolve())}
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                self.argv(spec, time_scale),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=ROOT,
                env=env,
            )
        # Recorded before it is ready: a runner that dies now still leaves the pid to 'down'.
        self._update(
            spec.name,
            pid=process.pid,
            started=start_time(process.pid),
            log=str(log_path),
            endpoints={},
            dc=spec.dc,
            kind=spec.kind,
        )
        return spec.name, process, log_path, offset

    @staticmethod
    def argv(spec: ServiceSpec, time_scale: float) -> list[str]:
        command = list(spec.command)
        if command[0] in ("python", "python3"):
            command[0] = sys.executable
        if "--time-scale" not in command:
            command += ["--time-scale", str(time_scale)]
        return command

    def signal(self, name: str, sig: signal.Signals, event: str, **context: Any) -> int:
        entry = self.load()["services"].get(name)
        if entry_state(entry) == "stopped":
            raise LabError(f"{name} is not running")
        assert entry is not None
        pid = int(entry["pid"])
        os.kill(pid, sig)
        self.timeline.event(event, target=name, pid=pid, signal=sig.name, **context)
        return pid

    def stop(self, name: str, **context: Any) -> None:
        self.stop_many([name], **context)

    def stop_many(self, names: list[str], **context: Any) -> None:
        """SIGTERM together (a paused process is continued first), SIGKILL what outlives grace."""
        services = self.load()["services"]
        entries = {n: services[n] for n in names if entry_state(services.get(n)) != "stopped"}
        if len(names) == 1 and not entries:
            raise LabError(f"{names[0]} is not running")
        for entry in entries.values():
            pid = int(entry["pid"])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + STOP_GRACE
        for name, entry in entries.items():
            pid = int(entry["pid"])
            if not _wait_gone(pid, entry.get("started"), deadline - time.monotonic()):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                _wait_gone(pid, entry.get("started"), STOP_GRACE)
            self.timeline.event("service.stop", target=name, pid=pid, **context)

    def down(self, progress: Progress) -> None:
        state = self.load()
        known = state["services"]
        waves = [w for w in self.topology.start_waves() if any(n in known for n in w)]
        # Services no longer in the file, but started by this state, are stopped first.
        strays = [name for name in known if name not in self.topology.services]
        for wave in [strays, *reversed(waves)]:
            alive = [name for name in wave if entry_state(known.get(name)) != "stopped"]
            if alive:
                self.stop_many(alive)
                for name in alive:
                    progress(f"  {name:<10} stopped")
        if known:
            self.timeline.event("lab.down")
        with contextlib.suppress(OSError):
            self.state_file.unlink()

    def log_path(self, name: str) -> Path:
        """Where a service's JSON-lines log is kept."""
        return self.state_dir / "logs" / f"{name}.log"

    def logs(self, name: str | None) -> list[Path]:
        if name is None:
            return sorted((self.state_dir / "logs").glob("*.log"))
        path = self.log_path(name)
        return [path] if path.exists() else []


def _append(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a")


def records(path: Path, offset: int = 0) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file from ``offset``; other lines are skipped."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().splitlines()
    except OSError:
        return
    yield from json_lines(lines)


def json_lines(lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
    """The lines that are JSON objects, parsed; other lines are skipped."""
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                yield record


def ready_endpoints(path: Path, offset: int) -> dict[str, str] | None:
    return first_ready(records(path, offset))


def first_ready(entries: Iterable[dict[str, Any]]) -> dict[str, str] | None:
    """The endpoints a service's ``ready`` line announces, if one is among ``entries``."""
    for record in entries:
        if record.get("event") == "ready":
            endpoints = record.get("endpoints") or {}
            return {str(k): str(v) for k, v in endpoints.items()}
    return None


def log_tail(path: Path, offset: int, count: int = 20) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-count:]) or "(empty log)"


def _wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if process_state(pid, started) == "stopped":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
