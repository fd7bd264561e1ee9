"""The lab's time scale: every protocol timer is a parameter multiplied by one factor.

``--time-scale 0.05`` makes a 30 s ownership move delay last 1.5 s, so DR scenarios run in CI in
seconds and at real speed (``--time-scale 1``) in a rehearsal lab. Media packetisation (20 ms RTP)
is never scaled: it is not a timer of the DR rules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class TimeScale:
    factor: float = 1.0

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(f"time scale must be > 0, got {self.factor}")

    def __call__(self, seconds: float) -> float:
        """Return the scaled duration of a timer given in real-deployment seconds."""
        return seconds * self.factor

    def scaled(self, timers: T) -> T:
        """A copy of a frozen dataclass of timers with every ``float`` field (seconds) scaled and
        every other field (a flag, a count) kept: the one way a service scales its timer set.
        A timer with a floor (the proxy's, the desktop's network delay) is scaled where it is
        read, with its floor beside it."""
        assert dataclasses.is_dataclass(timers) and not isinstance(timers, type)
        changes: dict[str, Any] = {
            field.name: self(getattr(timers, field.name))
            for field in dataclasses.fields(timers)
            if field.type in ("float", float)
        }
        return dataclasses.replace(timers, **changes)
