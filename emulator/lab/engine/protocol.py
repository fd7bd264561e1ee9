"""What the lab asks of an engine: the ``Engine`` protocol both engines implement.

An engine runs the services of one topology (``compose.yaml``) — as local processes
(``embedded``) or as Docker containers (``compose``) — and keeps its state, the services' logs and
the lab's timeline in one directory. The CLI, the fault API (``emulator.lab.faults``), ``drlab
status`` and the scenario runner use only what is listed here, so they never look at which engine
runs the lab. Every method is blocking (a process start waits for its ``ready`` line); an asyncio
caller runs them in a thread (``asyncio.to_thread``), as the fault API does.

Services a fault takes down or brings back are named by the topology; a method given a service
in a state that does not allow it (``stop`` of a stopped one) raises ``LabError`` saying so.
``**context`` is written on the timeline entry of the operation (``source="chaos seed 7"``).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from emulator.common.jsonlog import JsonLog
from emulator.lab.topology import Topology

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServiceProcess:
    """A service an engine started: its pid (the container's for compose), log and endpoints."""

    name: str
    pid: int
    log: Path
    endpoints: dict[str, str]


class Engine(Protocol):
    name: str
    topology: Topology
    state_dir: Path

    @property
    def timeline(self) -> JsonLog:
        """The lab's own entries (``lab.jsonl``): service starts, stops, signals, faults."""
        ...

    # -- reading the lab ------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """The saved state (``services``: pid, endpoints, dc, kind...; ``time_scale``), each
        service's entry refreshed with what the engine sees now."""
        ...

    def endpoints(self, name: str) -> dict[str, str]:
        """The endpoints a service announced in its ``ready`` line ({} if it never did)."""
        ...

    def running(self) -> dict[str, int]:
        """Services whose process or container is alive (running or paused): name -> pid."""
        ...

    def service_state(self, name: str) -> str:
        """running | paused | stopped."""
        ...

    def time_scale(self) -> float:
        """The factor every timer of the running lab is multiplied by."""
        ...

    def log_path(self, name: str) -> Path:
        """Where a service's JSON-lines log is kept (readable while it runs)."""
        ...

    def logs(self, name: str | None) -> list[Path]:
        """The log files of one service, or of every service (``None``)."""
        ...

    # -- lifecycle ------------------------------------------------------------------------

    def up(self, time_scale: float, progress: Progress) -> None:
        """Start every service in waves of ``depends_on``; refuse (``LabError``) when a lab
        cannot start here; a service that fails to come up stops what was started."""
        ...

    def down(self, progress: Progress) -> None:
        """Stop every service in reverse waves (also those of a crashed runner)."""
        ...

    def start(self, name: str, progress: Progress, **context: Any) -> ServiceProcess:
        """Start a stopped service and wait until it is ready."""
        ...

    def start_many(
        self, names: list[str], progress: Progress, **context: Any
    ) -> list[ServiceProcess]:
        """Start stopped services together and wait until every one is ready."""
        ...

    def stop(self, name: str, **context: Any) -> None:
        """Stop a service gracefully (SIGTERM, SIGKILL after a grace period)."""
        ...

    def signal(self, name: str, sig: signal.Signals, event: str, **context: Any) -> int:
        """Send ``sig`` (SIGKILL, SIGSTOP, SIGCONT) to a running service, logging ``event``;
        returns the pid signalled."""
        ...
