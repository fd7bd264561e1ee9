"""Outgoing calls on a phone line: the UAC side of RFC 3261 §13.2 with RTP both ways.

``place`` sends an INVITE with an SDP offer (PCMU, RFC 3264) that also announces our RTP SSRC
(``a=ssrc``, RFC 5576) so a call node relaying many streams on one port knows ours at once. A
1xx makes the call ringing, the 2xx is ACKed (§13.2.2.4) and starts RTP to the answer's address;
a failure ends it as ``failed`` with its status. Releasing a call that is not answered yet sends
CANCEL (§9.1); a 2xx that still arrives after that is ACKed and BYEd. The line owns the call from
then on (BYE either way, media watchdog, report).
"""

from __future__ import annotations

from clients.phoneline.calls import CallEvent, CallState, OutboundCall
from clients.phoneline.config import NodeEntry
from clients.phoneline.line import Line
from emulator.common.addresses import Endpoint
from emulator.sip.builder import make_cancel, make_request, new_call_id, new_tag
from emulator.sip.dialog import Dialog
from emulator.sip.errors import SdpError, SipError, SipProtocolError
from emulator.sip.message import Response
from emulator.sip.sdp import CONTENT_TYPE, AudioSession, parse_sdp
from emulator.sip.ua import UserAgent


class Dialer:
    def __init__(self, line: Line, ua: UserAgent) -> None:
        self.line = line
        self.ua = ua
        line.cancel_outgoing = self._cancel

    async def place(self, to: str, node: NodeEntry, caller: str) -> OutboundCall:
        """INVITE ``sip:{to}@{node}`` as ``caller``; returns at once with the call calling."""
        line = self.line
        label = line.next_label()
        rtp = await line.open_rtp(label)
        user = line.config.user
        offer = AudioSession(line.config.rtp_host, rtp.bound.port).to_bytes(user=user)
        offer += f"a=ssrc:{rtp.sender.ssrc} cname:{user}\r\n".encode("ascii")
        host = self.ua.transport.bound.host
        request = make_request(
            "INVITE",
            f"sip:{to}@{node.endpoint}",
            via=self.ua.via(),
            from_=f"<sip:{caller}@{host}>;tag={new_tag()}",
            to=f"<sip:{to}@{node.endpoint.host}>",
            call_id=new_call_id(host),
            cseq=1,
            contact=self.ua.contact(user),
            body=offer,
            content_type=CONTENT_TYPE,
        )
        call = OutboundCall(
            id=label,
            request=request,
            dest=node.endpoint,
            rtp=rtp,
            node=node.name,
            remote_rtp=None,
            created_at=line.now(),
        )
        line.remember(call)
        line.log.event(
            "call.dialing", call=label, ConnID=request.call_id, to=to, node=node.name, caller=caller
        )
        line.spawn(self._invite(call))
        return call

    async def _invite(self, call: OutboundCall) -> None:
        try:
            final = await self.ua.request(
                call.request, call.dest, on_provisional=lambda r: self._provisional(call, r)
            )
        except SipError as error:
            self.line.log.warning("sip.invite.failed", call=call.id, reason=str(error))
            if not call.ended:
                call.status = 408
                self.line.end(call, CallEvent.FAILED)
            return
        call.status = final.status
        call.learn_conn_id(final)
        if not final.is_success:
            if not call.ended:
                self.line.end(call, CallEvent.FAILED)
            return
        try:
            dialog = Dialog.as_uac(call.request, final)
        except SipProtocolError as error:
            self.line.log.warning("sip.invite.bad_answer", call=call.id, reason=error.reason)
            if not call.ended:
                self.line.end(call, CallEvent.FAILED)
            return
        self.ua.send_ack(dialog.ack(call.request.cseq.number, via=self.ua.via()), call.dest)
        call.dialog = dialog
        if call.ended:
            self.line.spawn(self.line.send_bye(call))  # answered after we gave up on it
            return
        self._answered(call, final)

    def _provisional(self, call: OutboundCall, response: Response) -> None:
        call.learn_conn_id(response)
        if response.status > 100 and call.state in (CallState.CALLING, CallState.RINGING):
            call.apply(CallEvent.RINGBACK, self.line.now())

    def _answered(self, call: OutboundCall, response: Response) -> None:
        try:
            answer = parse_sdp(response.body)
            call.remote_rtp = Endpoint(answer.address, answer.port)
        except SdpError:
            pass  # no usable answer: RTP waits for none, the watchdog will see the silence
        call.apply(CallEvent.ANSWER, self.line.now())
        call.rtp.start(call.remote_rtp)
        self.line.log.event("call.answered", call=call.id, ConnID=call.call_id, node=call.node)
        self.line.emit("call_answered", call.report())

    def _cancel(self, call: OutboundCall) -> None:
        if call.status is None:
            self.line.spawn(self._send_cancel(call))

    async def _send_cancel(self, call: OutboundCall) -> None:
        try:
            await self.ua.request(make_cancel(call.request), call.dest)
        except SipError as error:
            self.line.log.warning("sip.cancel.failed", call=call.id, reason=str(error))
