"""SIP transactions without I/O: states as enums, transitions as one table, time passed in.

Implements RFC 3261 §17 as amended by RFC 6026: the INVITE client transaction (§17.1.1, timers
A, B, D and RFC 6026's Accepted state with timer M), the non-INVITE client transaction
(§17.1.2, timers E, F, K), the INVITE server transaction (§17.2.1, timers G, H, I, and the 2xx
retransmission of §13.3.1.4 folded into RFC 6026's Accepted state with timer L) and the
non-INVITE server transaction (§17.2.2, timer J).  Transaction matching follows §17.1.3 and
§17.2.3.

No clock lives here: every call takes ``now`` (the I/O layer passes ``loop.time()``), and
``next_deadline`` tells the I/O layer when to call ``on_time`` next.  Outputs are frozen
dataclasses: what to transmit and what to tell the transaction user (TU).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from emulator.sip.errors import TransactionStateError
from emulator.sip.headers import Headers
from emulator.sip.message import Message, Request, Response


@dataclass(frozen=True)
class TimerConfig:
    """T1/T2/T4 of RFC 3261 §17 and the timers derived from them (seconds)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    reliable: bool = False

    def for_transport(self, *, reliable: bool) -> TimerConfig:
        return TimerConfig(self.t1, self.t2, self.t4, reliable)

    @property
    def timeout(self) -> float:
        """Timers B, F, H, L, M and J (unreliable): 64*T1."""
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        # RFC 3261 asks for "at least 32 s" on UDP; 64*T1 keeps it proportional to T1.
        return 0.0 if self.reliable else 64 * self.t1

    @property
    def timer_j(self) -> float:
        return 0.0 if self.reliable else 64 * self.t1

    @property
    def timer_i_k(self) -> float:
        return 0.0 if self.reliable else self.t4


class Kind(enum.Enum):
    INVITE_CLIENT = "invite-client"
    NON_INVITE_CLIENT = "non-invite-client"
    INVITE_SERVER = "invite-server"
    NON_INVITE_SERVER = "non-invite-server"


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Event(enum.Enum):
    # responses received (client) or sent by the TU (server)
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "3xx-6xx"
    # requests received (server)
    RETRANSMISSION = "request retransmission"
    ACK = "ACK"
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"


_IC, _NIC, _IS, _NIS = Kind
_S = State
_E = Event

