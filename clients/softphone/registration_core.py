"""Which registrar the softphone registers at, and when: the failover rule without I/O.

Implements DESIGN §2.4 and the seed's softphone rule: register at the first node of the list
(DC1 nodes, then DC2 nodes), refresh before the registration expires (RFC 3261 §10.2.4), and when
a registration fails (timeout or error answer) register at the next node at once.  After every
node of the list failed in a row, the next round waits ``retry_interval`` so a dead cluster is
not hammered.

A failed *refresh* is different, and this is where the seed's S4 rule lives: "If the connection
is restored when existing registration has not expired, then DN stays in service and agent is
not affected", and "Softphone detects the failure when attempting to refresh the registration
and registers at SIP Server 3 @ DC2".  Choice: the registration that has not expired is still
the phone's, so a failed refresh is retried at the same registrar every ``retry_interval``
while that registration lasts; a retry that succeeds keeps the DN where it is (the registrar
never saw it expire).  Only a failure after which no retry fits before the expiry moves on: the
next registrar of the list is tried at the expiry (not before: the DN is still in service at the
old node until then), and from there on the list is walked as for any failed registration.
With timer F (32 s) as the REGISTER timeout a refresh outlasts the rest of the registration,
so this only matters with a shorter ``--register-timeout``, as phones configure it.

Times are the I/O layer's clock (``now`` arguments); the durations are already scaled by the
lab's time-scale.
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
    REFRESH_FAILED = "refresh failure before expiry"
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
    (RegState.REFRESHING, RegEvent.REFRESH_FAILED): RegState.REGISTERED,
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
        keep_until_expiry: bool = True,
    ) -> None:
        if not registrars:
            raise ValueError("at least one registrar is needed")
        if not 0 < refresh_ratio < 1:
            raise ValueError("refresh ratio must be between 0 and 1")
        self.registrars = registrars
        self.refresh_ratio = refresh_ratio
        self.retry_interval = retry_interval
        # False only as the fault-injection knob ``--break-rule refresh-kept-until-expiry``:
        # a failed refresh then moves to the next registrar at once.
        self.keep_until_expiry = keep_until_expiry
        self.state = RegState.IDLE
        self.index = 0
        self.expires_at: float | None = None
        self.refresh_at: float | None = None
        self.registered_at: float | None = None
        self.failures_in_a_row = 0  # registrars that failed in a row
        self.refresh_retries = 0  # failed refreshes retried while the registration lasted
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
        self.refresh_retries = 0
        self.last_failure = None
        self.expires_at = now + granted_expires
        if first or self.registered_at is None:
            self.registered_at = now
        self.refresh_at = now + granted_expires * self.refresh_ratio
        self._next_attempt = self.refresh_at
        return self.next_attempt()

    def failed(self, now: float, reason: str) -> Attempt:
        """The REGISTER timed out or was refused.  A refresh is retried at the same registrar
        while the registration lasts; otherwise the next registrar of the list, at once (at the
        expiry if the old registration is still running)."""
        self.last_failure = reason
        retry_at = now + self.retry_interval
        expires_at = self.expires_at
        unexpired = expires_at is not None and now < expires_at
        if self.keep_until_expiry and self.state is RegState.REFRESHING and unexpired:
            assert expires_at is not None
            if retry_at < expires_at:
                self._move(RegEvent.REFRESH_FAILED)
                self.refresh_retries += 1
                self._next_attempt = self.refresh_at = retry_at
                return self.next_attempt()
            self._move(RegEvent.FAILED)
            self.failures_in_a_row += 1
            self._next_registrar()
            self._next_attempt = expires_at
            return self.next_attempt()
        self._move(RegEvent.FAILED)
        self.failures_in_a_row += 1
        self.registered_at = None
        self._next_registrar()
        full_round = self.failures_in_a_row % len(self.registrars) == 0
        self._next_attempt = retry_at if full_round else now
        return self.next_attempt()

    def _next_registrar(self) -> None:
        self.index = (self.index + 1) % len(self.registrars)

    def _move(self, event: RegEvent) -> None:
        new_state = TRANSITIONS.get((self.state, event))
        if new_state is None:
            raise RegistrationStateError(
                f"registration: no transition from {self.state.value} on {event.value}"
            )
        self.state = new_state
