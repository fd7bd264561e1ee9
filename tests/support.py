"""Helpers every test package shares: polling a condition on a deadline (never a fixed sleep),
and free loopback ports.

``eventually`` (async) and ``eventually_sync`` (blocking, for tests that drive processes from
plain threads) call ``check`` until it returns something truthy and return that value; past
``timeout`` seconds they fail with an ``AssertionError`` naming ``what`` was awaited.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
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
