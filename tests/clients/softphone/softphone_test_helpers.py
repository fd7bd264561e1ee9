"""Test helpers for the softphone: a calling party built from the SIP/RTP cores, and waits."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from clients.softphone.config import SoftphoneConfig
from clients.softphone.registration_core import RegistrarEntry
from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog, flush_all
from emulator.common.timescale import TimeScale
from emulator.rtp.endpoint import MediaTicker, RtpEndpoint
from emulator.sip.builder import make_request, new_call_id, new_tag
from emulator.sip.dialog import Dialog
from emulator.sip.message import Request, Response
from emulator.sip.sdp import CONTENT_TYPE, AudioSession, parse_sdp
from emulator.sip.transaction import TimerConfig
from emulator.sip.transport import UdpTransport
from emulator.sip.ua import IncomingRequest, UserAgent

FAST_TIMERS = TimerConfig(t1=0.025, t2=0.2, t4=0.25)


class LogCapture(io.StringIO):
    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        flush_all()
        entries = [json.loads(line) for line in self.getvalue().splitlines() if line]
        return [e for e in entries if event is None or e["event"] == event]


def phone_config(registrars: list[tuple[str, Endpoint]], **overrides: Any) -> SoftphoneConfig:
    settings: dict[str, Any] = {
        "name": "softphone2",
        "dn": "7002",
        "registrars": tuple(RegistrarEntry(name, ep) for name, ep in registrars),
        "scale": TimeScale(0.05),  # expiry 60 s -> 3 s, refresh every 1.5 s, timer F 1.6 s
        "rtp_timeout": 1.5,
    }
    settings.update(overrides)
    return SoftphoneConfig(**settings)


class Caller:
    """The far end of a call (a customer via a node): INVITE with SDP, ACK, RTP, BYE."""

    def __init__(self) -> None:
        self._stack = AsyncExitStack()
        self.byes: list[Request] = []
        self.dialog: Dialog | None = None
        self.dest: Endpoint | None = None
        self.ua: UserAgent
        self.rtp: RtpEndpoint

    async def __aenter__(self) -> Caller:
        transport = await self._stack.enter_async_context(UdpTransport())
        self.ua = await self._stack.enter_async_context(
            UserAgent(transport, timers=FAST_TIMERS, on_request=self._on_request)
        )
        ticker = await self._stack.enter_async_context(MediaTicker())
        self.rtp = await self._stack.enter_async_context(RtpEndpoint(ticker=ticker))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    def invite(self, dest: Endpoint, user: str = "7002") -> Request:
        offer = AudioSession("127.0.0.1", self.rtp.bound.port)
        return make_request(
            "INVITE",
            f"sip:{user}@{dest}",
            via=self.ua.via(),
            from_=f"<sip:customer@127.0.0.1>;tag={new_tag()}",
            to=f"<sip:{user}@{dest.host}>",
            call_id=new_call_id("127.0.0.1"),
            cseq=1,
            contact=self.ua.contact("customer"),
            body=offer.to_bytes(),
            content_type=CONTENT_TYPE,
        )

    async def call(
        self,
        dest: Endpoint,
        *,
        ack: bool = True,
        on_provisional: Callable[[Response], None] | None = None,
        invite: Request | None = None,
    ) -> Response:
        invite = invite or self.invite(dest)
        self.dest = dest
        final = await self.ua.request(invite, dest, on_provisional=on_provisional)
        if final.status == 200:
            self.dialog = Dialog.as_uac(invite, final)
            if ack:
                self.ua.send_ack(self.dialog.ack(invite.cseq.number, via=self.ua.via()), dest)
            answer = parse_sdp(final.body)
            self.rtp.start(Endpoint(answer.address, answer.port))
        return final

    async def hang_up(self) -> Response:
        assert self.dialog is not None and self.dest is not None
        self.rtp.stop()
        self.dialog, bye = self.dialog.request("BYE", via=self.ua.via())
        return await self.ua.request(bye, self.dest)

    def _on_request(self, incoming: IncomingRequest) -> None:
        if incoming.request.method == "BYE":
            self.byes.append(incoming.request)
            self.rtp.stop()
            incoming.respond(200)


def capture_log(name: str = "softphone2") -> tuple[JsonLog, LogCapture]:
    stream = LogCapture()
    return JsonLog(name, stream=stream), stream
