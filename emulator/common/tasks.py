"""Owned background tasks: every task a service starts is kept, and its failure logged.

STYLE §7 ("own every task; shut down in order"): ``spawn`` keeps a reference until the task is
done, a task that fails is logged as ``{prefix}.task_failed`` instead of vanishing, and ``close``
gives running tasks a grace period (e.g. BYEs just sent) before cancelling the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from emulator.common.jsonlog import JsonLog


class OwnedTasks:
    def __init__(self, log: JsonLog, prefix: str) -> None:
        self._log = log
        self._event = f"{prefix}.task_failed"
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error(self._event, error=repr(task.exception()))

    async def close(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for running tasks, then cancel what is left."""
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
