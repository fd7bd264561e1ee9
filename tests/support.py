"""Helpers every test package shares: polling a condition on a deadline (never a fixed sleep),
free loopback ports, and a lab service run as the lab runs it (``python -m <package>``, its
ready line read).

``eventually`` (async) and ``eventually_sync`` (blocking, for tests that drive processes from
plain threads) call ``check`` until it returns something truthy and return that value; past
``timeout`` seconds they fail with an ``AssertionError`` naming ``what`` was awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
POLL_TIMEOUT = 10.0  # seconds a condition gets by default (a loaded machine, not a slow one)


def _describe(check: Callable[..., Any], what: str | None) -> str:
    """``what``, or else the check's name and where it is written (a lambda has no better)."""
    if what is not None:
        return what
    code = getattr(check, "__code__", None)
    name = getattr(check, "__qualname__", repr(check))
    return f"{name} ({code.co_filename}:{code.co_firstlineno})" if code else name


def _timed_out(timeout: float, check: Callable[..., Any], what: str | None) -> AssertionError:
    return AssertionError(f"timed out after {timeout} s waiting for {_describe(check, what)}")


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    timeout: float = POLL_TIMEOUT,
    what: str | None = None,
    *,
    interval: float = 0.01,
) -> T:
    """Await until ``check()`` is truthy and return its value; ``check`` may be a coroutine
    function (an HTTP read, say). Fails with ``AssertionError`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() > deadline:
            raise _timed_out(timeout, check, what)
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T],
    timeout: float = POLL_TIMEOUT,
    what: str | None = None,
    *,
    interval: float = 0.05,
) -> T:
    """``eventually`` for blocking code: sleeps the thread between calls of ``check``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(timeout, check, what)
        time.sleep(interval)


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A loopback port no one holds right now (TCP by default)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def free_udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


def free_tcp_and_udp_port() -> int:
    """A loopback port free for both TCP and UDP (SIPp's ``-p`` over either transport)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
        return port


def drlab_command(state_dir: Path | None, *args: str) -> list[str]:
    """``drlab [--state-dir DIR] ARGS`` as a command line, to run from ``ROOT``."""
    where = ("--state-dir", str(state_dir)) if state_dir is not None else ()
    return [sys.executable, "-m", "emulator.lab", *where, *args]


def drlab(
    state_dir: Path | None, *args: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """``drlab [--state-dir DIR] ARGS`` as a user runs it, from the repository, output captured."""
    return subprocess.run(
        drlab_command(state_dir, *args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class ServiceProcess:
    """One service as a process, ``python -m MODULE ARGS``. Its stdout (stderr merged) is
    drained into ``lines`` as it comes, so the process never blocks on a full pipe; ``ready`` is
    its ready line. A line that is not JSON is kept as ``{"event": "non-json", "text": ...}``."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._drain = asyncio.create_task(self._read(), name=f"drain-{name}")

    @classmethod
    async def start(
        cls,
        module: str,
        *args: str,
        name: str | None = None,
        timeout: float = 20.0,
        preexec_fn: Callable[[], object] | None = None,
    ) -> ServiceProcess:
        """Start it and wait for its ready line; a process that exits first (or is not ready
        within ``timeout``) is stopped and fails with its last output. ``preexec_fn`` runs in
        the child before it execs (to set a resource limit, say)."""
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", module, *args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
        service = cls(name or module, process)
        try:
            await asyncio.wait_for(asyncio.shield(service.ready), timeout)
        except BaseException:
            await service.stop()
            raise
        return service

    @property
    def endpoints(self) -> dict[str, str]:
        endpoints: dict[str, str] = self.ready.result()["endpoints"]
        return endpoints

    def events(self) -> list[str]:
        return [str(line.get("event")) for line in self.lines]

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            try:
                record = json.loads(raw)
            except ValueError:
                record = {"event": "non-json", "text": raw.decode(errors="replace")}
            self.lines.append(record)
            if record.get("event") == "ready" and not self.ready.done():
                self.ready.set_result(record)
        if not self.ready.done():
            output = "".join(str(line) for line in self.lines[-20:])
            self.ready.set_exception(RuntimeError(f"{self.name} exited before ready: {output}"))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL past ``timeout``; returns the exit code once all output is read."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.kill()
                await self.process.wait()
        await self._drain
        if not self.ready.done():
            self.ready.cancel()
        elif not self.ready.cancelled():
            self.ready.exception()
        return self.process.returncode if self.process.returncode is not None else -1


async def refused(module: str, *args: str, timeout: float = 20.0) -> tuple[int, str]:
    """Run ``python -m MODULE ARGS`` that must refuse its command line; its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", module, *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await asyncio.wait_for(process.communicate(), timeout)
    return (process.returncode if process.returncode is not None else -1), errors.decode()
