"""A phone's line: its calls over SIP, their RTP, and why each one ended.

Implements the UAS side of RFC 3261 for calls: INVITE answered 100/180 then 200 with an SDP
answer (RFC 3264, PCMU) either at once (auto-answer) or on request; 486 when every line is busy,
488 for an unusable offer, 415 for a non-SDP body; ACK confirms; BYE ends (200); CANCEL ends a
ringing call (200 to the CANCEL by the UA, 487 to the INVITE here); a 2xx never ACKed ends the
call as ``timeout`` (§13.3.1.4) and media silent for ``rtp_timeout`` ends it as ``rtp-loss``.
Outgoing calls (``dialer``) share the line's calls, BYE handling, media watchdog and reports.

Responses and in-dialog requests go back the way the INVITE came (its source address), so a
call set up through a relay link is cut together with that link's media; ``bye_destination``
may say otherwise (the PSTN gateway sends to the node the INVITE names).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

from clients.phoneline.calls import (
    CallEvent,
    CallState,
    CallStateError,
    InboundCall,
    OutboundCall,
    PhoneCall,
    PhoneLineError,
)
from clients.phoneline.config import LineConfig
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.common.tasks import OwnedTasks
from emulator.rtp.endpoint import MediaTicker, RtpEndpoint
from emulator.sip.dialog import Dialog
from emulator.sip.errors import SdpError, SipError, SipProtocolError
from emulator.sip.headers import NameAddr, SipUri
from emulator.sip.sdp import CONTENT_TYPE, AudioSession, answer_to, parse_sdp
from emulator.sip.ua import IncomingRequest, UserAgent

Emit = Callable[..., Any]
WATCH_INTERVAL = 0.1
HISTORY = 200


class UnknownCall(PhoneLineError, KeyError):
    """No call with that id (local ``c1`` or SIP Call-ID)."""


class Line:
    def __init__(
        self,
        config: LineConfig,
        ua: UserAgent,
        ticker: MediaTicker,
        log: JsonLog,
        emit: Emit,
    ) -> None:
        self.config = config
        self.ua = ua
        self.ticker = ticker
        self.log = log
        self.emit = emit
        self.calls: dict[str, PhoneCall] = {}
        # Set by a ``Dialer``: how an outgoing call that is not answered yet is given up.
        self.cancel_outgoing: Callable[[OutboundCall], None] | None = None
        self._ids = itertools.count(1)
        self._cancelled: set[str] = set()
        self._tasks = OwnedTasks(log, "phone")
        self._watchdog: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self.stopping = False

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._watchdog = asyncio.create_task(self._watch_media())

    async def stop(self) -> None:
        self.stopping = True  # calls still opening their RTP port are refused from now on
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        self._end_all()
        await self._tasks.close(grace=1.0)  # BYEs just sent get a moment to complete
        self._end_all()

    def _end_all(self) -> None:
        for call in list(self.calls.values()):
            if not call.ended:
                self.release(call.id)

    # ---- application requests ----------------------------------------------------------

    def find(self, key: str) -> PhoneCall:
        call = self.calls.get(key) or next(
            (c for c in self.calls.values() if c.call_id == key), None
        )
        if call is None:
            raise UnknownCall(key)
        return call

    def reports(self) -> list[dict[str, Any]]:
        return [call.report() for call in self.calls.values()]

    def active_count(self) -> int:
        return sum(1 for call in self.calls.values() if not call.ended)

    def answer(self, key: str) -> PhoneCall:
        call = self.find(key)
        if not isinstance(call, InboundCall):
            raise CallStateError(call.id, call.state, CallEvent.ANSWER)
        call.apply(CallEvent.ANSWER, self._loop.time())
        call.status = 200
        offer = call.extra.get("offer")
        local = AudioSession(self.config.rtp_host, call.rtp.bound.port)
        if isinstance(offer, AudioSession):
            local = answer_to(offer, self.config.rtp_host, call.rtp.bound.port)
        response = call.invite.respond(
            200,
            headers=[("Contact", self.ua.contact(self.config.user))],
            body=local.to_bytes(user=self.config.user),
            content_type=CONTENT_TYPE,
        )
        call.dialog = Dialog.as_uas(call.invite.request, response)
        call.rtp.start(call.remote_rtp)
        self.log.event("call.answered", DN=self.config.user, call=call.id, ConnID=call.call_id)
        self.emit("call_answered", call.report())
        return call

    def release(self, key: str) -> PhoneCall:
        call = self.find(key)
        if isinstance(call, InboundCall) and call.state is CallState.RINGING:
            self._reject(call)
        elif isinstance(call, OutboundCall) and call.state is not CallState.ACTIVE:
            call.apply(CallEvent.RELEASE, self._loop.time())  # refused once it has ended
            if self.cancel_outgoing is not None:
                self.cancel_outgoing(call)
            self.finish(call)
        else:
            self.end(call, CallEvent.RELEASE)
        return call

    # ---- SIP requests ------------------------------------------------------------------

    def on_request(self, incoming: IncomingRequest) -> None:
        method = incoming.request.method
        if method == "INVITE":
            self._on_invite(incoming)
        elif method == "ACK":
            self._on_ack(incoming)
        elif method == "BYE":
            self._on_bye(incoming)
        elif method == "CANCEL":
            self._on_cancel(incoming)
        elif method == "OPTIONS":
            incoming.respond(
                200,
                headers=[("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"), ("Accept", CONTENT_TYPE)],
            )

    def on_ack_timeout(self, incoming: IncomingRequest) -> None:
        call = self._by_call_id(incoming.request.call_id)
        if call is not None and call.state is CallState.ACTIVE and not call.acked:
            self.end(call, CallEvent.ACK_TIMEOUT)

    def _on_invite(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        if request.to_tag:
            self._on_reinvite(incoming)
            return
        if self.stopping:
            incoming.respond(480)
            return
        if self.active_count() >= self.config.max_calls:
            incoming.respond(486)
            return
        offer: AudioSession | None = None
        if request.body:
            content_type = (request.header("Content-Type") or "").lower()
            if CONTENT_TYPE not in content_type:
                incoming.respond(415, headers=[("Accept", CONTENT_TYPE)])
                return
            try:
                offer = parse_sdp(request.body)
                answer_to(offer, self.config.rtp_host, 9)  # refuse an unusable offer now
            except SdpError as error:
                incoming.respond(488, headers=[("Warning", f'399 drlab "{error.reason}"')])
                return
        incoming.respond(100)
        self.spawn(self._ring(incoming, offer))

    async def _ring(self, incoming: IncomingRequest, offer: AudioSession | None) -> None:
        label = self.next_label()
        rtp = await self.open_rtp(label)
        call_id = incoming.request.call_id
        if call_id in self._cancelled or incoming.answered or self.stopping:
            self._cancelled.discard(call_id)
            rtp.close()
            if not incoming.answered:
                incoming.respond(480)
            return
        remote = Endpoint(offer.address, offer.port) if offer is not None else None
        call = InboundCall(
            id=label,
            invite=incoming,
            rtp=rtp,
            node=self._node_of(incoming),
            remote_rtp=remote,
            created_at=self._loop.time(),
        )
        if offer is not None:
            call.extra["offer"] = offer
        call.learn_conn_id(incoming.request)
        self.remember(call)
        incoming.respond(180, headers=[("Contact", self.ua.contact(self.config.user))])
        self.log.event(
            "call.ringing",
            DN=self.config.user,
            call=call.id,
            ConnID=call_id,
            node=call.node,
            caller=incoming.request.from_.uri,
            to=incoming.request.to.uri,
        )
        self.emit("call_ringing", call.report())
        if self.config.auto_answer:
            delay = self.config.scale(self.config.answer_delay)
            if delay > 0:
                await asyncio.sleep(delay)
            if call.state is CallState.RINGING:
                self.answer(call.id)

    def _on_reinvite(self, incoming: IncomingRequest) -> None:
        call = self._by_call_id(incoming.request.call_id)
        if call is None or call.state is not CallState.ACTIVE:
            incoming.respond(481)
            return
        # Media stays where it is: answer with the same session.
        local = AudioSession(self.config.rtp_host, call.rtp.bound.port)
        incoming.respond(
            200,
            headers=[("Contact", self.ua.contact(self.config.user))],
            body=local.to_bytes(user=self.config.user),
            content_type=CONTENT_TYPE,
        )

    def _on_ack(self, incoming: IncomingRequest) -> None:
        call = self._by_call_id(incoming.request.call_id)
        if call is None or call.state is not CallState.ACTIVE:
            return  # an ACK is never answered
        call.apply(CallEvent.ACK, self._loop.time())
        if call.remote_rtp is None and incoming.request.body:
            try:
                answer = parse_sdp(incoming.request.body)
            except SdpError:
                return
            call.remote_rtp = Endpoint(answer.address, answer.port)
            call.rtp.remote = call.remote_rtp

    def _on_bye(self, incoming: IncomingRequest) -> None:
        call = self._by_call_id(incoming.request.call_id)
        if (
            call is None
            or call.dialog is None
            or call.state is not CallState.ACTIVE
            or not call.dialog.accepts(incoming.request)
        ):
            incoming.respond(481)
            return
        incoming.respond(200)
        self.end(call, CallEvent.REMOTE_BYE)

    def _on_cancel(self, incoming: IncomingRequest) -> None:
        invite = incoming.cancels
        if invite is None:
            return
        call = self._by_call_id(invite.request.call_id)
        if not invite.answered:
            invite.respond(487)
        if call is None:
            self._cancelled.add(invite.request.call_id)  # still opening its RTP port
        elif call.state is CallState.RINGING:
            self.end(call, CallEvent.CANCEL)

    # ---- ending calls ------------------------------------------------------------------

    def _reject(self, call: InboundCall) -> None:
        if not call.invite.answered:
            call.invite.respond(603)
            call.status = 603
        self.end(call, CallEvent.REJECT)

    def end(self, call: PhoneCall, event: CallEvent) -> None:
        """Apply an ending ``event``, then close the media, report, and BYE where it is ours."""
        call.apply(event, self._loop.time())
        self.finish(call)
        if event in (CallEvent.RELEASE, CallEvent.ACK_TIMEOUT, CallEvent.RTP_LOSS):
            self.spawn(self.send_bye(call))

    def finish(self, call: PhoneCall) -> None:
        """An ended call: close its RTP, log and emit its report."""
        call.media = call.rtp.close()
        report = call.report()
        self.log.event(
            "call.ended",
            level="warning" if call.lost else "info",
            DN=self.config.user,
            call=call.id,
            ConnID=call.call_id,
            direction=call.direction,
            end_reason=report["end_reason"],
            status=call.status,
            lost=call.lost,
            media=report["media"],
        )
        self.emit("call_ended", report)

    def bye_destination(self, call: PhoneCall) -> Endpoint:
        if isinstance(call, OutboundCall):
            return call.dest
        assert isinstance(call, InboundCall)
        return call.invite.source

    async def send_bye(self, call: PhoneCall) -> None:
        if call.dialog is None:
            return
        call.dialog, bye = call.dialog.request("BYE", via=self.ua.via())
        try:
            response = await self.ua.request(bye, self.bye_destination(call))
        except SipError as error:
            self.log.warning("sip.bye.failed", call=call.id, ConnID=call.call_id, reason=str(error))
            return
        self.log.event("sip.bye", call=call.id, ConnID=call.call_id, status=response.status)

    async def _watch_media(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            for call in list(self.calls.values()):
                if call.state is CallState.ACTIVE and call.rtp.silence() > self.config.rtp_timeout:
                    self.end(call, CallEvent.RTP_LOSS)

    # ---- helpers -----------------------------------------------------------------------

    def now(self) -> float:
        return self._loop.time()

    def next_label(self) -> str:
        return f"c{next(self._ids)}"

    async def open_rtp(self, label: str) -> RtpEndpoint:
        rtp = RtpEndpoint(
            self.config.rtp_host,
            0,
            ticker=self.ticker,
            gap_threshold=self.config.gap_threshold,
            log=self.log,
            label=label,
        )
        await rtp.__aenter__()
        return rtp

    def _by_call_id(self, call_id: str) -> PhoneCall | None:
        return next((c for c in self.calls.values() if c.call_id == call_id), None)

    def remember(self, call: PhoneCall) -> None:
        self.calls[call.id] = call
        ended = [key for key, c in self.calls.items() if c.ended]
        for key in ended[: max(0, len(ended) - HISTORY)]:
            del self.calls[key]

    def _node_of(self, incoming: IncomingRequest) -> str:
        """The node a call came from: named in its Contact (our nodes put their name there),
        else the node whose address the INVITE came from, else that address."""
        try:
            contact = NameAddr.parse(incoming.request.header("Contact") or "")
            named = self.config.node_named(SipUri.parse(contact.uri).user)
        except SipProtocolError:
            named = None
        if named is not None:
            return named.name
        for node in self.config.nodes:
            if node.endpoint == incoming.source:
                return node.name
        return str(incoming.source)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coroutine)