TRANSITIONS: dict[tuple[Kind, State, Event], State] = {
    # INVITE client (§17.1.1.2, RFC 6026 §8.4)
    (_IC, _S.CALLING, _E.TIMER_A): _S.CALLING,
    (_IC, _S.CALLING, _E.TIMER_B): _S.TERMINATED,
    (_IC, _S.CALLING, _E.PROVISIONAL): _S.PROCEEDING,
    (_IC, _S.CALLING, _E.SUCCESS): _S.ACCEPTED,
    (_IC, _S.CALLING, _E.FAILURE): _S.COMPLETED,
    (_IC, _S.CALLING, _E.TRANSPORT_ERROR): _S.TERMINATED,
    (_IC, _S.PROCEEDING, _E.PROVISIONAL): _S.PROCEEDING,
    (_IC, _S.PROCEEDING, _E.SUCCESS): _S.ACCEPTED,
    (_IC, _S.PROCEEDING, _E.FAILURE): _S.COMPLETED,
    (_IC, _S.ACCEPTED, _E.PROVISIONAL): _S.ACCEPTED,
    (_IC, _S.ACCEPTED, _E.SUCCESS): _S.ACCEPTED,
    (_IC, _S.ACCEPTED, _E.FAILURE): _S.ACCEPTED,
    (_IC, _S.ACCEPTED, _E.TIMER_M): _S.TERMINATED,
    (_IC, _S.COMPLETED, _E.PROVISIONAL): _S.COMPLETED,
    (_IC, _S.COMPLETED, _E.SUCCESS): _S.COMPLETED,
    (_IC, _S.COMPLETED, _E.FAILURE): _S.COMPLETED,
    (_IC, _S.COMPLETED, _E.TIMER_D): _S.TERMINATED,
    # non-INVITE client (§17.1.2.2)
    (_NIC, _S.TRYING, _E.TIMER_E): _S.TRYING,
    (_NIC, _S.TRYING, _E.TIMER_F): _S.TERMINATED,
    (_NIC, _S.TRYING, _E.PROVISIONAL): _S.PROCEEDING,
    (_NIC, _S.TRYING, _E.SUCCESS): _S.COMPLETED,
    (_NIC, _S.TRYING, _E.FAILURE): _S.COMPLETED,
    (_NIC, _S.TRYING, _E.TRANSPORT_ERROR): _S.TERMINATED,
    (_NIC, _S.PROCEEDING, _E.TIMER_E): _S.PROCEEDING,
    (_NIC, _S.PROCEEDING, _E.TIMER_F): _S.TERMINATED,
    (_NIC, _S.PROCEEDING, _E.PROVISIONAL): _S.PROCEEDING,
    (_NIC, _S.PROCEEDING, _E.SUCCESS): _S.COMPLETED,
    (_NIC, _S.PROCEEDING, _E.FAILURE): _S.COMPLETED,
    (_NIC, _S.PROCEEDING, _E.TRANSPORT_ERROR): _S.TERMINATED,
    (_NIC, _S.COMPLETED, _E.PROVISIONAL): _S.COMPLETED,
    (_NIC, _S.COMPLETED, _E.SUCCESS): _S.COMPLETED,
    (_NIC, _S.COMPLETED, _E.FAILURE): _S.COMPLETED,
    (_NIC, _S.COMPLETED, _E.TIMER_K): _S.TERMINATED,
    # INVITE server (§17.2.1, RFC 6026 §8.7)
    (_IS, _S.PROCEEDING, _E.RETRANSMISSION): _S.PROCEEDING,
    (_IS, _S.PROCEEDING, _E.PROVISIONAL): _S.PROCEEDING,
    (_IS, _S.PROCEEDING, _E.SUCCESS): _S.ACCEPTED,
    (_IS, _S.PROCEEDING, _E.FAILURE): _S.COMPLETED,
    (_IS, _S.PROCEEDING, _E.TRANSPORT_ERROR): _S.TERMINATED,
    (_IS, _S.ACCEPTED, _E.RETRANSMISSION): _S.ACCEPTED,
    (_IS, _S.ACCEPTED, _E.SUCCESS): _S.ACCEPTED,
    (_IS, _S.ACCEPTED, _E.TIMER_G): _S.ACCEPTED,
    (_IS, _S.ACCEPTED, _E.ACK): _S.TERMINATED,
    (_IS, _S.ACCEPTED, _E.TIMER_L): _S.TERMINATED,
    (_IS, _S.COMPLETED, _E.RETRANSMISSION): _S.COMPLETED,
    (_IS, _S.COMPLETED, _E.TIMER_G): _S.COMPLETED,
    (_IS, _S.COMPLETED, _E.ACK): _S.CONFIRMED,
    (_IS, _S.COMPLETED, _E.TIMER_H): _S.TERMINATED,
    (_IS, _S.CONFIRMED, _E.RETRANSMISSION): _S.CONFIRMED,
    (_IS, _S.CONFIRMED, _E.ACK): _S.CONFIRMED,
    (_IS, _S.CONFIRMED, _E.TIMER_I): _S.TERMINATED,
    # non-INVITE server (§17.2.2)
    (_NIS, _S.TRYING, _E.RETRANSMISSION): _S.TRYING,
    (_NIS, _S.TRYING, _E.PROVISIONAL): _S.PROCEEDING,
    (_NIS, _S.TRYING, _E.SUCCESS): _S.COMPLETED,
    (_NIS, _S.TRYING, _E.FAILURE): _S.COMPLETED,
    (_NIS, _S.PROCEEDING, _E.RETRANSMISSION): _S.PROCEEDING,
    (_NIS, _S.PROCEEDING, _E.PROVISIONAL): _S.PROCEEDING,
    (_NIS, _S.PROCEEDING, _E.SUCCESS): _S.COMPLETED,
    (_NIS, _S.PROCEEDING, _E.FAILURE): _S.COMPLETED,
    (_NIS, _S.PROCEEDING, _E.TRANSPORT_ERROR): _S.TERMINATED,
    (_NIS, _S.COMPLETED, _E.RETRANSMISSION): _S.COMPLETED,
    (_NIS, _S.COMPLETED, _E.TIMER_J): _S.TERMINATED,
}


# ---- outputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transmit:
    """Hand this message to the transport (first send or retransmission)."""

    message: Message


