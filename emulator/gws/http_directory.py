"""The rest of what a desktop asks GWS at start-up, and the answer for all the lab does not model.

- ``GET configuration`` (``?types=``), ``configuration/business-attribute/{id}``,
  ``configuration/places/{place}/dns``: ``workspace_config``'s data, as ``SessionApi`` reads it.
- ``GET targets?searchTerm=`` (transfer dialogs), ``targets/{type}/{id}``, ``targets/recents``
  and ``POST targets/recents/add``: the lab's users as agent targets, with the voice state this
  node knows of their DNs; ``GET users`` lists them for a supervisor.
- Every other path under ``/workspace/v3``: a channel the lab does not serve (chat, email, open
  media, UCS, workbins, media management, reporting, supervisor, favorites) is answered HTTP 501
  saying so; an unknown path HTTP 404; both in the Workspace error shape, never an HTML page.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from aiohttp import web

from emulator.gws import workspace_config
from emulator.gws.config import User
from emulator.gws.errors import BadRequest, NotFound, NotServed
from emulator.gws.http_common import API, SessionOf, data_object, read_json_object, status_body
from emulator.gws.node import GwsNode

MAX_RECENT_TARGETS = 20

# First path segment(s) under /workspace/v3 -> the channel a desktop would be asking for.
_NOT_MODELED = {
    "media/chat": "chat",
    "media/email": "email",
    "media": "open media (multimedia interactions)",
    "ucs": "Universal Contact Server (contacts, history, standard responses)",
    "workbins": "workbins",
    "media-management": "media management",
    "reporting": "reporting (statistics subscriptions)",
    "supervisor": "supervisor voice operations",
    "targets/personal-favorites": "personal favorites",
    "targets/recents/ack-missed-calls": "missed calls",
    "campaigns": "outbound campaigns",
    "login": "authorization code login (use a bearer token from /auth/v3/oauth/token)",
    "doc": "API documentation",
    "info": "API information",
}


class DirectoryRoutes:
    def __init__(self, node: GwsNode, session_of: SessionOf) -> None:
        self.node = node
        self.session_of = session_of
        self.recents: dict[str, deque[dict[str, Any]]] = {}

    def mount(self, app: web.Application) -> None:
        add = app.router
        add.add_get(f"{API}/configuration", self.configuration)
        add.add_get(f"{API}/configuration/business-attribute/{{id}}", self.business_attribute)
        add.add_get(f"{API}/configuration/places/{{place}}/dns", self.place_dns)
        add.add_get(f"{API}/targets", self.targets)
        add.add_get(f"{API}/targets/recents", self.recent_targets)
        add.add_post(f"{API}/targets/recents/add", self.add_recent_target)
        add.add_get(f"{API}/targets/{{type}}/{{id}}", self.target)
        add.add_get(f"{API}/users", self.users)

    def mount_fallback(self, app: web.Application) -> None:
        """After every other route: what is left under /workspace/v3 is not the lab's."""
        app.router.add_route("*", f"{API}/{{tail:.*}}", self.not_served)

    # --- configuration -------------------------------------------------------------------------

    async def configuration(self, request: web.Request) -> web.Response:
        self.session_of(request)
        raw = request.query.get("types")
        types = [t.strip() for t in raw.split(",") if t.strip()] if raw else []
        unknown = [t for t in types if t not in workspace_config.CONFIGURATION_TYPES]
        if unknown:
            allowed = ", ".join(workspace_config.CONFIGURATION_TYPES)
            raise BadRequest(f"unknown configuration types {unknown} (valid: {allowed})")
        data = workspace_config.configuration(types or workspace_config.DEFAULT_TYPES)
        return web.json_response(status_body(0, "OK", data=data))

    async def business_attribute(self, request: web.Request) -> web.Response:
        self.session_of(request)
        raw = request.match_info["id"]
        if not raw.isdigit():
            raise BadRequest(f"business attribute id {raw!r} is not a number")
        attribute = workspace_config.business_attribute(int(raw))
        if attribute is None:
            raise NotFound(f"no business attribute with id {raw}")
        return web.json_response(status_body(0, "OK", data=attribute))

    async def place_dns(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        place = request.match_info["place"]
        dn = self.node.config.users.dn_of_place(place)
        if dn is None:
            raise NotFound(f"unknown place {place!r}")
        device = self.node.dn_payload(session) if dn == session.dn else {"number": dn}
        device["switchName"] = self.node.config.sip_name
        return web.json_response(status_body(0, "OK", data={"devices": [device]}))

    # --- targets -------------------------------------------------------------------------------

    def _target(self, user: User) -> dict[str, Any]:
        return workspace_config.agent_target(
            user, self.node.config.sip_name, self.node.known_dn(user.dn)
        )

    async def targets(self, request: web.Request) -> web.Response:
        self.session_of(request)
        term = request.query.get("searchTerm")
        if term is None or not term.strip():
            raise BadRequest("targets needs the query parameter 'searchTerm'")
        types = {t.strip() for t in request.query.get("types", "agent").split(",") if t.strip()}
        limit = _limit(request.query.get("limit"), 50)
        exact = request.query.get("matchType") == "exact"
        found = []
        if "agent" in types:
            terms = [t.strip() for t in term.split(",") if t.strip()]
            for user in self.node.config.users:
                if any(workspace_config.matches(user, t, exact) for t in terms):
                    found.append(self._target(user))
        data = {"targets": found[:limit], "totalMatches": len(found)}
        return web.json_response(status_body(0, "OK", data=data))

    async def target(self, request: web.Request) -> web.Response:
        self.session_of(request)
        kind, raw = request.match_info["type"], request.match_info["id"]
        if kind != "agent":
            raise NotFound(f"the lab has no targets of type {kind!r} (only 'agent')")
        user = next((u for u in self.node.config.users if str(u.dbid) == raw), None)
        if user is None:
            raise NotFound(f"no agent target with id {raw}")
        return web.json_response(status_body(0, "OK", data={"target": self._target(user)}))

    async def recent_targets(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        recent = list(self.recents.get(session.user.username, ()))
        limit = _limit(request.query.get("limit"), 50)
        data = {"targets": recent[:limit], "totalMatches": len(recent)}
        return web.json_response(status_body(0, "OK", data=data))

    async def add_recent_target(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        data = data_object(await read_json_object(request))
        target = data.get("target")
        if not isinstance(target, dict) or not target:
            raise BadRequest("targets/recents/add needs 'data.target' (an object)")
        recents = self.recents.setdefault(session.user.username, deque(maxlen=MAX_RECENT_TARGETS))
        recents.appendleft(target)
        return web.json_response(status_body(0, "recent target added"))

    async def users(self, request: web.Request) -> web.Response:
        self.session_of(request)
        term = request.query.get("searchTerm", "")
        users = [
            user.to_workspace()
            for user in self.node.config.users
            if not term or workspace_config.matches(user, term, exact=False)
        ]
        offset = _limit(request.query.get("offset"), 0)
        limit = _limit(request.query.get("limit"), 100)
        data = {"users": users[offset : offset + limit], "totalMatches": len(users)}
        return web.json_response(status_body(0, "OK", data=data))

    # --- everything else -----------------------------------------------------------------------

    async def not_served(self, request: web.Request) -> web.Response:
        tail = request.match_info["tail"].strip("/")
        for prefix, channel in sorted(_NOT_MODELED.items(), key=lambda item: -len(item[0])):
            if tail == prefix or tail.startswith(prefix + "/"):
                raise NotServed(
                    f"drlab does not serve {channel}: the lab models the voice channel only "
                    f"({request.method} {request.path})"
                )
        raise NotFound(f"no such resource: {request.method} {request.path}")


def _limit(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadRequest(f"{raw!r} is not a non-negative number")
    return int(raw)
