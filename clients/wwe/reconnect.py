"""What a WWE desktop does between losing its node and getting it back or giving up.

Seed, "WWE reconnects to a new GWS API node": the desktop keeps trying through the same URL (the
DC's proxy) and, "if not recovered after 1 minute", shows "Unable to establish connection. Please
refresh your browser and log in again". The project's Bayeux client already retries by itself
(connect with backoff, re-handshake on ``402::Unknown client``) but stops when a node refuses the
handshake with ``reconnect: none`` (GWS's ``403`` for a session it does not have); this module
runs the client's retry (a new handshake, or moving the session to another node: ``client.py``)
now and then, with backoff, until it succeeds, and the give-up timer. Both are tasks owned here;
``stop`` cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from emulator.bayeux.client import BayeuxClient
from emulator.bayeux.client_core import ClientState
from emulator.bayeux.messages import BayeuxError

# One retry: True when it restored the desktop (no more retries).
Retry = Callable[[], Awaitable[bool]]


def knock(bayeux: BayeuxClient, timeout: float) -> Retry:
    """The retry of a lost connection: a new handshake when the Bayeux client has stopped."""

    async def retry() -> bool:
        if bayeux.state is ClientState.DISCONNECTED:
            with contextlib.suppress(BayeuxError, TimeoutError):
                await bayeux.handshake(timeout=timeout)
        return False  # restored is told by the client's state, not here

    return retry


class Reconnector:
    """One loss at a time; durations in seconds, already scaled."""

    def __init__(self, *, give_up_after: float, retry_min: float, retry_max: float) -> None:
        self.give_up_after = give_up_after
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.lost_at: float | None = None  # loop time the current (or last) loss was noticed
        self.reason: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self, retry: Retry, reason: str, give_up: Callable[[], Awaitable[None]]) -> None:
        """The connection was lost: ``retry`` with backoff until it succeeds; call ``give_up``
        when time is over."""
        self.stop()
        self.lost_at, self.reason = asyncio.get_running_loop().time(), reason
        for coro, name in (
            (self._retry(retry), "wwe-retry"),
            (self._give_up_later(give_up), "wwe-give-up"),
        ):
            task = asyncio.create_task(coro, name=name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        """Connected again, logged off or refreshed: no more retries, no give-up."""
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    async def wait_stopped(self) -> None:
        self.stop()
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)

    async def _retry(self, retry: Retry) -> None:
        delay = self.retry_min
        while True:
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, self.retry_min), self.retry_max)
            if await retry():
                self.stop()
                return

    async def _give_up_later(self, give_up: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(self.give_up_after)
        self.stop()  # the knocking ends with the window
        await give_up()
