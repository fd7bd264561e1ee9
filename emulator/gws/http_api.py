"""The REST half of the Workspace API v3 subset (DESIGN §2.3) and the lab's auth endpoint.

Paths and bodies are those of the public ``genesys-workspace-client-js`` (``SessionApi``,
``VoiceApi``): ``POST /workspace/v3/initialize-workspace`` with a bearer token sets the
``WORKSPACE_SESSIONID`` cookie; every other Workspace request is named by that cookie. Answers are
``{"status": {"code": 0|1, "message"}}`` (0 done, 1 accepted: the outcome comes over CometD);
errors are ``{"status": {"code": <HTTP status>, "message": <why>}}`` with a fitting HTTP status.
This is the one boundary where aiohttp exceptions become ``GwsError`` answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from emulator.common.jsonlog import JsonLog
from emulator.gws.auth import TokenAuthority
from emulator.gws.errors import AuthError, BadRequest, Conflict, GwsError, PayloadTooLarge
from emulator.gws.node import GwsNode
from emulator.gws.sessions import SESSION_COOKIE, Session

API = "/workspace/v3"
LOG_KEY = web.AppKey("gws_log", JsonLog)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status_body(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"status": {"code": code, "message": message}, **extra}


def error_response(status: int, message: str) -> web.Response:
    return web.json_response(status_body(status, message), status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as a JSON error body; nothing a peer sends raises through."""
    try:
        return await handler(request)
    except GwsError as exc:
        return error_response(exc.http_status, exc.message)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(413, f"request body too large ({exc.text})")
    except web.HTTPNotFound:
        return error_response(404, f"no such resource: {request.method} {request.path}")
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            405, f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.text or exc.reason)
    except Exception as exc:  # a bug must still be answered, logged, and leave the node up
        log = request.app.get(LOG_KEY)
        if log is not None:
            log.error(
                "http.internal_error", method=request.method, path=request.path, error=repr(exc)
            )
        return error_response(500, f"internal error handling {request.method} {request.path}")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body; an empty body is ``{}`` (the JS client sends none)."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body larger than {request.client_max_size} bytes") from None
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(value).__name__}")
    return value


def request_cookie(request: web.Request, name: str) -> str | None:
    """One cookie of the request, as ``request.cookies`` has it, without building them all
    (aiohttp's full parse is most of the cost of finding the session of a request)."""
    header = request.headers.get("Cookie", "")
    if '"' in header or "\\" in header:
        return request.cookies.get(name)  # quoted values: aiohttp's parser unquotes them
    value = None
    for pair in header.split(";"):
        key, sep, item = pair.partition("=")
        if sep and key.strip() == name:
            value = item.strip()  # the last one wins, as in request.cookies
    return value


def data_object(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data", {})
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadRequest("field 'data' must be an object")
    return data


def optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"field 'data.{name}' must be a non-empty string")
    return value.strip()


