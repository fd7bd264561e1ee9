"""A node's log that holds the records of one batch of received messages until the batch ends.

A desktop's request is answered before the lines it caused are formatted and written: on the
node's hot path the reply's ``send`` goes first and the log's JSON encoding and ``write`` follow,
while the desktop is already reading the reply. Records keep their order; outside a batch (timers,
the control API, the SIP side) every record is written at once, as ``JsonLog`` does.
"""

from __future__ import annotations

from typing import Any

from emulator.common.jsonlog import JsonLog


class BatchedLog(JsonLog):
    def __init__(self, inner: JsonLog) -> None:
        super().__init__(inner.service, inner.dc)
        self._inner = inner
        self._pending: list[tuple[str, str, dict[str, Any]]] = []
        self._open = False

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        if self._open:
            self._pending.append((event, level, fields))
        else:
            self._inner.event(event, level, **fields)

    def batch(self) -> BatchedLog:
        """``with log.batch():`` holds the records logged inside until the block ends."""
        return self

    def __enter__(self) -> BatchedLog:
        self._open = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._open = False
        pending, self._pending = self._pending, []
        for event, level, fields in pending:
            self._inner.event(event, level, **fields)
