"""A B2BUA call on the call node: its state table, why it ended, and what it holds (sans-I/O).

The customer leg is the UAS side of RFC 3261 §13.3 (the INVITE from the PSTN gateway), the agent
leg the UAC side of §13.2 (our INVITE to the agent's phone). The call is routed, rings, is
answered when the agent leg's 200 arrives (then the customer gets its 200), and is connected
when the customer's ACK arrives. Every way it can end is an event with an end reason; an event
the table does not list for the state raises ``B2bStateError`` and changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from emulator.common.addresses import Endpoint
from emulator.sip.dialog import Dialog
from emulator.sip.errors import SipProtocolError
from emulator.sip.headers import SipUri
from emulator.sip.message import Request, Response
from emulator.sip.ua import IncomingRequest, UserAgent
from emulator.sipcluster.errors import ClusterError


class B2bState(enum.StrEnum):
    ROUTING = "routing"  # customer INVITE in, agent INVITE out
    RINGING = "ringing"  # the agent's phone rings (1xx)
    ANSWERED = "answered"  # agent 200 in, customer 200 out, customer ACK awaited
    CONNECTED = "connected"
    ENDED = "ended"


class B2bEvent(enum.StrEnum):
    AGENT_RINGING = "agent 1xx"
    AGENT_ANSWERED = "agent 2xx"
    AGENT_FAILED = "agent failure"
    CUSTOMER_ACK = "customer ACK"
    CUSTOMER_CANCEL = "customer CANCEL"
    CUSTOMER_BYE = "customer BYE"
    AGENT_BYE = "agent BYE"
    CLUSTER_RELEASE = "released by the cluster"  # RequestReleaseCall from a desktop
    RING_TIMEOUT = "ring timeout"
    MEDIA_TIMEOUT = "media timeout"
    ACK_TIMEOUT = "ACK timeout"
    SHUTDOWN = "node shutdown"


class EndReason(enum.StrEnum):
    CUSTOMER_BYE = "customer-bye"
    AGENT_BYE = "agent-bye"
    CANCEL = "cancel"
    AGENT_FAILED = "agent-failed"
    RELEASED = "released"
    NO_ANSWER = "no-answer"
    MEDIA_TIMEOUT = "media-timeout"
    ACK_TIMEOUT = "ack-timeout"
    SHUTDOWN = "shutdown"


_S, _E = B2bState, B2bEvent
_BEFORE_ANSWER = (_S.ROUTING, _S.RINGING)
_AFTER_ANSWER = (_S.ANSWERED, _S.CONNECTED)

TRANSITIONS: dict[tuple[B2bState, B2bEvent], B2bState] = {
    (_S.ROUTING, _E.AGENT_RINGING): _S.RINGING,
    (_S.RINGING, _E.AGENT_RINGING): _S.RINGING,
    (_S.ANSWERED, _E.CUSTOMER_ACK): _S.CONNECTED,
    (_S.CONNECTED, _E.CUSTOMER_ACK): _S.CONNECTED,  # a retransmitted ACK
    **{(state, _E.AGENT_ANSWERED): _S.ANSWERED for state in _BEFORE_ANSWER},
    **{
        (state, event): _S.ENDED
        for state in _BEFORE_ANSWER
        for event in (
            _E.AGENT_FAILED,
            _E.CUSTOMER_CANCEL,
            _E.CLUSTER_RELEASE,
            _E.RING_TIMEOUT,
            _E.SHUTDOWN,
        )
    },
    **{
        (state, event): _S.ENDED
        for state in _AFTER_ANSWER
        for event in (
            _E.CUSTOMER_BYE,
            _E.AGENT_BYE,
            _E.CLUSTER_RELEASE,
            _E.MEDIA_TIMEOUT,
            _E.SHUTDOWN,
        )
    },
    (_S.ANSWERED, _E.ACK_TIMEOUT): _S.ENDED,
}

END_REASONS: dict[B2bEvent, EndReason] = {
    _E.AGENT_FAILED: EndReason.AGENT_FAILED,
    _E.CUSTOMER_CANCEL: EndReason.CANCEL,
    _E.CUSTOMER_BYE: EndReason.CUSTOMER_BYE,
    _E.AGENT_BYE: EndReason.AGENT_BYE,
    _E.CLUSTER_RELEASE: EndReason.RELEASED,
    _E.RING_TIMEOUT: EndReason.NO_ANSWER,
    _E.MEDIA_TIMEOUT: EndReason.MEDIA_TIMEOUT,
    _E.ACK_TIMEOUT: EndReason.ACK_TIMEOUT,
    _E.SHUTDOWN: EndReason.SHUTDOWN,
}


class B2bStateError(ClusterError):
    """An event the B2BUA call table does not list for the call's state (nothing changed)."""

    def __init__(self, conn_id: str, state: B2bState, event: B2bEvent) -> None:
        super().__init__(f"B2BUA call {conn_id}: no transition from {state.value} on {event.value}")
        self.state = state
        self.event = event