class WorkspaceApi:
    def __init__(self, node: GwsNode, auth: TokenAuthority) -> None:
        self.node = node
        self.auth = auth

    def mount(self, app: web.Application) -> None:
        app[LOG_KEY] = self.node.log
        add = app.router
        add.add_post("/auth/v3/oauth/token", self.token)
        add.add_post(f"{API}/initialize-workspace", self.initialize_workspace)
        add.add_post(f"{API}/activate-channels", self.activate_channels)
        add.add_get(f"{API}/current-session", self.current_session)
        add.add_post(f"{API}/logout", self.logout)
        add.add_post(f"{API}/voice/login", self.voice_login)
        add.add_post(f"{API}/voice/logout", self.voice_logout)
        add.add_post(f"{API}/voice/ready", self.voice_ready)
        add.add_post(f"{API}/voice/not-ready", self.voice_not_ready)
        add.add_post(f"{API}/voice/make-call", self.voice_make_call)
        add.add_get(f"{API}/voice/calls", self.voice_calls)
        add.add_post(f"{API}/voice/calls/{{id}}/{{action}}", self.voice_call_action)
        add.add_get("/health", self.health)
        add.add_get("/gws/status", self.gws_status)

    # --- auth and session ----------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        try:
            if request.content_type != "application/x-www-form-urlencoded":
                raise AuthError(
                    "invalid_request", "token request must be application/x-www-form-urlencoded"
                )
            try:
                form = await request.post()
            except (UnicodeDecodeError, ValueError) as exc:
                raise AuthError("invalid_request", f"form body is not readable: {exc}") from None
            fields = {key: value for key, value in form.items() if isinstance(value, str)}
            grant = self.auth.grant(fields, request.headers.get("Authorization"), time.time())
        except AuthError as exc:
            self.node.log.warning("auth.token_refused", error=exc.error, reason=exc.description)
            return web.json_response(
                {"error": exc.error, "error_description": exc.description},
                status=exc.http_status,
            )
        self.node.log.event("auth.token_issued", user=fields.get("username"))
        return web.json_response(grant, headers={"Cache-Control": "no-store"})

    def session_of(self, request: web.Request) -> Session:
        session = self.node.sessions.get(request_cookie(request, SESSION_COOKIE))
        self.node.touch(session)
        return session

    async def initialize_workspace(self, request: web.Request) -> web.Response:
        if "code" in request.query and "Authorization" not in request.headers:
            raise BadRequest(
                "the lab does not implement the authorization code grant: "
                "send 'Authorization: Bearer <token>' from POST /auth/v3/oauth/token"
            )
        user = self.auth.authenticate(request.headers.get("Authorization"), time.time())
        session = self.node.initialize(user)
        response = web.json_response(status_body(1, "workspace initialization started"))
        response.set_cookie(SESSION_COOKIE, session.id, path="/", httponly=True)
        return response

    async def activate_channels(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        data = data_object(await read_json_object(request))
        agent_id = optional_text(data, "agentId") or session.agent_id
        dn = optional_text(data, "dn")
        place = optional_text(data, "placeName")
        if dn is None and place is not None:
            dn = self.node.config.users.dn_of_place(place)
            if dn is None:
                raise BadRequest(f"unknown place {place!r}")
        dn = dn or session.dn
        holder = self.node.config.users.user_of_dn(dn)
        if holder is not None and holder.username != session.user.username:
            raise Conflict(f"DN {dn} belongs to user {holder.username!r}")
        reference_id = self.node.activate_channels(session, agent_id, dn)
        return self.accepted(f"RequestAgentLogin of {agent_id} on DN {dn}", reference_id)

    async def current_session(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        user = session.user.to_workspace()
        user["activeSession"] = {
            "currentPlace": f"Place_{session.dn}",
            "dn": self.node.dn_payload(session),
            "calls": self.node.calls(session),
            "autoCompleteCall": False,
        }
        return web.json_response(status_body(0, "OK", data={"user": user}))

    async def logout(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        self.node.end_session(session, "logout requested", logout_agent=True)
        response = web.json_response(status_body(0, "session ended"))
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    # --- voice ---------------------------------------------------------------------------------

    @staticmethod
    def accepted(what: str, reference_id: int) -> web.Response:
        """Status 1: the T-Lib request is sent; its outcome (or an ``EventError`` whose
        ``data.referenceId`` is this ReferenceID) arrives on ``/workspace/v3/voice``. The
        Workspace API's ``ApiSuccessResponse`` has only ``status``, so the id is in its text."""
        return web.json_response(status_body(1, f"{what} sent (ReferenceID {reference_id})"))

    async def voice_login(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        await read_json_object(request)
        return self.accepted("RequestAgentLogin", self.node.login(session))

    async def voice_logout(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        await read_json_object(request)
        return self.accepted("RequestAgentLogout", self.node.logout_voice(session))

    async def voice_ready(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        await read_json_object(request)
        return self.accepted("RequestAgentReady", self.node.ready(session))

    async def voice_not_ready(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        data = data_object(await read_json_object(request))
        work_mode = optional_text(data, "agentWorkMode")
        return self.accepted("RequestAgentNotReady", self.node.not_ready(session, work_mode))

    async def voice_make_call(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        data = data_object(await read_json_object(request))
        destination = optional_text(data, "destination")
        if destination is None:
            raise BadRequest("make-call needs 'data.destination'")
        return self.accepted("RequestMakeCall", self.node.make_call(session, destination))

    async def voice_calls(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        return web.json_response(status_body(0, "OK", data={"calls": self.node.calls(session)}))

    async def voice_call_action(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        await read_json_object(request)
        action = request.match_info["action"]
        call_id = request.match_info["id"]
        reference_id = self.node.call_request(session, call_id, action)
        return self.accepted(f"{action} of call {call_id}", reference_id)

    # --- node ----------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        if self.node.link.up:
            return web.json_response({"status": "healthy", "node": self.node.config.name})
        return web.json_response(
            {
                "status": "unhealthy",
                "node": self.node.config.name,
                "reason": self.node.link.unavailable_reason(),
            },
            status=503,
        )

    async def gws_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.status())
