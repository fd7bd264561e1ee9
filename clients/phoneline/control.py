"""A phone's loopback control API (aiohttp), for the lab runner, scenarios and tests.

``GET /health`` → ``{"status": "ok", "name": ...}``; ``GET /status`` → the phone's status;
``GET /calls`` → ``{"calls": [report, ...]}`` (see ``PhoneCall.report``); ``GET /calls/{id}``;
``POST /calls/{id}/answer`` and ``POST /calls/{id}/release`` → ``{"call": report}``, 404 for an
unknown call, 409 when the call's state does not allow it. ``{id}`` is the local id (``c1``) or
the SIP Call-ID. A phone that places calls (the PSTN gateway) adds ``POST /calls`` with a JSON
body → 201 ``{"id": ..., "call": report}``, 400 naming what is wrong with the body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from clients.phoneline.calls import CallStateError, PhoneCall
from clients.phoneline.line import UnknownCall
from emulator.common.addresses import Endpoint
from emulator.sip.errors import SipError
from emulator.sip.transport import SipTransport
from emulator.sip.ua import UserAgent


class ControlledPhone(Protocol):
    @property
    def name(self) -> str: ...

    def status(self) -> dict[str, Any]: ...

    def reports(self) -> list[dict[str, Any]]: ...

    def find(self, key: str) -> PhoneCall: ...

    def answer(self, key: str) -> PhoneCall: ...

    def release(self, key: str) -> PhoneCall: ...


def sip_counters(transport: SipTransport, ua: UserAgent) -> dict[str, int]:
    """The ``counters`` of a phone's ``/status``: what its SIP port received and refused."""
    return {
        "sip_messages_received": transport.stats.messages_received,
        "sip_garbage_dropped": transport.stats.garbage_dropped,
        "sip_bad_requests_answered": transport.stats.bad_requests_answered,
        "sip_requests_rejected": ua.requests_rejected,
    }


# Places a call from a ``POST /calls`` body; raises ValueError naming what is wrong with it.
Placer = Callable[[dict[str, Any]], Awaitable[PhoneCall]]

PHONE: web.AppKey[ControlledPhone] = web.AppKey("phone")
PLACER: web.AppKey[Placer] = web.AppKey("placer")


class ControlServer:
    def __init__(
        self,
        phone: ControlledPhone,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        place: Placer | None = None,
    ) -> None:
        self.phone = phone
        self._host = host
        self._port = port
        self._place = place
        self._runner: web.AppRunner | None = None
        self._bound: Endpoint | None = None

    @property
    def bound(self) -> Endpoint:
        assert self._bound is not None, "control server is not started"
        return self._bound

    async def __aenter__(self) -> ControlServer:
        app = web.Application()
        app[PHONE] = self.phone
        app.router.add_get("/health", _health)
        app.router.add_get("/status", _status)
        app.router.add_get("/calls", _calls)
        app.router.add_get("/calls/{id}", _call)
        app.router.add_post("/calls/{id}/answer", _answer)
        app.router.add_post("/calls/{id}/release", _release)
        if self._place is not None:
            app[PLACER] = self._place
            app.router.add_post("/calls", _place)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._bound = Endpoint(str(host), int(port))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "name": request.app[PHONE].name})


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[PHONE].status())


async def _calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": request.app[PHONE].reports()})


async def _call(request: web.Request) -> web.Response:
    try:
        call = request.app[PHONE].find(request.match_info["id"])
    except UnknownCall:
        return _error(404, f"no call {request.match_info['id']!r}")
    return web.json_response({"call": call.report()})


async def _answer(request: web.Request) -> web.Response:
    return _act(request, "answer")


async def _release(request: web.Request) -> web.Response:
    return _act(request, "release")


def _act(request: web.Request, action: str) -> web.Response:
    phone = request.app[PHONE]
    key = request.match_info["id"]
    try:
        call = phone.answer(key) if action == "answer" else phone.release(key)
    except UnknownCall:
        return _error(404, f"no call {key!r}")
    except (CallStateError, SipError) as error:
        return _error(409, str(error))
    return web.json_response({"call": call.report()})


async def _place(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _error(400, "body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    try:
        call = await request.app[PLACER](body)
    except ValueError as error:
        return _error(400, str(error))
    return web.json_response({"id": call.id, "call": call.report()}, status=201)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
