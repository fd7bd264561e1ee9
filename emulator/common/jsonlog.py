"""Structured JSON-lines logs shared by every drlab service.

Every line carries ``ts`` (wall-clock seconds, only for merging timelines across services),
``service``, ``dc`` and ``event``; protocol attributes (``DN``, ``AgentID``, ``ConnID``,
``ReferenceID``, ...) are added as keyword fields so that ``drlab timeline`` can merge and
filter the logs of every service without parsing free text.

Inside a running event loop the stream is flushed once per loop iteration, after the callbacks
that wrote, rather than once per line: a request that logs three lines costs one ``write``
instead of three, and a reply sent in the same callback leaves before its log lines are written.
Whoever follows a log (``drlab timeline``, the scenario engine) sees each line within the same
loop iteration; a SIGKILL loses at most the lines of the iteration it interrupts.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any, TextIO

from emulator.common.jsonfast import make_encoder

# One encoder for every line (``json.dumps(default=...)`` builds a new one per call); the
# separators are json.dumps' own, so lines read as they always have.
_encode = make_encoder(str, item_separator=", ", key_separator=": ")


class JsonLog:
    """Writes one JSON object per line; never raises on an unserialisable field."""

    def __init__(self, service: str, dc: str = "", stream: TextIO | None = None) -> None:
        self.service = service
        self.dc = dc
        self._stream = stream if stream is not None else sys.stdout
        # The loop a flush is scheduled on: a loop that closed before running it (tests run one
        # loop per test) must not leave the log unflushed for the next one.
        self._flush_on: asyncio.AbstractEventLoop | None = None

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        record: dict[str, Any] = {
            "ts": round(time.time(), 6),
            "service": self.service,
            "dc": self.dc,
            "level": level,
            "event": event,
        }
        for key, value in fields.items():
            if value is not None:
                record[key] = value
        try:
            self._stream.write(_encode(record) + "\n")
        except (OSError, ValueError):
            # A closed stdout (the runner went away) must not take the service down.
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._flush_on is not loop:
            self._flush_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_on = None
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def warning(self, event: str, **fields: Any) -> None:
        self.event(event, level="warning", **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.event(event, level="error", **fields)