@dataclass(frozen=True)
class ResponseReceived:
    """Client: pass this response to the TU (retransmitted 2xx too, so the TU re-ACKs)."""

    response: Response


@dataclass(frozen=True)
class AckReceived:
    """Server INVITE: the ACK for our 2xx arrived (it is the TU's, RFC 3261 §13.3.1.4)."""

    ack: Request


@dataclass(frozen=True)
class TimedOut:
    """The transaction gave up (timer B/F: no final response; timer H/L: no ACK)."""

    timer: Event


Output = Transmit | ResponseReceived | AckReceived | TimedOut


def status_event(status: int) -> Event:
    if status < 200:
        return Event.PROVISIONAL
    return Event.SUCCESS if status < 300 else Event.FAILURE


def client_key(message: Message) -> tuple[str, str]:
    """§17.1.3: a response matches the client transaction by top branch and CSeq method."""
    return (message.branch, message.cseq.method)


def server_key(request: Request) -> tuple[str, str, str]:
    """§17.2.3: branch, sent-by and method; ACK matches its INVITE."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    return (via.branch or "", f"{via.host}:{via.port or 5060}", method)


class _Transaction:
    kind: Kind

    def __init__(self, request: Request, config: TimerConfig, now: float, state: State) -> None:
        self.request = request
        self.config = config
        self.state = state
        self.created = now
        self._timers: dict[Event, tuple[float, float]] = {}  # timer -> (deadline, interval)

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        return min((deadline for deadline, _ in self._timers.values()), default=None)

    def on_time(self, now: float) -> list[Output]:
        """Fire every timer due at ``now`` (earliest first)."""
        outputs: list[Output] = []
        while self._timers:
            timer, (deadline, interval) = min(self._timers.items(), key=lambda item: item[1][0])
            if deadline > now:
                break
            del self._timers[timer]
            outputs += self._fire_timer(timer, deadline, interval)
        return outputs

    def transport_error(self) -> list[Output]:
        self._move(Event.TRANSPORT_ERROR)
        return [TimedOut(Event.TRANSPORT_ERROR)]

    def _move(self, event: Event) -> State:
        new_state = TRANSITIONS.get((self.kind, self.state, event))
        if new_state is None:
            raise TransactionStateError(self.kind.value, self.state.value, event.value)
        if new_state is not self.state:
            # Timers belong to the state that started them (§17: "cancel timer X on leaving").
            self._timers.clear()
        self.state = new_state
        return new_state

    def _start(self, timer: Event, now: float, interval: float) -> None:
        self._timers[timer] = (now + interval, interval)

    def _fire_timer(self, timer: Event, fired_at: float, interval: float) -> list[Output]:
        raise NotImplementedError


class ClientTransaction(_Transaction):
    """INVITE or non-INVITE client transaction; ``start`` returns the first transmission."""

    def __init__(self, request: Request, config: TimerConfig, now: float) -> None:
        is_invite = request.method == "INVITE"
        self.kind = Kind.INVITE_CLIENT if is_invite else Kind.NON_INVITE_CLIENT
        super().__init__(request, config, now, State.CALLING if is_invite else State.TRYING)
        self.final_response: Response | None = None
        self._ack: Request | None = None

    @property
    def key(self) -> tuple[str, str]:
        return client_key(self.request)

    def start(self) -> list[Output]:
        now = self.created
        retransmit, timeout = (
            (Event.TIMER_A, Event.TIMER_B)
            if self.kind is Kind.INVITE_CLIENT
            else (Event.TIMER_E, Event.TIMER_F)
        )
        if not self.config.reliable:
            self._start(retransmit, now, self.config.t1)
        self._start(timeout, now, self.config.timeout)
        return [Transmit(self.request)]

    def receive(self, response: Response, now: float) -> list[Output]:
        previous = self.state
        event = status_event(response.status)
        state = self._move(event)
        outputs: list[Output] = []
        if previous in (State.COMPLETED, State.ACCEPTED):
            # Absorb retransmissions; a re-sent non-2xx gets our ACK again, a re-sent 2xx is the
            # TU's to ACK (RFC 6026).
            if state is State.COMPLETED and event is Event.FAILURE and self._ack is not None:
                outputs.append(Transmit(self._ack))
            elif state is State.ACCEPTED and event is Event.SUCCESS:
                outputs.append(ResponseReceived(response))
            return outputs
        outputs.append(ResponseReceived(response))
        if state is State.PROCEEDING and self.kind is Kind.NON_INVITE_CLIENT:
            if not self.config.reliable:
                self._start(Event.TIMER_E, now, self.config.t2)
            self._start(Event.TIMER_F, self.created, self.config.timeout)
        elif state is State.COMPLETED:
            self.final_response = response
            if self.kind is Kind.INVITE_CLIENT:
                self._ack = ack_for_failure(self.request, response)
                outputs.append(Transmit(self._ack))
                self._start(Event.TIMER_D, now, self.config.timer_d)
            else:
                self._start(Event.TIMER_K, now, self.config.timer_i_k)
        elif state is State.ACCEPTED:
            self.final_response = response
            self._start(Event.TIMER_M, now, self.config.timeout)
        return outputs

    def _fire_timer(self, timer: Event, fired_at: float, interval: float) -> list[Output]:
        state = self._move(timer)
        if timer in (Event.TIMER_B, Event.TIMER_F):
            return [TimedOut(timer)]
        if timer is Event.TIMER_A:
            self._start(Event.TIMER_A, fired_at, 2 * interval)
            return [Transmit(self.request)]
        if timer is Event.TIMER_E:
            next_interval = self.config.t2 if state is State.PROCEEDING else 2 * interval
            self._start(Event.TIMER_E, fired_at, min(next_interval, self.config.t2))
            return [Transmit(self.request)]
        return []


class ServerTransaction(_Transaction):
    """INVITE or non-INVITE server transaction; the TU answers through ``respond``."""

    def __init__(self, request: Request, config: TimerConfig, now: float) -> None:
        is_invite = request.method == "INVITE"
        self.kind = Kind.INVITE_SERVER if is_invite else Kind.NON_INVITE_SERVER
        super().__init__(request, config, now, State.PROCEEDING if is_invite else State.TRYING)
        self.last_response: Response | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return server_key(self.request)

    def respond(self, response: Response, now: float) -> list[Output]:
        previous = self.state
        state = self._move(status_event(response.status))
        self.last_response = response
        if previous is State.ACCEPTED:
            return [Transmit(response)]
        if state is State.ACCEPTED:
            if not self.config.reliable:
                self._start(Event.TIMER_G, now, self.config.t1)
            self._start(Event.TIMER_L, now, self.config.timeout)
        elif state is State.COMPLETED and self.kind is Kind.INVITE_SERVER:
            if not self.config.reliable:
                self._start(Event.TIMER_G, now, self.config.t1)
            self._start(Event.TIMER_H, now, self.config.timeout)
        elif state is State.COMPLETED:
            self._start(Event.TIMER_J, now, self.config.timer_j)
        return [Transmit(response)]

    def receive(self, request: Request, now: float) -> list[Output]:
        """A retransmitted request or (INVITE) the ACK that matched this transaction."""
        if request.method == "ACK":
            previous = self.state
            state = self._move(Event.ACK)
            if previous is State.ACCEPTED:
                # The 2xx's ACK is the TU's (§13.3.1.4): it ends the 2xx retransmissions.
                return [AckReceived(request)]
            if previous is State.COMPLETED and state is State.CONFIRMED:
                self._start(Event.TIMER_I, now, self.config.timer_i_k)
            return []
        state = self._move(Event.RETRANSMISSION)
        if state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            return [Transmit(self.last_response)]
        return []

    def _fire_timer(self, timer: Event, fired_at: float, interval: float) -> list[Output]:
        state = self._move(timer)
        if timer in (Event.TIMER_H, Event.TIMER_L):
            return [TimedOut(timer)]
        if timer is Event.TIMER_G and state in (State.ACCEPTED, State.COMPLETED):
            self._start(Event.TIMER_G, fired_at, min(2 * interval, self.config.t2))
            assert self.last_response is not None
            return [Transmit(self.last_response)]
        return []


def ack_for_failure(invite: Request, response: Response) -> Request:
    """§17.1.1.3: the ACK for a non-2xx final shares the INVITE's branch and Request-URI."""
    pairs: list[tuple[str, str]] = [("Via", invite.headers.get("Via") or "")]
    pairs += [("Route", route) for route in invite.headers.get_all("Route")]
    pairs += [
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("From") or ""),
        ("To", response.headers.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} ACK"),
        ("Content-Length", "0"),
    ]
    return Request("ACK", invite.uri, Headers.of(pairs), b"")
