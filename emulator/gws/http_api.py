"""The REST half of the Workspace API v3 (DESIGN §2.3) and the lab's auth endpoint: the session
calls a desktop makes at start-up; the voice operations are ``http_voice``'s, the configuration,
targets and the answer for every channel the lab does not model ``http_directory``'s.

Paths and bodies are those of the public ``genesys-workspace-client-js`` (``SessionApi``):
``POST /workspace/v3/initialize-workspace`` with a bearer token sets the ``WORKSPACE_SESSIONID``
cookie; every other Workspace request is named by that cookie. Answer and error shapes are
``http_common``'s.
"""

from __future__ import annotations

import time

from aiohttp import web

from emulator.gws.auth import TokenAuthority
from emulator.gws.errors import AuthError, BadRequest, Conflict
from emulator.gws.http_common import (
    API,
    LOG_KEY,
    data_object,
    optional_text,
    read_json_object,
    request_cookie,
    status_body,
)
from emulator.gws.http_directory import DirectoryRoutes
from emulator.gws.http_voice import VoiceRoutes
from emulator.gws.node import GwsNode
from emulator.gws.sessions import SESSION_COOKIE, Session

__all__ = ["API", "WorkspaceApi", "request_cookie"]


class WorkspaceApi:
    def __init__(self, node: GwsNode, auth: TokenAuthority) -> None:
        self.node = node
        self.auth = auth

    def mount(self, app: web.Application) -> None:
        """The Workspace routes; ``mount_fallback`` goes after every other route of the app."""
        app[LOG_KEY] = self.node.log
        add = app.router
        add.add_post("/auth/v3/oauth/token", self.token)
        add.add_post(f"{API}/initialize-workspace", self.initialize_workspace)
        add.add_post(f"{API}/activate-channels", self.activate_channels)
        add.add_get(f"{API}/current-session", self.current_session)
        add.add_get(f"{API}/userinfo", self.current_session)
        add.add_get(f"{API}/auth-keep-alive", self.keep_alive)
        add.add_post(f"{API}/logout", self.logout)
        add.add_get(f"{API}/logout", self.logout)
        add.add_get("/health", self.health)
        add.add_get("/gws/status", self.gws_status)
        VoiceRoutes(self.node, self.session_of).mount(app)
        self.directory = DirectoryRoutes(self.node, self.session_of)
        self.directory.mount(app)

    def mount_fallback(self, app: web.Application) -> None:
        self.directory.mount_fallback(app)

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
        return web.json_response(
            status_body(
                1, f"RequestAgentLogin of {agent_id} on DN {dn} sent (ReferenceID {reference_id})"
            )
        )

    async def current_session(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        user = session.user.to_workspace()
        user["activeSession"] = {
            "currentPlace": f"Place_{session.dn}",
            "dn": self.node.dn_payload(session),
            "calls": self.node.calls(session),
            "autoCompleteCall": False,
            "services": [self.node.voice_service(session)],
        }
        return web.json_response(status_body(0, "OK", data={"user": user}))

    async def keep_alive(self, request: web.Request) -> web.Response:
        """``auth-keep-alive``: the desktop is alive; the session's idle time restarts."""
        self.session_of(request)
        return web.json_response(status_body(0, "session kept alive"))

    async def logout(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        self.node.end_session(session, "logout requested", logout_agent=True)
        response = web.json_response(status_body(0, "session ended"))
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

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