@dataclass
class CustomerLeg:
    """The caller's side: we are its UAS."""

    invite: IncomingRequest
    dest: Endpoint  # where in-dialog requests go: the INVITE's source (symmetric)
    dialog: Dialog | None = None
    acked: bool = False


@dataclass
class AgentLeg:
    """The agent's phone: we are its UAC."""

    ua: UserAgent
    dest: Endpoint  # the route, flow or Contact the INVITE went to; in-dialog requests too
    target: str  # "softphone" or "pstn"
    media: Endpoint  # the RTP address our SDP gave this phone
    invite: Request | None = None
    dialog: Dialog | None = None
    cancelled: bool = False
    status: int | None = None  # final status of our INVITE


@dataclass
class B2bCall:
    conn_id: str
    dn: str
    caller: str
    customer: CustomerLeg
    agent: AgentLeg | None = None
    state: B2bState = B2bState.ROUTING
    created_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: EndReason | None = None
    media: dict[str, object] = field(default_factory=dict)  # the final media report

    @property
    def ended(self) -> bool:
        return self.state is B2bState.ENDED

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def apply(self, event: B2bEvent, now: float) -> B2bState:
        new_state = TRANSITIONS.get((self.state, event))
        if new_state is None:
            raise B2bStateError(self.conn_id, self.state, event)
        self.state = new_state
        if event is B2bEvent.AGENT_ANSWERED:
            self.answered_at = now
        elif event is B2bEvent.CUSTOMER_ACK:
            self.customer.acked = True
        if new_state is B2bState.ENDED:
            self.ended_at = now
            self.end_reason = END_REASONS[event]
        return new_state


def announced_ssrc(body: bytes) -> int | None:
    """The SSRC a party announces in its SDP (``a=ssrc:N ...``, RFC 5576), if any."""
    for line in body.decode("utf-8", errors="replace").splitlines():
        if line.startswith("a=ssrc:"):
            value = line[len("a=ssrc:") :].split(" ", 1)[0]
            if value.isdigit() and int(value) < 2**32:
                return int(value)
    return None


def user_of(uri: str) -> str:
    try:
        return SipUri.parse(uri).user
    except SipProtocolError:
        return ""


def agent_dialog(call: B2bCall) -> Dialog | None:
    return call.agent.dialog if call.agent is not None else None


def agent_call_id(call: B2bCall) -> str | None:
    agent = call.agent
    return agent.invite.call_id if agent is not None and agent.invite is not None else None


def uac_dialog(invite: Request, response: Response) -> Dialog:
    """The dialog our 2xx'd INVITE made; a 200 without Contact keeps the Request-URI (lenient)."""
    try:
        return Dialog.as_uac(invite, response)
    except SipProtocolError:
        return Dialog(
            call_id=invite.call_id,
            local_tag=invite.from_tag or "",
            remote_tag=response.to_tag or "",
            local_party=invite.headers.get("From") or "",
            remote_party=response.headers.get("To") or "",
            remote_target=invite.uri,
            local_cseq=invite.cseq.number,
            remote_cseq=0,
        )
