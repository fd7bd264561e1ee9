"""The node as B2BUA: a customer's INVITE becomes a call on this node that rings the agent's phone.

"Calls live on a call node (the node where the call arrived); a call never moves" (DESIGN §2.2).
An INVITE for ``sip:DN@node`` (RFC 3261 §13.3, the UAS side) creates the call through
``ClusterNode.inbound_call`` (EventRinging reaches the desktop through the owner) and starts an
agent leg (§13.2, the UAC side) towards the softphone or the PSTN number (``sip_phones``). The
agent's 200 is ACKed, applied as the party's ANSWER (EventEstablished) and answered to the
customer with the node's media address; both legs' RTP meet in ``media``. A BYE on either leg is
passed to the other and applied as RELEASE (EventReleased, then ACW at the owner); a CANCEL
before the answer cancels the agent leg (§9); a desktop's RequestReleaseCall ends both legs.

Choices (documented in the report): RequestAnswerCall from a desktop for a call whose agent leg
is a phone is refused with EventError — the agent answers on the phone (a PSTN phone cannot be
taken off-hook remotely, and the lab's softphone has no remote-answer event). Hold and retrieve
change T-Lib state only; media keeps flowing. A leg whose media had started and then stays
silent for ``rtp_timeout`` ends the call as lost (media-timeout), so a phone cut off from the
call node does not leave a stuck call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sip.builder import make_cancel, make_request, new_call_id, new_tag
from emulator.sip.dialog import Dialog
from emulator.sip.errors import SdpError, SipError, SipProtocolError
from emulator.sip.headers import SipUri
from emulator.sip.message import Request, Response
from emulator.sip.sdp import CONTENT_TYPE, AudioSession, answer_to, parse_sdp
from emulator.sip.ua import IncomingRequest, UserAgent
from emulator.sipcluster.b2b_calls import (
    AgentLeg,
    B2bCall,
    B2bEvent,
    B2bState,
    B2bStateError,
    CustomerLeg,
)
from emulator.sipcluster.calls import Call, Party
from emulator.sipcluster.media import MediaPort, Side
from emulator.sipcluster.node import ClusterNode
from emulator.sipcluster.sip_config import SipConfig
from emulator.sipcluster.sip_phones import AgentTarget, PhoneDirectory
from emulator.sipcluster.states import PartyInput
from emulator.sipcluster.tc_messages import Requester
from emulator.tlib.errors import ErrorCode, RequestRejected

Spawn = Callable[[Coroutine[Any, Any, None]], None]
HISTORY = 100

# What the customer hears when the call ends before the agent answered.
_UNANSWERED_STATUS = {
    B2bEvent.CUSTOMER_CANCEL: 487,
    B2bEvent.CLUSTER_RELEASE: 603,
    B2bEvent.RING_TIMEOUT: 480,
    B2bEvent.SHUTDOWN: 503,
}


class B2bua:
    def __init__(
        self,
        node: ClusterNode,
        config: SipConfig,
        uas: dict[str, UserAgent],
        phones: PhoneDirectory,
        media: MediaPort,
        log: JsonLog,
        spawn: Spawn,
    ) -> None:
        self.node = node
        self.config = config
        self.uas = uas
        self.phones = phones
        self.media = media
        self.log = log
        self.spawn = spawn
        self.calls: dict[str, B2bCall] = {}
        self.ended: deque[B2bCall] = deque(maxlen=HISTORY)
        self._legs: dict[str, tuple[B2bCall, Side]] = {}  # SIP Call-ID -> call and its leg
        self._ring_timers: dict[str, asyncio.TimerHandle] = {}
        self._applying = False
        self.stopping = False
        self.counters = {"total": 0, "answered": 0, "rejected": 0, "lost": 0}
        node.before_party_action = self._before_party_action
        node.after_party_action = self._after_party_action

    # -- requests from the SIP side -------------------------------------------------------

    def on_request(self, incoming: IncomingRequest) -> None:
        method = incoming.request.method
        if method == "INVITE":
            if incoming.request.to_tag:
                self._reinvite(incoming)
            else:
                self._new_call(incoming)
        elif method == "ACK":
            self._ack(incoming)
        elif method == "BYE":
            self._bye(incoming)
        elif method == "CANCEL" and incoming.cancels is not None:
            found = self._legs.get(incoming.cancels.request.call_id)
            if found is not None and found[1] is Side.CUSTOMER:
                self._end(found[0], B2bEvent.CUSTOMER_CANCEL)

    def on_ack_timeout(self, incoming: IncomingRequest) -> None:
        found = self._legs.get(incoming.request.call_id)
        if found is not None and found[1] is Side.CUSTOMER and not found[0].customer.acked:
            self._end(found[0], B2bEvent.ACK_TIMEOUT)

    def _new_call(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        dn = _user(request.uri) or _user(request.to.uri)
        if dn not in self.node.config.dns:
            self._reject(incoming, 404, f"DN {dn or '?'} is not served by this cluster")
            return
        if self.stopping:
            self._reject(incoming, 503, "node shutting down")
            return
        if request.header("Contact") is None:
            self._reject(incoming, 400, "Missing Contact header")
            return
        offer: AudioSession | None = None
        if request.body:
            if CONTENT_TYPE not in (request.header("Content-Type") or "").lower():
                incoming.respond(415, headers=[("Accept", CONTENT_TYPE)])
                self.counters["rejected"] += 1
                return
            try:
                offer = parse_sdp(request.body)
                answer_to(offer, "127.0.0.1", 9)
            except SdpError as error:
                self._reject(incoming, 488, error.reason)
                return
        now = self.media.now()
        target = self.phones.agent_target(dn, now)
        if target is None:
            self._reject(incoming, 480, f"DN {dn} has no registered phone and no PSTN route")
            return
        incoming.respond(100)
        caller = _user(request.from_.uri) or "anonymous"
        conn_id = self.node.inbound_call(caller, dn)
        call = B2bCall(conn_id, dn, caller, CustomerLeg(incoming, incoming.source), created_at=now)
        customer, _ = self.media.table.open_call(conn_id, now)
        if offer is not None:
            customer.expected = Endpoint(offer.address, offer.port)
        customer.send_before_latch = self.config.pstn_media is None
        customer.announced_ssrc = announced_ssrc(request.body)
        self.calls[conn_id] = call
        self._legs[request.call_id] = (call, Side.CUSTOMER)
        self.counters["total"] += 1
        self.log.event(
            "sip.call.routing",
            ConnID=conn_id,
            DN=dn,
            caller=caller,
            target=target.kind,
            dest=str(target.dest),
            uri=target.uri,
        )
        self._ring(call, target)

    def _reject(self, incoming: IncomingRequest, status: int, reason: str) -> None:
        self.counters["rejected"] += 1
        incoming.respond(status, headers=[("Warning", f'399 drlab "{reason}"')])
        self.log.warning("sip.call.rejected", status=status, reason=reason)

    # -- the agent leg --------------------------------------------------------------------

    def _ring(self, call: B2bCall, target: AgentTarget) -> None:
        ua = self.uas.get(target.transport) or self.uas["UDP"]
        bound = ua.transport.bound
        advertised = self._advertised(target)
        offer = AudioSession(advertised.host, advertised.port)
        invite = make_request(
            "INVITE",
            target.uri,
            via=ua.via(),
            from_=f'"{call.caller}" <sip:{call.caller}@{bound.host}>;tag={new_tag()}',
            to=f"<{target.uri}>",
            call_id=new_call_id(bound.host),
            cseq=1,
            contact=ua.contact(self.node.name),
            headers=[("X-Drlab-ConnID", call.conn_id), ("X-Drlab-DN", call.dn)],
            body=offer.to_bytes(user=self.node.name),
            content_type=CONTENT_TYPE,
        )
        call.agent = AgentLeg(ua, target.dest, target.kind, advertised, invite)
        self._legs[invite.call_id] = (call, Side.AGENT)
        agent_media = self.media.table.leg(call.conn_id, Side.AGENT)
        if agent_media is not None:
            # Media advertised through a relay link comes back that way: latch, never bypass it.
            agent_media.send_before_latch = advertised == self.media.bound
        loop = asyncio.get_running_loop()
        delay = self.config.scale(self.config.ring_timeout)
        self._ring_timers[call.conn_id] = loop.call_later(
            delay, self._event, call, B2bEvent.RING_TIMEOUT
        )
        self.spawn(self._invite_agent(call, call.agent))

    def _advertised(self, target: AgentTarget) -> Endpoint:
        if target.kind == "pstn" and self.config.pstn_media is not None:
            return self.config.pstn_media
        if target.kind == "softphone":
            dn_media = self.config.phone_media.get(_user(target.uri))
            if dn_media is not None:
                return dn_media
        return self.media.bound

    async def _invite_agent(self, call: B2bCall, agent: AgentLeg) -> None:
        assert agent.invite is not None
        try:
            final = await agent.ua.request(
                agent.invite, agent.dest, on_provisional=lambda r: self._agent_ringing(call, r)
            )
        except SipError as error:
            agent.status = 408
            self.log.warning("sip.agent.unreachable", ConnID=call.conn_id, reason=str(error))
            self._end(call, B2bEvent.AGENT_FAILED, status=480)
            return
        agent.status = final.status
        if not final.is_success:
            status = final.status if final.status not in (408, 487) else 480
            self._end(call, B2bEvent.AGENT_FAILED, status=status)
            return
        agent.dialog = _uac_dialog(agent.invite, final)
        agent.ua.send_ack(
            agent.dialog.ack(agent.invite.cseq.number, via=agent.ua.via()), agent.dest
        )
        if call.ended:
            self.spawn(self._send_bye(call, Side.AGENT))  # answered after we gave up on it
            return
        self._agent_answered(call, final)

    def _agent_ringing(self, call: B2bCall, response: Response) -> None:
        if response.status == 100 or call.ended:
            return
        first = call.state is B2bState.ROUTING
        self._event(call, B2bEvent.AGENT_RINGING)
        if first:
            call.customer.invite.respond(180)

    def _agent_answered(self, call: B2bCall, response: Response) -> None:
        if not self._event(call, B2bEvent.AGENT_ANSWERED):
            return
        self._cancel_ring_timer(call)
        self.counters["answered"] += 1
        agent_media = self.media.table.leg(call.conn_id, Side.AGENT)
        if agent_media is not None:
            try:
                answer = parse_sdp(response.body)
                agent_media.expected = Endpoint(answer.address, answer.port)
            except SdpError:
                pass  # latched from the agent's first packet
            agent_media.announced_ssrc = announced_ssrc(response.body)
        if not self._cluster(call, call.dn, PartyInput.ANSWER):
            # The cluster no longer has the call ringing (e.g. released meanwhile): end it.
            self._cluster(call, call.caller, PartyInput.RELEASE)
            self._end(call, B2bEvent.CLUSTER_RELEASE)
            return
        customer = call.customer
        advertised = self.config.pstn_media or self.media.bound
        ok = customer.invite.respond(
            200,
            headers=[("Contact", customer.invite.ua.contact(self.node.name))],
            body=AudioSession(advertised.host, advertised.port).to_bytes(user=self.node.name),
            content_type=CONTENT_TYPE,
        )
        customer.dialog = Dialog.as_uas(customer.invite.request, ok)
        self.log.event("sip.call.answered", ConnID=call.conn_id, DN=call.dn)

    # -- in-dialog requests ---------------------------------------------------------------

    def _ack(self, incoming: IncomingRequest) -> None:
        found = self._legs.get(incoming.request.call_id)
        if found is None or found[1] is not Side.CUSTOMER:
            return  # an ACK is never answered
        call = found[0]
        leg = self.media.table.leg(call.conn_id, Side.CUSTOMER)
        if leg is not None and leg.expected is None and incoming.request.body:
            try:
                answer = parse_sdp(incoming.request.body)  # late offer: the answer is in the ACK
                leg.expected = Endpoint(answer.address, answer.port)
            except SdpError:
                pass
        if not call.ended:
            self._event(call, B2bEvent.CUSTOMER_ACK)

    def _bye(self, incoming: IncomingRequest) -> None:
        found = self._legs.get(incoming.request.call_id)
        if found is None:
            incoming.respond(481)
            return
        call, side = found
        dialog = call.customer.dialog if side is Side.CUSTOMER else _agent_dialog(call)
        if dialog is None or call.ended or not dialog.accepts(incoming.request):
            incoming.respond(481)
            return
        incoming.respond(200)
        event = B2bEvent.CUSTOMER_BYE if side is Side.CUSTOMER else B2bEvent.AGENT_BYE
        self._end(call, event)

    def _reinvite(self, incoming: IncomingRequest) -> None:
        found = self._legs.get(incoming.request.call_id)
        if found is None or found[0].ended:
            incoming.respond(481)
            return
        call, side = found
        # Media stays where it is (hold is T-Lib state only): answer with the same session.
        if side is Side.CUSTOMER or call.agent is None:
            advertised = self.config.pstn_media or self.media.bound
        else:
            advertised = call.agent.media
        incoming.respond(
            200,
            headers=[("Contact", incoming.ua.contact(self.node.name))],
            body=AudioSession(advertised.host, advertised.port).to_bytes(user=self.node.name),
            content_type=CONTENT_TYPE,
        )

    # -- ending ---------------------------------------------------------------------------

    def _event(self, call: B2bCall, event: B2bEvent) -> bool:
        """Apply a non-ending event (or a timer's ending one); False when the table refuses."""
        if event is B2bEvent.RING_TIMEOUT:
            self._ring_timers.pop(call.conn_id, None)
            self._end(call, event)
            return call.ended
        try:
            call.apply(event, self.media.now())
        except B2bStateError as error:
            self.log.warning("sip.call.unexpected", ConnID=call.conn_id, error=str(error))
            return False
        return True

    def _end(self, call: B2bCall, event: B2bEvent, *, status: int | None = None) -> None:
        now = self.media.now()
        try:
            call.apply(event, now)
        except B2bStateError:
            return  # already ended, or not an ending in this state
        self._cancel_ring_timer(call)
        customer = call.customer
        if not customer.invite.answered:
            customer.invite.respond(status or _UNANSWERED_STATUS.get(event, 480))
        elif customer.dialog is not None and event is not B2bEvent.CUSTOMER_BYE:
            self.spawn(self._send_bye(call, Side.CUSTOMER))
        agent = call.agent
        if agent is not None and event is not B2bEvent.AGENT_BYE:
            if agent.dialog is not None:
                self.spawn(self._send_bye(call, Side.AGENT))
            elif agent.invite is not None and agent.status is None and not agent.cancelled:
                agent.cancelled = True
                self.spawn(self._cancel_agent(call, agent))
        call.media = self.media.table.close_call(call.conn_id, now)
        if event is not B2bEvent.CLUSTER_RELEASE:
            self._cluster(call, call.caller, PartyInput.RELEASE)
        del self.calls[call.conn_id]
        self.ended.append(call)
        lost = event in (B2bEvent.MEDIA_TIMEOUT, B2bEvent.ACK_TIMEOUT)
        self.counters["lost"] += lost
        self.log.event(
            "sip.call.ended",
            level="warning" if lost else "info",
            ConnID=call.conn_id,
            DN=call.dn,
            end_reason=str(call.end_reason),
            lost=lost,
            media=call.media or None,
        )
        # Keep the Call-IDs a while: a retransmitted BYE is absorbed by its transaction, a
        # late BYE or re-INVITE is answered 481 (the call ended).
        asyncio.get_running_loop().call_later(
            self.config.timers.timeout, self._forget, call, _agent_call_id(call)
        )

    def _forget(self, call: B2bCall, agent_call_id: str | None) -> None:
        for call_id in (call.customer.invite.request.call_id, agent_call_id):
            if call_id is not None and self._legs.get(call_id, (None,))[0] is call:
                del self._legs[call_id]

    def _cancel_ring_timer(self, call: B2bCall) -> None:
        handle = self._ring_timers.pop(call.conn_id, None)
        if handle is not None:
            handle.cancel()

    async def _send_bye(self, call: B2bCall, side: Side) -> None:
        if side is Side.CUSTOMER:
            ua, dest, dialog = call.customer.invite.ua, call.customer.dest, call.customer.dialog
        else:
            assert call.agent is not None
            ua, dest, dialog = call.agent.ua, call.agent.dest, call.agent.dialog
        if dialog is None:
            return
        dialog, bye = dialog.request("BYE", via=ua.via())
        try:
            response = await ua.request(bye, dest)
        except SipError as error:
            self.log.warning(
                "sip.bye.failed", ConnID=call.conn_id, leg=str(side), reason=str(error)
            )
            return
        self.log.event("sip.bye", ConnID=call.conn_id, leg=str(side), status=response.status)

    async def _cancel_agent(self, call: B2bCall, agent: AgentLeg) -> None:
        assert agent.invite is not None
        try:
            await agent.ua.request(make_cancel(agent.invite), agent.dest)
        except SipError as error:
            self.log.warning("sip.cancel.failed", ConnID=call.conn_id, reason=str(error))

    def end_all(self, event: B2bEvent = B2bEvent.SHUTDOWN) -> None:
        for call in list(self.calls.values()):
            self._end(call, event)

    def watch_media(self) -> None:
        """End answered calls whose media stopped on one leg for ``rtp_timeout``."""
        now = self.media.now()
        for call in list(self.calls.values()):
            if not call.answered:
                continue
            side = self.media.table.silent_call(call.conn_id, now, self.config.rtp_timeout)
            if side is not None:
                self.log.warning("sip.call.media_lost", ConnID=call.conn_id, silent=str(side))
                self._end(call, B2bEvent.MEDIA_TIMEOUT)

    # -- the cluster's side ---------------------------------------------------------------

    def _cluster(self, call: B2bCall, party: str, action: PartyInput) -> bool:
        """Apply a phone's action to the cluster's call; False when the cluster refuses it."""
        self._applying = True
        try:
            self.node.party_action(call.conn_id, party, action)
        except RequestRejected as error:
            self.log.warning("sip.call.cluster_refused", ConnID=call.conn_id, error=error.message)
            return False
        finally:
            self._applying = False
        return True

    def _before_party_action(
        self, call: Call, party: Party, action: PartyInput, requester: Requester | None
    ) -> None:
        if self._applying or call.conn_id not in self.calls:
            return
        if action in (PartyInput.ANSWER, PartyInput.FAR_END_ANSWER):
            raise RequestRejected(
                ErrorCode.INVALID_CALL_STATE,
                f"call {call.conn_id} rings a phone over SIP: {party.address} answers it on "
                f"the phone, not from the desktop",
            )

    def _after_party_action(
        self, call: Call, party: Party, action: PartyInput, requester: Requester | None
    ) -> None:
        b2b = self.calls.get(call.conn_id)
        if not self._applying and b2b is not None and action is PartyInput.RELEASE:
            self._end(b2b, B2bEvent.CLUSTER_RELEASE)

    def state(self) -> list[dict[str, Any]]:
        now = self.media.now()
        calls = [*self.ended, *self.calls.values()]
        return [self._report(call, now) for call in calls]

    def _report(self, call: B2bCall, now: float) -> dict[str, Any]:
        agent = call.agent
        media = call.media if call.ended else self.media.table.call_report(call.conn_id, now)
        return {
            "ConnID": call.conn_id,
            "DN": call.dn,
            "caller": call.caller,
            "state": str(call.state),
            "end_reason": str(call.end_reason) if call.end_reason else None,
            "customer": str(call.customer.dest),
            "agent": {"kind": agent.target, "dest": str(agent.dest), "status": agent.status}
            if agent is not None
            else None,
            "media": media,
        }


def announced_ssrc(body: bytes) -> int | None:
    """The SSRC a party announces in its SDP (``a=ssrc:N ...``, RFC 5576), if any."""
    for line in body.decode("utf-8", errors="replace").splitlines():
        if line.startswith("a=ssrc:"):
            value = line[len("a=ssrc:") :].split(" ", 1)[0]
            if value.isdigit() and int(value) < 2**32:
                return int(value)
    return None


def _user(uri: str) -> str:
    try:
        return SipUri.parse(uri).user
    except SipProtocolError:
        return ""


def _agent_dialog(call: B2bCall) -> Dialog | None:
    return call.agent.dialog if call.agent is not None else None


def _agent_call_id(call: B2bCall) -> str | None:
    agent = call.agent
    return agent.invite.call_id if agent is not None and agent.invite is not None else None


def _uac_dialog(invite: Request, response: Response) -> Dialog:
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
