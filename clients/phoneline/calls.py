"""A phone's call: its state table, why it ended, and the per-call report the lab reads.

Incoming calls follow the UAS side of RFC 3261 §13.3 (ringing, answered, ended), outgoing ones
the UAC side of §13.2 (calling, ringing on a 1xx, active on the 2xx). The end reasons are the
lab's: ``bye`` (the far end hung up), ``cancel`` (the caller gave up while ringing),
``released``/``rejected`` (our side), ``failed`` (our INVITE got no 2xx), ``timeout`` (our 2xx
was never ACKed, §13.3.1.4) and ``rtp-loss`` (no media for ``rtp_timeout``). The last two mean
the call was *lost* — the seed's "the call is lost because both SIP and media connections are
affected".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from emulator.common.addresses import Endpoint
from emulator.rtp.endpoint import RtpEndpoint
from emulator.rtp.meter import MediaReport
from emulator.sip.dialog import Dialog
from emulator.sip.message import Message, Request
from emulator.sip.ua import IncomingRequest

CONN_ID_HEADER = "X-Drlab-ConnID"  # the SIP Cluster node's ConnID of the call (drlab's header)


class CallState(enum.Enum):
    CALLING = "calling"
    RINGING = "ringing"
    ACTIVE = "active"
    ENDED = "ended"


class CallEvent(enum.Enum):
    RINGBACK = "1xx"
    ANSWER = "answer"
    ACK = "ACK"
    REMOTE_BYE = "BYE"
    CANCEL = "CANCEL"
    RELEASE = "release"
    REJECT = "reject"
    FAILED = "final failure"
    ACK_TIMEOUT = "ACK timeout"
    RTP_LOSS = "RTP loss"


class EndReason(enum.Enum):
    BYE = "bye"
    CANCEL = "cancel"
    RELEASED = "released"
    REJECTED = "rejected"
    FAILED = "failed"
    TIMEOUT = "timeout"
    RTP_LOSS = "rtp-loss"


TRANSITIONS: dict[tuple[CallState, CallEvent], CallState] = {
    (CallState.CALLING, CallEvent.RINGBACK): CallState.RINGING,
    (CallState.CALLING, CallEvent.ANSWER): CallState.ACTIVE,
    (CallState.CALLING, CallEvent.FAILED): CallState.ENDED,
    (CallState.CALLING, CallEvent.RELEASE): CallState.ENDED,
    (CallState.RINGING, CallEvent.RINGBACK): CallState.RINGING,
    (CallState.RINGING, CallEvent.ANSWER): CallState.ACTIVE,
    (CallState.RINGING, CallEvent.CANCEL): CallState.ENDED,
    (CallState.RINGING, CallEvent.REJECT): CallState.ENDED,
    (CallState.RINGING, CallEvent.FAILED): CallState.ENDED,
    (CallState.RINGING, CallEvent.RELEASE): CallState.ENDED,
    (CallState.ACTIVE, CallEvent.ACK): CallState.ACTIVE,
    (CallState.ACTIVE, CallEvent.REMOTE_BYE): CallState.ENDED,
    (CallState.ACTIVE, CallEvent.RELEASE): CallState.ENDED,
    (CallState.ACTIVE, CallEvent.ACK_TIMEOUT): CallState.ENDED,
    (CallState.ACTIVE, CallEvent.RTP_LOSS): CallState.ENDED,
}

END_REASONS = {
    CallEvent.REMOTE_BYE: EndReason.BYE,
    CallEvent.CANCEL: EndReason.CANCEL,
    CallEvent.RELEASE: EndReason.RELEASED,
    CallEvent.REJECT: EndReason.REJECTED,
    CallEvent.FAILED: EndReason.FAILED,
    CallEvent.ACK_TIMEOUT: EndReason.TIMEOUT,
    CallEvent.RTP_LOSS: EndReason.RTP_LOSS,
}

LOST_REASONS = frozenset({EndReason.TIMEOUT, EndReason.RTP_LOSS})


class PhoneLineError(Exception):
    """Base of every error of a phone line (the softphone's and the PSTN gateway's)."""


class CallStateError(PhoneLineError):
    """An event the call table does not list for the call's state."""

    def __init__(self, call_id: str, state: CallState, event: CallEvent) -> None:
        super().__init__(f"call {call_id}: no transition from {state.value} on {event.value}")
        self.state = state
        self.event = event


@dataclass(kw_only=True)
class PhoneCall:
    id: str
    rtp: RtpEndpoint
    node: str  # the node's name the call is with, or its address
    remote_rtp: Endpoint | None
    created_at: float  # loop clock
    state: CallState
    dialog: Dialog | None = None
    acked: bool = False
    status: int | None = None  # the final SIP status of the call's INVITE
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: EndReason | None = None
    media: MediaReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    direction = "inbound"

    @property
    def call_id(self) -> str:
        return self.invite_request.call_id

    @property
    def invite_request(self) -> Request:
        raise NotImplementedError

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def lost(self) -> bool:
        return self.end_reason in LOST_REASONS

    def learn_conn_id(self, message: Message) -> None:
        conn_id = message.header(CONN_ID_HEADER)
        if conn_id:
            self.extra["conn_id"] = conn_id

    def apply(self, event: CallEvent, now: float) -> CallState:
        new_state = TRANSITIONS.get((self.state, event))
        if new_state is None:
            raise CallStateError(self.id, self.state, event)
        self.state = new_state
        if event is CallEvent.ANSWER:
            self.answered_at = now
        elif event is CallEvent.ACK:
            self.acked = True
        if new_state is CallState.ENDED:
            self.ended_at = now
            self.end_reason = END_REASONS[event]
        return new_state

    def report(self) -> dict[str, Any]:
        """The JSON shape of ``GET /calls`` entries and of the ``call.ended`` log line."""
        media = self.media if self.media is not None else self.rtp.report()
        request = self.invite_request
        return {
            "id": self.id,
            "call_id": self.call_id,
            "direction": self.direction,
            "conn_id": self.extra.get("conn_id"),  # the cluster's ConnID, when the node said
            "from": request.from_.uri,
            "to": request.to.uri,
            "node": self.node,
            "state": self.state.value,
            "acked": self.acked,
            "status": self.status,
            "end_reason": self.end_reason.value if self.end_reason is not None else None,
            "lost": self.lost,
            "local_rtp": str(self.rtp.bound),
            "remote_rtp": str(self.remote_rtp) if self.remote_rtp is not None else None,
            "media": media.as_dict(),
        }


@dataclass(kw_only=True)
class InboundCall(PhoneCall):
    invite: IncomingRequest
    state: CallState = CallState.RINGING

    @property
    def invite_request(self) -> Request:
        return self.invite.request


@dataclass(kw_only=True)
class OutboundCall(PhoneCall):
    request: Request  # our INVITE
    dest: Endpoint  # the node it went to; in-dialog requests follow it
    state: CallState = CallState.CALLING

    direction = "outbound"

    @property
    def invite_request(self) -> Request:
        return self.request
