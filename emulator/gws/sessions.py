"""Workspace sessions of one GWS node (sans-I/O bookkeeping; times are the caller's loop clock).

A session is created by ``initialize-workspace``, named by the ``WORKSPACE_SESSIONID`` cookie, and
lives on this node only (DESIGN §2.3: a WWE that lands on another node must log on again). It is
bound to the CometD clients that handshook with its cookie. A session whose CometD clients have
all been gone for longer than the session timeout has lost its desktop: ``expired`` names it so
the node ends it and unregisters the DN (seed, scenario 1: "GWS1 sends RequestUnregisterAddress").
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from emulator.gws.config import User
from emulator.gws.errors import Unauthorized

SESSION_COOKIE = "WORKSPACE_SESSIONID"


@dataclass(eq=False)
class Session:
    id: str
    tag: str  # printable name for logs and status; the id itself is a credential
    user: User
    dn: str
    agent_id: str
    created_at: float
    # Loop time since which no CometD client is attached (None while one is).
    detached_since: float | None
    last_cometd_activity: float | None = None
    activated: bool = False
    cometd_clients: set[str] = field(default_factory=set)
    subscriptions: set[str] = field(default_factory=set)
    # Loop time at which the node ends the session by itself (after a DN ownership move).
    ends_at: float | None = None

    def status(self, now: float) -> dict[str, Any]:
        def ago(moment: float | None) -> float | None:
            return None if moment is None else round(now - moment, 3)

        return {
            "session": self.tag,
            "user": self.user.username,
            "dn": self.dn,
            "agentId": self.agent_id,
            "activated": self.activated,
            "cometdClients": len(self.cometd_clients),
            "lastCometdActivityAgo": ago(self.last_cometd_activity),
            "detachedFor": ago(self.detached_since),
            "age": ago(self.created_at),
        }


class SessionRegistry:
    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._by_client: dict[str, Session] = {}
        self._serial = itertools.count(1)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def create(self, user: User, now: float) -> Session:
        session = Session(
            id=secrets.token_urlsafe(24),
            tag=f"{user.username}#{next(self._serial)}",
            user=user,
            dn=user.dn,
            agent_id=user.agent_login,
            created_at=now,
            detached_since=now,
        )
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session:
        if not session_id:
            raise Unauthorized(
                f"missing {SESSION_COOKIE} cookie: call POST /workspace/v3/initialize-workspace"
            )
        session = self._by_id.get(session_id)
        if session is None:
            raise Unauthorized(
                f"{SESSION_COOKIE} does not name a live session on this node "
                "(expired, logged out, or created on another GWS node): initialize again"
            )
        return session

    def find(self, session_id: str) -> Session | None:
        return self._by_id.get(session_id)

    def on_dn(self, dn: str) -> list[Session]:
        return [session for session in self._by_id.values() if session.dn == dn]

    def dns(self) -> set[str]:
        return {session.dn for session in self._by_id.values()}

    def remove(self, session: Session) -> None:
        self._by_id.pop(session.id, None)
        for client_id in session.cometd_clients:
            self._by_client.pop(client_id, None)

    # --- CometD clients ----------------------------------------------------------------------

    def attach(self, session: Session, client_id: str, now: float) -> None:
        session.cometd_clients.add(client_id)
        session.detached_since = None
        session.last_cometd_activity = now
        self._by_client[client_id] = session

    def detach(self, client_id: str, gone_since: float) -> Session | None:
        """A CometD client is gone (disconnected or expired) since ``gone_since``."""
        session = self._by_client.pop(client_id, None)
        if session is None:
            return None
        session.cometd_clients.discard(client_id)
        if not session.cometd_clients:
            session.detached_since = gone_since
            session.subscriptions.clear()
        return session

    def by_client(self, client_id: str) -> Session | None:
        return self._by_client.get(client_id)

    def touch(self, session: Session, now: float) -> None:
        """REST activity also shows the desktop is alive (an HTTP session timeout would too)."""
        if session.detached_since is not None:
            session.detached_since = max(session.detached_since, now)

    def expired(self, now: float, timeout: float) -> list[Session]:
        return [
            session
            for session in self._by_id.values()
            if session.detached_since is not None and now - session.detached_since > timeout
        ]

    def due_to_end(self, now: float) -> list[Session]:
        return [s for s in self._by_id.values() if s.ends_at is not None and s.ends_at <= now]

    def next_deadline(self, timeout: float) -> float | None:
        moments = [s.detached_since for s in self._by_id.values() if s.detached_since is not None]
        return min(moments) + timeout if moments else None
