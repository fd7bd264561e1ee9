"""Reading the services' JSON-lines logs: parsed records, the ``ready`` line, a readable tail.

Every service writes one JSON object per line (``emulator.common.jsonlog``); a line that is not
one (a Python traceback, a container runtime's message) is skipped by the readers and kept by
``log_tail``, which is what an error message shows.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def records(path: Path, offset: int = 0) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file from ``offset``; other lines are skipped."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().splitlines()
    except OSError:
        return
    yield from json_lines(lines)


def json_lines(lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
    """The lines that are JSON objects, parsed; other lines are skipped."""
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                yield record


def ready_endpoints(path: Path, offset: int) -> dict[str, str] | None:
    """The endpoints of the first ``ready`` line written to ``path`` after ``offset``."""
    return first_ready(records(path, offset))


def first_ready(entries: Iterable[dict[str, Any]]) -> dict[str, str] | None:
    """The endpoints a service's ``ready`` line announces, if one is among ``entries``."""
    for record in entries:
        if record.get("event") == "ready":
            endpoints = record.get("endpoints") or {}
            return {str(k): str(v) for k, v in endpoints.items()}
    return None


def log_tail(path: Path, offset: int, count: int = 20) -> str:
    """The last ``count`` lines written after ``offset``, as text (for an error message)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-count:]) or "(empty log)"
