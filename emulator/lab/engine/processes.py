"""Local processes as the lab sees them: running, paused or stopped, read from ``/proc``.

A pid alone is not an identity: after a crash the kernel may give it to an unrelated process.
The state therefore keeps each pid with its start time (field 22 of ``/proc/PID/stat``), and a
pid whose start time differs counts as stopped — ``drlab down`` never signals a stranger.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any


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
    """The state of a service as saved by the embedded engine (its pid and start time)."""
    if not entry:
        return "stopped"
    return process_state(int(entry["pid"]), entry.get("started"))


def wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    """Wait until the process is gone (reaped if it is our child); False at the deadline."""
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if process_state(pid, started) == "stopped":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
