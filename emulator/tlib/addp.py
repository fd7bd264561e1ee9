"""ADDP-style liveness for a T-Lib or TC-layer connection, without a clock of its own.

Each side sends a ``Heartbeat`` whenever it has sent nothing for ``interval`` seconds, so a
healthy peer is never silent for longer than that. A peer heard from neither traffic nor heartbeat
for ``interval + timeout`` is declared dead: this is how a black-holed link or a SIGSTOPped process
is detected, which a TCP reset alone would never tell. Times are the caller's loop clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Liveness(Enum):
    OK = "ok"
    SEND_HEARTBEAT = "send-heartbeat"
    PEER_DEAD = "peer-dead"


@dataclass
class AddpTimer:
    interval: float
    timeout: float
    last_received: float
    last_sent: float

    @classmethod
    def started(cls, interval: float, timeout: float, now: float) -> AddpTimer:
        if not (interval > 0 and timeout > 0):  # also rejects NaN
            raise ValueError("ADDP interval and timeout must be > 0")
        return cls(interval, timeout, now, now)

    def received(self, now: float) -> None:
        self.last_received = now

    def sent(self, now: float) -> None:
        self.last_sent = now

    def poll(self, now: float) -> Liveness:
        if now - self.last_received >= self.interval + self.timeout:
            return Liveness.PEER_DEAD
        if now - self.last_sent >= self.interval:
            return Liveness.SEND_HEARTBEAT
        return Liveness.OK

    def next_deadline(self) -> float:
        """The loop time at which ``poll`` may next have something to say."""
        silence_limit = self.last_received + self.interval + self.timeout
        return min(self.last_sent + self.interval, silence_limit)
