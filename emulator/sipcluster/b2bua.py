"""The node as B2BUA: a customer's INVITE becomes a call on this node that rings the agent's phone.

"Calls live on a call node (the node where the call arrived); a call never moves" (DESIGN §2.2).
An INVITE for ``sip:DN@node`` (RFC 3261 §13.3, the UAS side) creates the call through
``ClusterNode.inbound_call`` (EventRinging reaches the desktop through the owner) and starts an
agent leg (§13.2, the UAC side) towards the softphone or the PSTN number (``sip_phones``). The
agent's 200 is ACKed, applied as the party's ANSWER (EventEstablished) and answered to the
customer with the node's media address; both legs' RTP meet in ``media``. A BYE on either leg is
passed to the other and applied as RELEASE (EventReleased, then ACW at the owner); a CANCEL
before the answer cancels the agent leg (§9); a desktop's RequestReleaseCall ends both legs.

Choices: RequestAnswerCall from a desktop for a call whose agent leg is a phone is refused with
EventError — the agent answers on the phone (a PSTN phone cannot be taken off-hook remotely, and
the lab's softphone has no remote-answer event). Hold and retrieve change T-Lib state only;
media keeps flowing (a re-INVITE is answered with the same session). How calls end, and the
cluster hooks, live in ``b2b_ending``.
"""

from __future__ import annotations

import asyncio

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sip.builder import make_request, new_call_id, new_tag
from emulator.sip.dialog import Dialog
from emulator.sip.errors import SdpError, SipError
from emulator.sip.message import Response
from emulator.sip.sdp import CONTENT_TYPE, AudioSession, answer_to, parse_sdp
from emulator.sip.ua import IncomingRequest, UserAgent
from emulator.sipcluster.b2b_calls import (
    AgentLeg,
    B2bCall,
    B2bEvent,
    B2bState,
    CustomerLeg,
    agent_dialog,
    announced_ssrc,
    uac_dialog,
    user_of,
)
from emulator.sipcluster.b2b_ending import CallEnding, Spawn
from emulator.sipcluster.media import MediaPort, Side
from emulator.sipcluster.node import ClusterNode
from emulator.sipcluster.sip_config import SipConfig
from emulator.sipcluster.sip_phones import AgentTarget, PhoneDirectory
from emulator.sipcluster.states import PartyInput

# Both legs learn the cluster's ConnID of their call (INVITE to the agent, 180/200 to the
# customer), so the phones' reports can be matched to the desktop's call.
CONN_ID_HEADER = "X-Drlab-ConnID"


class B2bua(CallEnding):
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
        super().__init__(node, config, media, log, spawn)
        self.uas = uas
        self.phones = phones
        self.stopping = False

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
        dn = user_of(request.uri) or user_of(request.to.uri)
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
        caller = user_of(request.from_.uri) or "anonymous"
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
            headers=[(CONN_ID_HEADER, call.conn_id), ("X-Drlab-DN", call.dn)],
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
            dn_media = self.config.phone_media.get(user_of(target.uri))
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
        agent.dialog = uac_dialog(agent.invite, final)
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
            call.customer.invite.respond(180, headers=[(CONN_ID_HEADER, call.conn_id)])

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
            headers=[
                ("Contact", customer.invite.ua.contact(self.node.name)),
                (CONN_ID_HEADER, call.conn_id),
            ],
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
        dialog = call.customer.dialog if side is Side.CUSTOMER else agent_dialog(call)
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
