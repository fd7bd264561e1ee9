"""Structured JSON-lines logs shared by every drlab service.

Every line carries ``ts`` (wall-clock seconds, only for merging timelines across services),
``service``, ``dc`` and ``event``; protocol attributes (``DN``, ``AgentID``, ``ConnID``,
``ReferenceID``, ...) are added as keyword fields so that ``drlab timeline`` can merge and
filter the logs of every service without parsing free text.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

# One encoder for every line (``json.dumps(default=...)`` builds a new one per call).
_ENCODER = json.JSONEncoder(default=str)


class JsonLog:
    """Writes one JSON object per line; never raises on an unserialisable field."""

    def __init__(self, service: str, dc: str = "", stream: TextIO | None = None) -> None:
        self.service = service
        self.dc = dc
        self._stream = stream if stream is not None else sys.stdout

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
            self._stream.write(_ENCODER.encode(record) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            # A closed stdout (the runner went away) must not take the service down.
            pass

    def warning(self, event: str, **fields: Any) -> None:
        self.event(event, level="warning", **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.event(event, level="error", **fields)
