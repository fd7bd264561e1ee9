"""Structured JSON-lines logs shared by every drlab service.

Every line carries ``ts`` (wall-clock seconds, only for merging timelines across services),
``service``, ``dc`` and ``event``; protocol attributes (``DN``, ``AgentID``, ``ConnID``,
``ReferenceID``, ...) are added as keyword fields so that ``drlab timeline`` can merge and
filter the logs of every service without parsing free text.

Inside a running event loop, lines are formatted and written in batches, at most
``FLUSH_WINDOW`` (10 ms) after they were logged: nothing of a log line runs between a request
and its answer, or between an answer and the next read. On loopback the peer a service answers
is woken on the same CPU and waits for the service to go idle, so whatever a service does after
its ``send`` is on the critical path; batching takes the log off it. Whoever follows a log
(``drlab timeline``, the scenario engine) sees each line within 10 ms; lines still pending when
the process exits normally are written by an ``atexit`` hook; a SIGKILL loses at most the last
10 ms of lines. Field values are encoded when the batch is written, so pass values, not
containers that will change afterwards.
"""

from __future__ import annotations

import asyncio
import atexit
import sys
import time
from typing import Any, TextIO

from emulator.common.jsonfast import make_encoder

# One encoder for every line (``json.dumps(default=...)`` builds a new one per call); the
# separators are json.dumps' own, so lines read as they always have.
_encode = make_encoder(str, item_separator=", ", key_separator=": ")

FLUSH_WINDOW = 0.01  # seconds of wall time, never scaled: how late a line may be written

_Record = tuple[float, str, str, dict[str, Any]]
# Logs holding lines not yet written, held strongly: a log its service dropped at the end of
# asyncio.run still has its last lines ("stopped") written by the exit hook.
_unwritten: set[JsonLog] = set()


@atexit.register
def flush_all() -> None:
    """Write every log's pending lines now (at exit; and for whoever reads a log in-process)."""
    for log in list(_unwritten):
        log.flush()


class JsonLog:
    """Writes one JSON object per line; never raises on an unserialisable field."""

    def __init__(self, service: str, dc: str = "", stream: TextIO | None = None) -> None:
        self.service = service
        self.dc = dc
        self._stream = stream if stream is not None else sys.stdout
        # The loop a flush is scheduled on: a loop that closed before running it (tests run one
        # loop per test) must not leave the log unflushed for the next one.
        self._flush_on: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Record] = []

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        self._pending.append((time.time(), event, level, fields))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._flush_on is not loop:
            self._flush_on = loop
            _unwritten.add(self)
            loop.call_later(FLUSH_WINDOW, self.flush)

    def flush(self) -> None:
        """Format and write every pending line now."""
        self._flush_on = None
        pending, self._pending = self._pending, []
        _unwritten.discard(self)
        if not pending:
            return
        lines = "".join([self._line(record) for record in pending])
        try:
            self._stream.write(lines)
            self._stream.flush()
        except (OSError, ValueError):
            # A closed stdout (the runner went away) must not take the service down.
            return

    def _line(self, record: _Record) -> str:
        ts, event, level, fields = record
        line: dict[str, Any] = {
            "ts": round(ts, 6),
            "service": self.service,
            "dc": self.dc,
            "level": level,
            "event": event,
        }
        for key, value in fields.items():
            if value is not None:
                line[key] = value
        return _encode(line) + "\n"

    def warning(self, event: str, **fields: Any) -> None:
        self.event(event, level="warning", **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.event(event, level="error", **fields)
