"""The compose engine: every service of compose.yaml as a Docker container (DESIGN §4).

``drlab --engine compose`` drives the same lab as ``docker compose up``: one image, host
networking, each service on its loopback address. It is an ``Engine`` (``protocol.py``) with the
embedded engine's outputs — the same state files (``common.StateFiles``), timeline entries and
progress lines, whose processes are containers — so faults, status, chaos and the timeline work
unchanged:

- ``up`` starts the services in the same waves of ``depends_on`` (``compose up -d --no-deps``
  per wave) and waits for each container's JSON ``ready`` line; ``--time-scale`` reaches the
  containers as ``DRLAB_TIME_SCALE`` (the image's entrypoint appends ``--time-scale``).
- kill is ``docker kill`` (SIGKILL: the container exits 137), pause/resume are ``docker
  pause``/``unpause`` (the cgroup freezer), stop is ``docker stop``, start is ``docker start``.
- ``down`` stops the containers in reverse waves and removes every container of the project.
- logs and the timeline read each container's output as it comes: a ``docker logs --follow``
  per container start appends it to ``STATE_DIR/compose/logs/SERVICE.log`` (the scenario runner
  and ``drlab logs -f`` read those files live, and they stay readable after ``down``). A lab
  started by ``docker compose up`` itself has no followers: its logs are copied on demand.
- container states are read from Docker at most every ``LIVE_MAX_AGE`` seconds (a scenario
  polls them many times a second); every fault drlab applies reads them afresh.

Before anything starts, ``up`` refuses with what to do — no Docker engine, the image missing, a
lab already running in containers, a port already taken — and removes stopped containers left by
an earlier run; a service that fails to come up stops the whole lab, so none is left half-started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from emulator.common.jsonlog import JsonLog
from emulator.lab.engine.common import StateFiles, start_in_waves
from emulator.lab.engine.docker_cli import Container, Docker
from emulator.lab.engine.logs import first_ready, json_lines, log_tail, ready_endpoints
from emulator.lab.engine.processes import process_state, start_time
from emulator.lab.engine.protocol import Progress, ServiceProcess
from emulator.lab.errors import DockerFailed, LabError
from emulator.lab.topology import Topology

READY_TIMEOUT = 60.0
STOP_GRACE = 5
LOG_REFRESH = 1.0
LIVE_MAX_AGE = 0.5
FOLLOWER_GRACE = 5.0
DEFAULT_IMAGE = "drlab:latest"
BUILD_HINT = (
    "build it: 'pip wheel -w .drlab/wheelhouse . && docker build -t {image} .' (with no registry "
    "access, after 'scripts/docker-engine.sh up', add '--network host --build-arg "
    "BASE_IMAGE=drlab-base:bookworm')"
)


class ComposeEngine:
    name = "compose"

    def __init__(self, topology: Topology, state_dir: Path, docker: Docker | None = None) -> None:
        self.topology = topology
        self.state_dir = state_dir / "compose"
        self.files = StateFiles(self.state_dir)
        self.docker = docker or Docker(topology.path)
        self._logs_read = 0.0
        self._live_at = -LIVE_MAX_AGE
        self._live_cache: dict[str, Container] = {}

    # -- state: what was saved at up, with each container's live state --------------------

    def _live(self, fresh: bool = False) -> dict[str, Container]:
        """The project's containers by service, read again when older than LIVE_MAX_AGE."""
        if fresh or time.monotonic() - self._live_at >= LIVE_MAX_AGE:
            self._live_cache = self.docker.containers()
            self._live_at = time.monotonic()
        return self._live_cache

    def _changed(self) -> None:
        """A container was started, stopped, killed or paused: the next read asks Docker."""
        self._live_at = -LIVE_MAX_AGE

    @property
    def timeline(self) -> JsonLog:
        return self.files.timeline

    def endpoints(self, name: str) -> dict[str, str]:
        return self.files.endpoints(name)

    def log_path(self, name: str) -> Path:
        return self.files.log_path(name)

    def load(self) -> dict[str, Any]:
        state = self.files.saved()
        containers = self._live()
        services = state.setdefault("services", {})
        for name, container in containers.items():
            entry = services.setdefault(name, {})
            if not entry.get("endpoints") and container.state == "running":
                # Started by 'docker compose up' itself: the endpoints are in its ready line.
                endpoints = first_ready(json_lines(self.docker.logs(container.id).splitlines()))
                if endpoints is not None:
                    entry["endpoints"] = endpoints
                    self.files.update(name, endpoints=endpoints)
            entry.update(
                container=container.id[:12],
                status=container.describe(),
                state=container.state,
                pid=container.pid,
            )
        for name, entry in services.items():
            if name not in containers:
                entry.update(container=None, status="absent", state="stopped", pid=0)
        return state

    def running(self) -> dict[str, int]:
        return {
            name: container.pid
            for name, container in self._live().items()
            if container.state != "stopped"
        }

    def service_state(self, name: str) -> str:
        container = self._live().get(name)
        return container.state if container else "stopped"

    def time_scale(self) -> float:
        # A lab started by 'docker compose up' has no saved state: its scale is the variable's.
        if not self.files.state_file.exists():
            return float(os.environ.get("DRLAB_TIME_SCALE") or 1.0)
        return float(self.files.saved().get("time_scale", 1.0))

    # -- lifecycle ------------------------------------------------------------------------

    def up(self, time_scale: float, progress: Progress) -> None:
        self._refuse_to_start(progress)
        self.files.begin(self.topology, time_scale)
        start_in_waves(self, progress)

    def start(self, name: str, progress: Progress, **context: Any) -> ServiceProcess:
        return self.start_many([name], progress, **context)[0]

    def _refuse_to_start(self, progress: Progress) -> None:
        """Raise ``LabError`` saying what to do when a lab cannot start in containers now."""
        self.docker.check_engine()
        self.docker.compose_command()
        for image in sorted(self._images()):
            if not self.docker.image_present(image):
                raise LabError(f"the image {image} is missing; {BUILD_HINT.format(image=image)}")
        containers = self._live(fresh=True)
        alive = sorted(name for name, c in containers.items() if c.state != "stopped")
        if alive:
            raise LabError(
                f"a lab is already running in containers ({', '.join(alive)}); "
                f"run 'drlab --engine compose down' first"
            )
        if containers:
            self.docker.run(["docker", "rm", "-f", *(c.id for c in containers.values())])
            self._changed()
            progress(f"removed {len(containers)} stopped containers left by an earlier run")
        taken = self._taken_ports()
        if taken:
            more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
            raise LabError(
                f"{len(taken)} of the lab's ports are already in use: {', '.join(taken[:5])}"
                f"{more}; stop what holds them (an embedded lab: 'drlab down'; other "
                f"containers: 'docker ps') and try again"
            )

    def start_many(
        self, names: list[str], progress: Progress, **context: Any
    ) -> list[ServiceProcess]:
        """Start containers together (create them if absent) and wait until each is ready."""
        containers = self._live(fresh=True)
        for name in names:
            container = containers.get(name)
            if container and container.state != "stopped":
                raise LabError(f"{name} is already {container.state}; stop it first")
        existing = [containers[name].id for name in names if name in containers]
        absent = [name for name in names if name not in containers]
        self._changed()
        if existing:
            self.docker.run(["docker", "start", *existing])
        if absent:
            env = {"DRLAB_TIME_SCALE": f"{self.time_scale():g}"}
            self.docker.compose(["up", "-d", "--no-build", "--no-deps", *absent], env)
        started = self._live(fresh=True)
        missing = [name for name in names if name not in started]
        if missing:
            raise LabError(f"compose created no container for {', '.join(missing)}")
        offsets = {name: self._follow(name, started[name]) for name in names}
        return self._wait_ready({name: started[name] for name in names}, offsets, progress, context)

    def _follow(self, name: str, container: Container) -> int:
        """Start the log follower of this container start; the log's size before it."""
        log = self.log_path(name)
        offset = log.stat().st_size if log.exists() else 0
        pid = self.docker.follow_logs(container.id, container.started_at, log)
        self.files.update(
            name,
            container=container.id[:12],
            log=str(log),
            follower={"pid": pid, "started": start_time(pid)},
        )
        return offset

    def _wait_ready(
        self,
        pending: dict[str, Container],
        offsets: dict[str, int],
        progress: Progress,
        context: dict[str, Any],
    ) -> list[ServiceProcess]:
        begun = time.monotonic()
        ready: list[ServiceProcess] = []
        while pending:
            live = self._live()
            for name, container in list(pending.items()):
                log = self.log_path(name)
                endpoints = ready_endpoints(log, offsets[name])
                now = live.get(name)
                if endpoints is not None:
                    del pending[name]
                    self.files.update(name, endpoints=endpoints)
                    self.timeline.event(
                        "service.start",
                        target=name,
                        pid=container.pid,
                        container=container.id[:12],
                        **context,
                    )
                    shown = ", ".join(f"{key} {value}" for key, value in endpoints.items())
                    took = time.monotonic() - begun
                    progress(f"  {name:<10} ready   {shown}  ({took:.1f} s)")
                    ready.append(ServiceProcess(name, container.pid, log, endpoints))
                elif now is None or now.state == "stopped":
                    self._end_followers([name])  # its last lines are in the log once it ends
                    status = now.describe() if now else "removed"
                    raise LabError(
                        f"{name} stopped ({status}) before it was ready; last log lines "
                        f"('docker logs {container.id[:12]}'):\n{log_tail(log, offsets[name])}"
                    )
            if pending and time.monotonic() - begun > READY_TIMEOUT:
                name = next(iter(pending))
                raise LabError(
                    f"{name} was not ready within {READY_TIMEOUT:.0f} s; last log lines:\n"
                    f"{log_tail(self.log_path(name), offsets[name])}"
                )
            if pending:
                time.sleep(0.2)
        return ready

    def signal(self, name: str, sig: signal.Signals, event: str, **context: Any) -> int:
        """SIGKILL is ``docker kill``, SIGSTOP ``docker pause``, SIGCONT ``docker unpause``."""
        container = self._live(fresh=True).get(name)
        if container is None or container.state == "stopped":
            raise LabError(f"{name} is not running")
        self._changed()
        if sig == signal.SIGSTOP:
            if container.state != "paused":
                self.docker.run(["docker", "pause", container.id])
        elif sig == signal.SIGCONT:
            if container.state == "paused":
                self.docker.run(["docker", "unpause", container.id])
        else:
            if container.state == "paused" and sig != signal.SIGKILL:
                self.docker.run(["docker", "unpause", container.id])
            self.docker.run(["docker", "kill", "--signal", sig.name, container.id])
        self.timeline.event(
            event,
            target=name,
            pid=container.pid,
            container=container.id[:12],
            signal=sig.name,
            **context,
        )
        return container.pid

    def stop(self, name: str, **context: Any) -> None:
        self.stop_many([name], **context)

    def stop_many(self, names: list[str], **context: Any) -> None:
        """``docker stop`` together (paused containers are resumed first so they can exit)."""
        containers = self._live(fresh=True)
        alive = {n: containers[n] for n in names if n in containers}
        alive = {n: c for n, c in alive.items() if c.state != "stopped"}
        if len(names) == 1 and not alive:
            raise LabError(f"{names[0]} is not running")
        if not alive:
            return
        self._changed()
        paused = [c.id for c in alive.values() if c.state == "paused"]
        if paused:
            self.docker.run(["docker", "unpause", *paused])
        ids = [c.id for c in alive.values()]
        self.docker.run(["docker", "stop", "-t", str(STOP_GRACE), *ids])
        for name, container in alive.items():
            self.timeline.event(
                "service.stop",
                target=name,
                pid=container.pid,
                container=container.id[:12],
                **context,
            )

    def down(self, progress: Progress) -> None:
        """Stop in reverse waves, keep each container's log, remove every project container."""
        containers = self._live(fresh=True)
        self._copy_logs(self._unfollowed(containers))
        strays = [name for name in containers if name not in self.topology.services]
        for wave in [strays, *reversed(self.topology.start_waves())]:
            alive = [n for n in wave if n in containers and containers[n].state != "stopped"]
            if alive:
                self.stop_many(alive)
                for name in alive:
                    progress(f"  {name:<10} stopped")
        if containers:
            with contextlib.suppress(DockerFailed):
                self._copy_logs(self._unfollowed(self.docker.containers()))
            self.docker.run(["docker", "rm", "-f", *(c.id for c in containers.values())])
            self._changed()
            progress(f"  removed {len(containers)} containers")
            self.timeline.event("lab.down")
        self._end_followers(list(self.files.saved()["services"]))
        self.files.forget()

    def logs(self, name: str | None) -> list[Path]:
        """The followed logs; a lab that 'docker compose up' started has its output copied
        (at most once a second)."""
        if time.monotonic() - self._logs_read >= LOG_REFRESH:
            with contextlib.suppress(LabError):
                containers = self._unfollowed(self._live())
                if name is not None:
                    containers = {n: c for n, c in containers.items() if n == name}
                self._copy_logs(containers)
                self._logs_read = time.monotonic()
        return self.files.logs(name)

    # -- helpers --------------------------------------------------------------------------

    def _unfollowed(self, containers: dict[str, Container]) -> dict[str, Container]:
        """The containers whose output no follower of drlab's appends to their log."""
        services = self.files.saved()["services"]
        return {
            name: container
            for name, container in containers.items()
            if not (services.get(name) or {}).get("follower")
        }

    def _end_followers(self, names: list[str]) -> None:
        """Wait for the log followers of these services to end (their container stopped),
        then kill any that outlive the grace period."""
        services = self.files.saved()["services"]
        followers = [
            (int(f["pid"]), f.get("started"))
            for name in names
            if (f := (services.get(name) or {}).get("follower"))
        ]
        deadline = time.monotonic() + FOLLOWER_GRACE
        for pid, started in followers:
            while process_state(pid, started) != "stopped" and time.monotonic() < deadline:
                time.sleep(0.05)
            if process_state(pid, started) != "stopped":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _copy_logs(self, containers: dict[str, Container]) -> None:
        for name, container in containers.items():
            self.docker.save_logs(container.id, self.log_path(name))

    def _images(self) -> set[str]:
        document = yaml.safe_load(self.topology.path.read_text())
        services = document.get("services", {})
        return {str(body.get("image") or DEFAULT_IMAGE) for body in services.values()}

    def _taken_ports(self) -> list[str]:
        """Every TCP address a service or relay link binds that another process already has."""
        wanted: dict[str, str] = {}
        for spec in self.topology.services.values():
            for endpoint in spec.listens():
                wanted.setdefault(str(endpoint), spec.name)
        for link in self.topology.links.values():
            if link.protocol == "tcp":
                wanted.setdefault(str(link.listen), f"link {link.name}")
        taken = []
        for address, owner in wanted.items():
            host, _, port = address.rpartition(":")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, int(port)))
                except OSError:
                    taken.append(f"{address} ({owner})")
        return taken
