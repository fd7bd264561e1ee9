"""The embedded engine: every service of compose.yaml as a local process (DESIGN §4).

State lives in a directory (default ``.drlab/``, ``common.StateFiles``): ``state.json`` (pids,
endpoints, time scale), one log file per service (the service's JSON lines), and ``lab.jsonl`` —
the runner's own timeline entries (service start, stop, kill, pause, resume; faults are added by
``emulator.lab.faults``). Processes are started in their own session so that ``drlab up -d`` can
return and ``drlab down`` finds them again. A pid is written to the state the moment its process
exists — before it is ready — with the process's start time, so ``drlab down`` after a crashed
runner stops every process it started and never signals an unrelated process that reused a pid.

Services start in waves of ``depends_on`` depth (the relay, then SIP nodes, GWS nodes, proxies);
the services of one wave start together and the next wave waits until all are ready (their JSON
``ready`` line). ``down`` stops them in the reverse order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.lab.engine.common import StateFiles, start_in_waves
from emulator.lab.engine.logs import log_tail, ready_endpoints
from emulator.lab.engine.processes import entry_state, start_time, wait_gone
from emulator.lab.engine.protocol import Progress, ServiceProcess
from emulator.lab.errors import LabError
from emulator.lab.topology import ServiceSpec, Topology

READY_TIMEOUT = 30.0
STOP_GRACE = 5.0
ROOT = Path(__file__).resolve().parents[3]


class EmbeddedEngine:
    name = "embedded"

    def __init__(self, topology: Topology, state_dir: Path) -> None:
        self.topology = topology
        self.state_dir = state_dir
        self.files = StateFiles(state_dir)

    # -- reading the lab ------------------------------------------------------------------

    @property
    def timeline(self) -> JsonLog:
        return self.files.timeline

    def load(self) -> dict[str, Any]:
        """The saved state, each service's ``state`` being what /proc says of its pid."""
        state = self.files.saved()
        for entry in state["services"].values():
            entry["state"] = entry_state(entry)
        return state

    def endpoints(self, name: str) -> dict[str, str]:
        return self.files.endpoints(name)

    def running(self) -> dict[str, int]:
        return {
            name: int(entry["pid"])
            for name, entry in self.load()["services"].items()
            if entry["state"] != "stopped"
        }

    def service_state(self, name: str) -> str:
        return entry_state(self.files.saved()["services"].get(name))

    def time_scale(self) -> float:
        return float(self.load().get("time_scale", 1.0))

    def log_path(self, name: str) -> Path:
        return self.files.log_path(name)

    def logs(self, name: str | None) -> list[Path]:
        return self.files.logs(name)

    # -- lifecycle ------------------------------------------------------------------------

    def up(self, time_scale: float, progress: Progress) -> None:
        alive = self.running()
        if alive:
            raise LabError(
                f"a lab is already running from {self.state_dir} ({', '.join(sorted(alive))}); "
                f"run 'drlab down' first"
            )
        self.files.begin(self.topology, time_scale)
        start_in_waves(self, progress)

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
                    self.files.update(name, endpoints=endpoints)
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
                argv(spec, time_scale),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=ROOT,
                env=env,
            )
        # Recorded before it is ready: a runner that dies now still leaves the pid to 'down'.
        self.files.update(
            spec.name,
            pid=process.pid,
            started=start_time(process.pid),
            log=str(log_path),
            endpoints={},
            dc=spec.dc,
            kind=spec.kind,
        )
        return spec.name, process, log_path, offset

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
            if not wait_gone(pid, entry.get("started"), deadline - time.monotonic()):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                wait_gone(pid, entry.get("started"), STOP_GRACE)
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
        self.files.forget()


def argv(spec: ServiceSpec, time_scale: float) -> list[str]:
    """The service's command as a local process: this Python, and the lab's time scale."""
    command = list(spec.command)
    if command[0] in ("python", "python3"):
        command[0] = sys.executable
    if "--time-scale" not in command:
        command += ["--time-scale", str(time_scale)]
    return command
