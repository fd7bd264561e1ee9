"""A chaos run's history: every operation, its result and every fault, as JSON lines.

Jepsen's shape: an operation is written when it is invoked (``phase: invoke``) and again when it
completes — ``ok`` (the event that proves it reached the desktop), ``fail`` (an answer that
refused it: an EventError, an HTTP error) or ``info`` (no answer in time: it may or may not have
happened). Faults are written as they are applied and reverted, the desktops' own changes as
they show them (``desktop``), and the run's phases (``phase``). Each line has ``t``, seconds since
the run began (the loop's clock), and ``ts``, the wall clock, to line it up with the services'
logs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"


@dataclass
class History:
    path: Path
    entries: list[dict[str, Any]] = field(default_factory=list)
    _stream: TextIO | None = None
    _begun: float = field(default_factory=time.monotonic)
    _next_op: int = 1

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = self.path.open("w", encoding="utf-8")

    def now(self) -> float:
        return round(time.monotonic() - self._begun, 3)

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        entry = {"t": self.now(), "ts": round(time.time(), 3), "kind": kind, **fields}
        self.entries.append(entry)
        if self._stream is not None:
            self._stream.write(json.dumps(entry, default=str) + "\n")
            self._stream.flush()
        return entry

    def invoke(self, process: str, op: str, **fields: Any) -> Operation:
        number = self._next_op
        self._next_op += 1
        entry = self.record("op", id=number, process=process, op=op, phase=INVOKE, **fields)
        return Operation(self, number, process, op, entry["t"])

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def window(self, t: float, before: float = 5.0, after: float = 2.0) -> list[dict[str, Any]]:
        """The entries around ``t``: what a violation's report shows."""
        return [e for e in self.entries if t - before <= e["t"] <= t + after]


@dataclass
class Operation:
    history: History
    id: int
    process: str
    op: str
    invoked: float
    done: bool = False

    def complete(self, phase: str, **fields: Any) -> None:
        if self.done:
            return
        self.done = True
        ms = round((self.history.now() - self.invoked) * 1000, 1)
        self.history.record(
            "op", id=self.id, process=self.process, op=self.op, phase=phase, ms=ms, **fields
        )

    def ok(self, **fields: Any) -> None:
        self.complete(OK, **fields)

    def fail(self, error: str, **fields: Any) -> None:
        self.complete(FAIL, error=error, **fields)

    def info(self, error: str, **fields: Any) -> None:
        self.complete(INFO, error=error, **fields)


def read_history(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                yield json.loads(line)
