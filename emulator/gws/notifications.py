"""CometD at ``/workspace/v3/notifications``: the project's Bayeux endpoint bound to GWS sessions.

The Bayeux protocol and both transports (long-polling, WebSocket) are emulator/bayeux's; this
module only decides who may handshake (a ``WORKSPACE_SESSIONID`` cookie naming a live session on
this node, else ``403::...`` with ``reconnect: none``, so a desktop that fails over to another
node learns it must log on again) and forwards the endpoint's client events to the node.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from emulator.bayeux.messages import Message, Reconnect
from emulator.bayeux.server import BayeuxEndpoint
from emulator.bayeux.server_model import (
    Accept,
    ClientAdded,
    ClientRemoved,
    ClientSubscribed,
    Credentials,
    Deny,
    RemovalReason,
    ServerConfig,
)
from emulator.gws.http_api import request_cookie
from emulator.gws.node import WORKSPACE_CHANNELS, GwsNode
from emulator.gws.sessions import SESSION_COOKIE, Session

NOTIFICATIONS_PATH = "/workspace/v3/notifications"


class WorkspaceNotifications:
    """Implements the node's ``Publisher`` on a ``BayeuxEndpoint``."""

    def __init__(
        self, node: GwsNode, *, timeout: float, max_interval: float, max_payload: int
    ) -> None:
        self.node = node
        self.max_interval = max_interval
        self.endpoint = BayeuxEndpoint(
            ServerConfig(timeout=timeout, max_interval=max_interval, channels=WORKSPACE_CHANNELS),
            authorize=self._authorize,
            log=node.log,
            max_payload=max_payload,
            on_request=self._note_activity,
        )
        self.endpoint.events.on("client_added", self._on_added)
        self.endpoint.events.on("client_removed", self._on_removed)
        self.endpoint.events.on("subscribed", self._on_subscribed)
        node.publisher = self

    def mount(self, app: web.Application) -> None:
        self.endpoint.mount(app, NOTIFICATIONS_PATH)

    def _note_activity(self, request: web.Request) -> None:
        """Each CometD HTTP request is a sign of life of its session's desktop."""
        session = self.node.sessions.find(request_cookie(request, SESSION_COOKIE) or "")
        if session is not None and session.cometd_clients:
            session.last_cometd_activity = self.node.clock()

    # --- Publisher -------------------------------------------------------------------------

    def publish(self, client_id: str, channel: str, data: dict[str, Any]) -> None:
        self.endpoint.publish(client_id, channel, data)

    def disconnect(self, client_id: str) -> None:
        self.endpoint.remove_client(client_id)

    # --- endpoint events -------------------------------------------------------------------

    def _authorize(self, handshake: Message, credentials: Credentials) -> Accept | Deny:
        session_id = credentials.cookies.get(SESSION_COOKIE)
        if not session_id:
            return Deny(f"missing {SESSION_COOKIE} cookie: initialize the workspace first")
        session = self.node.sessions.find(session_id)
        if session is None:
            return Deny(
                f"{SESSION_COOKIE} names no live session on GWS node {self.node.config.name}: "
                "log on again",
                reconnect=Reconnect.NONE,
            )
        return Accept(principal=session)

    def _on_added(self, event: ClientAdded) -> None:
        if isinstance(event.principal, Session):
            if self.node.sessions.find(event.principal.id) is None:
                self.endpoint.remove_client(event.client_id)
                return
            self.node.client_attached(event.principal, event.client_id)

    def _on_removed(self, event: ClientRemoved) -> None:
        now = asyncio.get_running_loop().time()
        # An expired client was last heard from max_interval before the sweep noticed.
        gone_since = now - self.max_interval if event.reason is RemovalReason.EXPIRED else now
        self.node.client_gone(event.client_id, str(event.reason), gone_since)

    def _on_subscribed(self, event: ClientSubscribed) -> None:
        self.node.client_subscribed(event.client_id, event.channel)
