"""The Docker command line as the compose engine uses it: containers of one Compose project.

Everything goes through the ``docker`` CLI (and ``docker compose`` v2 or ``docker-compose``
v1.29 to create containers from compose.yaml), so the engine works with any Docker engine the
CLI reaches. Containers are found by the labels Compose puts on them
(``com.docker.compose.project`` and ``.service``), never by name: v1 names them
``drlab_sip1_1``, v2 ``drlab-sip1-1``. A missing CLI or an engine that does not answer raises
``NoEngine`` saying what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.lab.errors import DockerFailed, NoEngine

PROJECT = "drlab"
CALL_TIMEOUT = 120.0
NO_ENGINE_HINT = (
    "on Debian run 'scripts/docker-engine.sh up' from the repository (it installs docker.io and "
    "starts dockerd with no bridge network; on drlab machines '../shared/tools/docker-engine up' "
    "does the same), elsewhere install Docker (https://docs.docker.com/engine/install/) and "
    "start it"
)


@dataclass(frozen=True)
class Container:
    id: str
    service: str
    status: str  # Docker's: created, running, paused, restarting, exited, dead
    pid: int
    exit_code: int
    started_at: str

    @property
    def state(self) -> str:
        """running | paused | stopped, as ``drlab status`` names them."""
        if self.status in ("running", "restarting"):
            return "running"
        return "paused" if self.status == "paused" else "stopped"

    def describe(self) -> str:
        if self.status == "exited":
            return f"Exited ({self.exit_code})"
        return self.status.capitalize()


class Docker:
    def __init__(self, compose_file: Path, project: str = PROJECT) -> None:
        self.compose_file = compose_file
        self.project = project
        self._compose: list[str] | None = None

    def run(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        timeout: float = CALL_TIMEOUT,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        if shutil.which(args[0]) is None:
            raise NoEngine(f"no '{args[0]}' command; {NO_ENGINE_HINT}")
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, **(env or {})},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DockerFailed(
                f"'{' '.join(args[:3])}' did not finish in {timeout:.0f} s"
            ) from None
        if check and done.returncode != 0:
            message = (done.stderr.strip() or done.stdout.strip()).splitlines()
            shown = "\n".join(message[-5:]) or f"exit code {done.returncode}"
            raise DockerFailed(f"'{' '.join(args[:3])} ...' failed: {shown}")
        return done

    def check_engine(self) -> None:
        done = self.run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
            raise NoEngine(f"no Docker engine answers ({reason}); {NO_ENGINE_HINT}")

    def compose_command(self) -> list[str]:
        """``docker compose`` (v2) when the plugin is there, else ``docker-compose`` (v1.29)."""
        if self._compose is None:
            v2 = shutil.which("docker") and self.run(["docker", "compose", "version"], check=False)
            if v2 and v2.returncode == 0:
                self._compose = ["docker", "compose"]
            elif shutil.which("docker-compose"):
                self._compose = ["docker-compose"]
            else:
                raise NoEngine(
                    "neither 'docker compose' nor 'docker-compose' is installed; install the "
                    "Compose plugin (or Debian's docker-compose)"
                )
        return self._compose

    def compose(self, args: list[str], env: dict[str, str]) -> None:
        base = [*self.compose_command(), "-f", str(self.compose_file), "-p", self.project]
        self.run([*base, *args], env={"COMPOSE_PROJECT_NAME": self.project, **env})

    def image_present(self, image: str) -> bool:
        return self.run(["docker", "image", "inspect", image], check=False).returncode == 0

    def containers(self) -> dict[str, Container]:
        """The project's containers (any state) by service; the newest wins if there are two."""
        label = f"label=com.docker.compose.project={self.project}"
        listed = self.run(
            ["docker", "ps", "-a", "-q", "--no-trunc", "--filter", label], check=False
        )
        if listed.returncode != 0:
            self.check_engine()  # says what to do when no engine answers
            self.run(["docker", "ps", "-a", "-q", "--filter", label])
        ids = listed.stdout.split()
        if not ids:
            return {}
        done = self.run(["docker", "inspect", *ids], check=False)
        try:
            records: list[dict[str, Any]] = json.loads(done.stdout or "[]")
        except ValueError:
            records = []
        found: dict[str, Container] = {}
        for record in sorted(records, key=lambda r: str(r.get("Created", ""))):
            labels = record.get("Config", {}).get("Labels") or {}
            service = labels.get("com.docker.compose.service")
            state = record.get("State", {})
            if service:
                found[service] = Container(
                    id=str(record["Id"]),
                    service=service,
                    status=str(state.get("Status", "dead")),
                    pid=int(state.get("Pid") or 0),
                    exit_code=int(state.get("ExitCode") or 0),
                    started_at=str(state.get("StartedAt", "")),
                )
        return found

    def logs(self, container: str, since: str | None = None) -> str:
        args = ["docker", "logs", *(["--since", since] if since else []), container]
        done = self.run(args, check=False)
        return done.stdout + done.stderr

    def follow_logs(self, container: str, since: str, path: Path) -> int:
        """Start a detached ``docker logs --follow`` appending the container's output from
        ``since`` to ``path``; it ends by itself when the container stops. Returns its pid.

        The shell backgrounds it and exits, so the follower outlives ``drlab up -d`` (a CLI
        that returns) without being anyone's child to reap."""
        path.parent.mkdir(parents=True, exist_ok=True)
        script = 'docker logs --follow --since "$1" "$2" >>"$3" 2>&1 </dev/null & echo $!'
        done = self.run(["sh", "-c", script, "drlab-logs", since, container, str(path)])
        return int(done.stdout.strip())

    def save_logs(self, container: str, path: Path) -> None:
        """The container's whole output (stdout and stderr) into ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            subprocess.run(
                ["docker", "logs", container],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=CALL_TIMEOUT,
                check=False,
            )
        tmp.replace(path)
