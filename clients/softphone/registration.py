"""Which registrar the softphone registers at, and when: the failover rule without I/O.

Implements DESIGN §2.4 and the seed's softphone rule: register at the first node of the list
(DC1 nodes, then DC2 nodes), refresh before the registration expires (RFC 3261 §10.2.4), and when
a registration or refresh fails (timeout or error answer) register at the next node at once.  A
path that comes back before the refresh is due changes nothing, because nothing is attempted in
between.  After every node of the list failed in a row, the next round waits ``retry_interval``
so a dead cluster is not hammered.  Times are the I/O layer's clock (``now`` arguments); the
durations are already scaled by the lab's time-scale.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from clients.phoneline.config import NodeEntry


class RegState(enum.Enum):
    IDLE = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    REFRESHING = "refreshing"


class RegEvent(enum.Enum):
    START = "start"
    SUCCEEDED = "200 OK"
    FAILED = "failure"
    REFRESH_DUE = "refresh due"
    STOP = "stop"


TRANSITIONS: dict[tuple[RegState, RegEvent], RegState] = {
    (RegState.IDLE, RegEvent.START): RegState.REGISTERING,
    (RegState.REGISTERING, RegEvent.SUCCEEDED): RegState.REGISTERED,
    (RegState.REGISTERING, RegEvent.FAILED): RegState.REGISTERING,
    (RegState.REGISTERING, RegEvent.STOP): RegState.IDLE,
    (RegState.REGISTERED, RegEvent.REFRESH_DUE): RegState.REFRESHING,
    (RegState.REGISTERED, RegEvent.STOP): RegState.IDLE,
    (RegState.REFRESHING, RegEvent.SUCCEEDED): RegState.REGISTERED,
    (RegState.REFRESHING, RegEvent.FAILED): RegState.REGISTERING,
    (RegState.REFRESHING, RegEvent.STOP): RegState.IDLE,
}


class RegistrationStateError(Exception):
    """An event the registration table does not list for the current state (a local bug)."""


# A registrar is a node the phone registers at, named as every phone names nodes.
RegistrarEntry = NodeEntry


@dataclass(frozen=True)
class Attempt:
    """Send a REGISTER to ``registrar`` at time ``at``."""

    registrar: RegistrarEntry
    at: float
    refresh: bool


class RegistrationPolicy:
    def __init__(
        self,
        registrars: list[RegistrarEntry],
        *,
        refresh_ratio: float = 0.5,
        retry_interval: float = 10.0,
    ) -> None:
        if not registrars:
            raise ValueError("at least one registrar is needed")
        if not 0 < refresh_ratio < 1:
            raise ValueError("refresh ratio must be between 0 and 1")
        self.registrars = registrars
        self.refresh_ratio = refresh_ratio
        self.retry_interval = retry_interval
        self.state = RegState.IDLE
        self.index = 0
        self.expires_at: float | None = None
        self.refresh_at: float | None = None
        self.registered_at: float | None = None
        self.failures_in_a_row = 0
        self.last_failure: str | None = None
        self._next_attempt: float | None = None

    @property
    def current(self) -> RegistrarEntry:
        return self.registrars[self.index]

    def registered(self, now: float) -> bool:
        """True while the last successful registration is unexpired (even during a refresh)."""
        return self.expires_at is not None and now < self.expires_at

    def start(self, now: float) -> Attempt:
        self._move(RegEvent.START)
        self._next_attempt = now
        return self.next_attempt()

    def stop(self) -> None:
        if self.state is not RegState.IDLE:
            self._move(RegEvent.STOP)
        self._next_attempt = None

    def next_attempt(self) -> Attempt:
        if self._next_attempt is None:
            raise RegistrationStateError(f"no registration attempt planned in state {self.state}")
        return Attempt(self.current, self._next_attempt, refresh=self.state is RegState.REGISTERED)

    def attempt_started(self) -> None:
        """The planned REGISTER is going out now (a refresh when registered)."""
        if self.state is RegState.REGISTERED:
            self._move(RegEvent.REFRESH_DUE)

    def succeeded(self, now: float, granted_expires: float) -> Attempt:
        """A 2xx granted ``granted_expires`` (scaled seconds): plan the refresh."""
        first = self.state is RegState.REGISTERING
        self._move(RegEvent.SUCCEEDED)
        self.failures_in_a_row = 0
        self.last_failure = None
        self.expires_at = now + granted_expires
        if first or self.registered_at is None:
            self.registered_at = now
        self.refresh_at = now + granted_expires * self.refresh_ratio
        self._next_attempt = self.refresh_at
        return self.next_attempt()

    def failed(self, now: float, reason: str) -> Attempt:
        """The REGISTER timed out or was refused: the next registrar of the list, at once."""
        self._move(RegEvent.FAILED)
        self.last_failure = reason
        self.failures_in_a_row += 1
        self.registered_at = None
        self.index = (self.index + 1) % len(self.registrars)
        full_round = self.failures_in_a_row % len(self.registrars) == 0
        self._next_attempt = now + self.retry_interval if full_round else now
        return self.next_attempt()

    def _move(self, event: RegEvent) -> None:
        new_state = TRANSITIONS.get((self.state, event))
        if new_state is None:
            raise RegistrationStateError(
                f"registration: no transition from {self.state.value} on {event.value}"
            )
        self.state = new_state
