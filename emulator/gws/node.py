"""The GWS node's behaviour: sessions, the node-wide DN views, Workspace requests -> T-Lib requests
and T-Lib events -> CometD messages (DESIGN §2.3, SCENARIOS S1 and S2).

Transport-free: REST handlers call the request methods (which raise ``GwsError``), the T-Lib link
calls ``on_event``/``on_link_up``/``on_link_down``, the CometD adapter calls ``client_attached``,
``client_subscribed`` and ``client_gone``, and messages go out through a ``Publisher``. Requests
are asynchronous as in the real Workspace API: the REST answer (``status.code`` 1) says the T-Lib
request was sent, its outcome arrives on ``/workspace/v3/voice``.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from emulator.common.jsonlog import JsonLog
from emulator.gws import voice_map, voice_messages, voice_ops, workspace_config
from emulator.gws.config import GwsConfig, User
from emulator.gws.dnview import CallView, DnView, WorkspaceCallState
from emulator.gws.errors import Conflict, NotFound, NotServed, TLibUnavailable
from emulator.gws.sessions import Session, SessionRegistry
from emulator.gws.tlink import TLibLink
from emulator.gws.voice_messages import NotificationType
from emulator.tlib.messages import (
    Event,
    EventName,
    Request,
    RequestAgentLogout,
    RequestQueryAddress,
    RequestRegisterAddress,
    RequestUnregisterAddress,
)

INITIALIZATION_CHANNEL = "/workspace/v3/initialization"
VOICE_CHANNEL = voice_map.VOICE_CHANNEL
MOVE_END_GRACE = 1.0
WORKSPACE_CHANNELS = (
    INITIALIZATION_CHANNEL,
    VOICE_CHANNEL,
    "/workspace/v3/media",
    "/workspace/v3/media/chat",
)

_MAX_TRACKED_REQUESTS = 10_000


@dataclass(frozen=True)
class Accepted:
    """A voice operation under way: the T-Lib request's ReferenceID (None: GWS did it itself)
    and the ``operationId`` its answer and its CometD messages carry."""

    reference_id: int | None
    operation_id: str


@dataclass(frozen=True)
class _Requester:
    session: Session
    operation_id: str | None


class Publisher(Protocol):
    def publish(self, client_id: str, channel: str, data: dict[str, Any]) -> None: ...

    def disconnect(self, client_id: str) -> None: ...


class GwsNode:
    def __init__(self, config: GwsConfig, log: JsonLog, clock: Callable[[], float]) -> None:
        self.config = config
        self.log = log
        self.clock = clock
        self.sessions = SessionRegistry()
        self.dns: dict[str, DnView] = {}
        self.publisher: Publisher | None = None
        self.link = TLibLink(
            sip_name=config.sip_name,
            host=config.sip_host,
            port=config.sip_port,
            timers=config.timers,
            log=log,
            on_event=self.on_event,
            on_up=self.on_link_up,
            on_down=self.on_link_down,
        )
        # ReferenceID -> session that sent the request (and its operationId), so an EventError
        # reaches its requester and every event answering it echoes the operationId. Kept, not
        # popped: one request may cause several events (a transfer: EventHeld, EventDialing).
        self._requesters: OrderedDict[int, _Requester] = OrderedDict()

    # --- publishing ----------------------------------------------------------------------------

    def publish(self, session: Session, channel: str, data: dict[str, Any]) -> None:
        def inner(key: str, name: str) -> Any:
            value = data.get(key)
            return value.get(name) if isinstance(value, dict) else None

        self.log.event(
            "cometd.publish",
            channel=channel,
            session=session.tag,
            user=session.user.username,
            DN=session.dn,
            messageType=data.get("messageType"),
            agentState=inner("dn", "agentState"),
            ConnID=inner("call", "connId"),
            callState=inner("call", "state"),
            errorCode=inner("error", "errorCode"),
            errorMessage=inner("error", "errorMessage"),
            message=data.get("message"),
            clients=len(session.cometd_clients),
        )
        if self.publisher is None:
            return
        for client_id in list(session.cometd_clients):
            self.publisher.publish(client_id, channel, data)

    def _publish_voice(self, sessions: Iterable[Session], messages: list[dict[str, Any]]) -> None:
        for session in sessions:
            for message in messages:
                self.publish(session, VOICE_CHANNEL, message)

    # --- T-Lib side ----------------------------------------------------------------------------

    def _send(
        self,
        session: Session | None,
        build: Callable[[int], Request],
        operation_id: str | None = None,
    ) -> int:
        reference_id = self.link.next_reference_id()
        self.link.send(build(reference_id), session=session.tag if session else None)
        if session is not None:
            self._requesters[reference_id] = _Requester(session, operation_id)
            while len(self._requesters) > _MAX_TRACKED_REQUESTS:
                self._requesters.popitem(last=False)
        return reference_id

    def _register(self, session: Session | None, dn: str) -> None:
        view = self.dns.setdefault(dn, DnView(dn, link_up=self.link.up))
        if self.link.up:
            self._send(session, lambda ref: RequestRegisterAddress(ref, dn))
        else:
            view.link_up = False

    def on_event(self, event: Event) -> None:
        tracked = (
            self._requesters.get(event.reference_id) if event.reference_id is not None else None
        )
        requester = tracked.session if tracked else None
        view = self.dns.get(event.this_dn) if event.this_dn else None
        if view is None:
            if event.name is EventName.EVENT_ERROR and requester is not None:
                messages = voice_map.apply_event(DnView(requester.dn), event)[0]
                self._publish_voice([requester], _echo(messages, tracked))
            return
        messages, query_after = voice_map.apply_event(view, event)
        messages = _echo(messages, tracked)
        if event.name is EventName.EVENT_ERROR and requester is not None:
            targets = [requester] if self.sessions.find(requester.id) else []
        else:
            targets = self.sessions.on_dn(view.number)
        self._publish_voice(targets, messages)
        if query_after and self.link.up and targets:
            self._send(None, lambda ref: RequestQueryAddress(ref, view.number))
        if event.name is EventName.EVENT_UNREGISTERED and not targets:
            self.dns.pop(view.number, None)
        if event.name is EventName.EVENT_AGENT_LOGOUT and event.get("Reason") == "OwnershipMove":
            self._end_sessions_after_move(view.number, targets)

    def _end_sessions_after_move(self, dn: str, sessions: list[Session]) -> None:
        """The SIP Cluster moved the DN's ownership and logged the agent out: the desktop's
        session ends and the agent has to log on again.

        Choice (the guide is terse here): "SIP Server 1 @ DC1 logs out an agent and immediately
        moves the ownership. WWE reports *Unable to establish connection. Please refresh your
        browser and log in again* error message. Agent has to log on again." — and for the PSTN
        move "SIP Server waits for 30 seconds, logs the agent out, and moves the ownership. Agent
        has to log on again." GWS ends every session of the DN, so the WWE cannot resume it.
        """
        # The end waits a moment so that the logout itself reaches the desktop first (message
        # delivery, not a DR timer: not scaled).
        for session in sessions:
            session.ends_at = self.clock() + MOVE_END_GRACE

    def on_link_down(self, reason: str) -> None:
        self._requesters.clear()
        for dn in sorted(self.sessions.dns()):
            view = self.dns.setdefault(dn, DnView(dn))
            messages = voice_map.link_lost(view, self.config.sip_name, reason)
            self._publish_voice(self.sessions.on_dn(dn), messages)
        for dn in list(self.dns):
            if dn not in self.sessions.dns():
                del self.dns[dn]
            else:
                self.dns[dn].registered = False

    def on_link_up(self) -> None:
        for dn in sorted(self.sessions.dns()):
            voice_map.link_restored(self.dns.setdefault(dn, DnView(dn)))
            self._register(None, dn)

    # --- CometD side ---------------------------------------------------------------------------

    def client_attached(self, session: Session, client_id: str) -> None:
        self.sessions.attach(session, client_id, self.clock())
        self.log.event(
            "cometd.client_attached",
            session=session.tag,
            client=client_id,
            user=session.user.username,
            DN=session.dn,
        )

    def client_gone(self, client_id: str, reason: str, gone_since: float) -> None:
        session = self.sessions.detach(client_id, gone_since)
        if session is not None:
            self.log.event(
                "cometd.client_gone",
                session=session.tag,
                client=client_id,
                reason=reason,
                remaining=len(session.cometd_clients),
            )

    def client_subscribed(self, client_id: str, channel: str) -> None:
        session = self.sessions.by_client(client_id)
        if session is None:
            return
        session.subscriptions.add(channel)
        if channel == INITIALIZATION_CHANNEL:
            self.publish(session, channel, self.initialization_complete(session))
        elif channel == VOICE_CHANNEL:
            view = self.dns.get(session.dn)
            if view is None:
                return
            if view.link_up:
                messages = voice_map.snapshot(view)
            else:
                messages = voice_map.link_lost(view, self.config.sip_name, self.link.last_error)
            for message in messages:
                self.publish(session, channel, message)

    def initialization_complete(self, session: Session) -> dict[str, Any]:
        return {
            "messageType": "WorkspaceInitializationComplete",
            "state": "Complete",
            "data": {
                "user": session.user.to_workspace(),
                "configuration": {
                    "switchName": self.config.sip_name,
                    "gwsNode": self.config.name,
                    "dc": self.config.dc,
                    "defaultDn": session.user.dn,
                    "sessionTimeout": self.config.timers.session_timeout,
                    **workspace_config.configuration(),
                },
            },
        }

    # --- Workspace requests --------------------------------------------------------------------

    def initialize(self, user: User) -> Session:
        session = self.sessions.create(user, self.clock())
        self.log.event("session.created", session=session.tag, user=user.username, DN=user.dn)
        self._register(session, session.dn)
        return session

    def touch(self, session: Session) -> None:
        self.sessions.touch(session, self.clock())

    def activate_channels(self, session: Session, agent_id: str, dn: str) -> int:
        """Bind the session to ``dn`` as ``agent_id`` and log the agent in on the voice channel."""
        if not self.link.up:
            raise TLibUnavailable(self.link.unavailable_reason())
        if dn != session.dn:
            previous = session.dn
            session.dn = dn
            self._release_dn(previous)
            self._register(session, dn)
        session.agent_id = agent_id
        session.activated = True
        return self.login(session)

    def login(self, session: Session) -> int:
        operation = voice_ops.find(voice_ops.Scope.DN, "login")
        assert operation is not None
        return self.voice_operation(session, operation, "", {}, None).reference_id or 0

    def voice_operation(
        self,
        session: Session,
        operation: voice_ops.Operation,
        call_id: str,
        arguments: dict[str, Any],
        operation_id: str | None,
    ) -> Accepted:
        """Send the operation's T-Lib request (or do it here: ``complete``); the outcome comes
        over CometD, each message it causes carrying ``operationId``."""
        operation_id = operation_id or uuid.uuid4().hex
        view = self.dns.get(session.dn)
        if operation.scope is voice_ops.Scope.CALL and (view is None or call_id not in view.calls):
            raise NotFound(f"call {call_id!r} is not a call of DN {session.dn}")
        if operation.path == "complete":
            assert view is not None
            self._complete(session, view, view.calls[call_id], operation_id)
            return Accepted(None, operation_id)
        if operation.build is None:
            raise NotServed(
                f"voice/{operation.path} needs {operation.request}, which the lab's SIP Server "
                "does not serve"
            )
        if not self.link.up:
            raise TLibUnavailable(self.link.unavailable_reason())
        if operation.path == "not-ready" and view is not None:
            view.reason_code = arguments.get("reasonCode", "")
        build = operation.build
        values = {"agentId": session.agent_id, **arguments}
        reference_id = self._send(
            session, lambda ref: build(ref, session.dn, call_id, values), operation_id
        )
        return Accepted(reference_id, operation_id)

    def _complete(self, session: Session, view: DnView, call: CallView, operation_id: str) -> None:
        """Mark a released call done: GWS forgets it (the SIP node already has)."""
        if call.state is not WorkspaceCallState.RELEASED:
            raise Conflict(
                f"call {call.conn_id} is {call.state}: only a Released call can be completed"
            )
        done = replace(call, state=WorkspaceCallState.COMPLETED)
        del view.calls[call.conn_id]
        message = voice_messages.call_state_changed(view, done, NotificationType.STATE_CHANGE)
        message["operationId"] = operation_id
        self._publish_voice(self.sessions.on_dn(view.number), [message])

    def calls(self, session: Session) -> list[dict[str, Any]]:
        view = self.dns.get(session.dn)
        if view is None:
            return []
        return [voice_messages.call_payload(view, call) for call in view.calls.values()]

    def dn_payload(self, session: Session) -> dict[str, Any]:
        view = self.dns.get(session.dn) or DnView(session.dn, link_up=self.link.up)
        return voice_messages.dn_payload(view)

    def known_dn(self, dn: str) -> dict[str, Any] | None:
        """The DN as this node knows it (registered by one of its sessions), else None."""
        view = self.dns.get(dn)
        return voice_messages.dn_payload(view) if view is not None else None

    def voice_service(self, session: Session) -> dict[str, str]:
        view = self.dns.get(session.dn)
        return voice_messages.service(self.link.up and (view is None or not view.service_lost))

    def end_session(
        self, session: Session, reason: str, *, logout_agent: bool, unregister: bool = True
    ) -> None:
        """End a session: optionally log the agent out, then unregister its DN if last user.

        ``unregister=False`` keeps the DN registered (SCENARIOS S1.14: a GWS that neither
        unregisters nor disconnects, so DN ownership does not move).
        """
        if self.sessions.find(session.id) is None:
            raise Conflict(f"session {session.tag} has already ended")
        self.sessions.remove(session)
        self.log.event(
            "session.ended",
            session=session.tag,
            user=session.user.username,
            DN=session.dn,
            reason=reason,
            unregister=unregister,
        )
        view = self.dns.get(session.dn)
        if logout_agent and view is not None and view.logged_in and self.link.up:
            self._send(
                None, lambda ref: RequestAgentLogout(ref, session.dn, agent_id=session.agent_id)
            )
        if unregister:
            self._release_dn(session.dn)
        if self.publisher is not None:
            for client_id in list(session.cometd_clients):
                self.publisher.disconnect(client_id)

    def _release_dn(self, dn: str) -> None:
        """Unregister ``dn`` once no session on this node uses it (one T-Lib link per node)."""
        if self.sessions.on_dn(dn):
            return
        view = self.dns.pop(dn, None)
        if view is not None and self.link.up:
            self._send(None, lambda ref: RequestUnregisterAddress(ref, dn))

    def expire_sessions(self) -> None:
        for session in self.sessions.due_to_end(self.clock()):
            self.end_session(
                session, "DN ownership moved; the agent must log on again", logout_agent=False
            )
        for session in self.sessions.expired(self.clock(), self.config.timers.session_timeout):
            self.end_session(
                session,
                "CometD client gone longer than session timeout",
                logout_agent=False,
                unregister=self.config.unregister_on_timeout,
            )

    def status(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "name": self.config.name,
            "dc": self.config.dc,
            "healthy": self.link.up,
            "tlib": {
                "sip": self.config.sip_name,
                "endpoint": self.link.endpoint,
                "state": str(self.link.state),
                "for": round(now - self.link.since, 3),
                "connects": self.link.connects,
                "lastError": self.link.last_error if not self.link.up else None,
                "registeredDns": sorted(dn for dn, view in self.dns.items() if view.registered),
            },
            "sessionTimeout": self.config.timers.session_timeout,
            "sessions": [session.status(now) for session in self.sessions],
        }


def _echo(messages: list[dict[str, Any]], tracked: _Requester | None) -> list[dict[str, Any]]:
    """The messages an event caused, each with the ``operationId`` of the request it answers."""
    if tracked is None or tracked.operation_id is None:
        return messages
    return [{**message, "operationId": tracked.operation_id} for message in messages]
