"""``WweClient``: an asyncio Workspace Web Edition desktop for one agent (DESIGN §2.3).

It logs on like WWE (token, ``initialize-workspace``, CometD through the project's
:class:`~emulator.bayeux.client.BayeuxClient` with channels ``/workspace/v3/initialization`` and
``/workspace/v3/voice``, ``activate-channels``) and keeps what the desktop shows in a
:class:`~clients.wwe.desktop.Desktop`. Seed rules it implements ("GWS Disaster Recovery
Scenarios", scenario 1): on losing its node it shows "Connection to the server has been lost.
Reconnecting..." once and keeps retrying through the same URL (the DC's proxy) with backoff; it
is connected again if the session answers within ``give_up_after`` (scaled), otherwise it shows
"Unable to establish connection. Please refresh your browser and log in again" and stops.
``relogin()`` is the user's refresh and new log-on.

Scenario 2 ("GWS disconnects from SIP Server": "WWE reconnects to the available GWS node when
call is still in progress") is the hand-off: when its node reports the voice service lost
(``ServiceStateChanged`` UNAVAILABLE: the node lost its SIP Server but is still up), the desktop
moves its session by itself — a new ``initialize-workspace`` through the same URL with the
access token it already holds (no page refresh, no password), retried with backoff until the
proxy sends it to a node whose voice service is available, then CometD and the voice channel
on the new node. Choice: only a node's own report starts it; a node
that merely vanished (scenario 1) gives no such report, and the desktop reconnects or gives up
as above. ``handoff=False`` is the fault-injection knob (``--no-handoff``) that breaks it.

pyee events on :attr:`WweClient.events`: ``state`` (ConnectionChanged | VoiceChanged),
``message`` (str, user-visible text), ``call`` (Call), ``error`` (VoiceError for an
``EventError``, or any exception a listener raised), ``moved`` (LoginOutcome: the hand-off
reached another node). Listeners are removed by :meth:`close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from clients.wwe.desktop import Connection, ConnectionInput
from clients.wwe.errors import (
    BadServerMessage,
    LoginFailed,
    NotConnected,
    ServerUnreachable,
    SessionGone,
    UsageError,
    VoiceError,
    WweError,
)
from clients.wwe.reconnect import Reconnector, knock
from clients.wwe.rest import WorkspaceRest
from clients.wwe.view import DesktopView
from clients.wwe.voice import VoiceOperations
from clients.wwe.workspace import (
    INITIALIZATION_CHANNEL,
    VOICE_CHANNEL,
    AgentState,
    Call,
    DnStateChanged,
    Ignored,
    ServiceStateChanged,
    UserInfo,
    VoiceState,
    parse_call,
    parse_dn,
    parse_notification,
)
from emulator.bayeux.client import BayeuxClient
from emulator.bayeux.client_core import ClientState
from emulator.bayeux.messages import LONG_POLLING, WEBSOCKET, BayeuxError, Message
from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale

NOTIFICATIONS_PATH = "/workspace/v3/notifications"
TRANSPORTS = (WEBSOCKET, LONG_POLLING)
# A loopback request on a loaded 2-core machine still needs this long, whatever the time scale.
MIN_NETWORK_DELAY = 2.0


@dataclass(frozen=True)
class LoginOutcome:
    """How a log-on ended: the serving GWS node, the voice channel, and a rejected agent login."""

    node: str
    voice: VoiceState
    calls: tuple[Call, ...]
    rejected: VoiceError | None


class WweClient(VoiceOperations, DesktopView):
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        transport: str = WEBSOCKET,
        give_up_after: float = 60.0,
        time_scale: float = 1.0,
        network_delay: float = 10.0,
        retry_min: float = 1.0,
        retry_max: float = 5.0,
        log: JsonLog | None = None,
        cookies: Mapping[str, str] | None = None,
        handoff: bool = True,
    ) -> None:
        """``cookies``: what the browser already holds for ``base_url`` when the page opens,
        e.g. the proxy's stickiness cookie from an earlier visit, which pins the page to a node."""
        if transport not in TRANSPORTS:
            raise UsageError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        super().__init__(username, log)
        scale = TimeScale(time_scale)
        self.base_url = base_url.rstrip("/")
        self._password = password
        self.transport = transport
        self.give_up_after = scale(give_up_after)
        self.network_delay = max(scale(network_delay), MIN_NETWORK_DELAY)
        self.retry_min = scale(retry_min)
        self.retry_max = scale(retry_max)
        self.reconnector = Reconnector(
            give_up_after=self.give_up_after,
            retry_min=self.retry_min,
            retry_max=self.retry_max,
        )
        self.handoff = handoff
        self.moved: LoginOutcome | None = None  # the last hand-off's outcome
        self.moved_at: float | None = None  # when (wall clock, time.time())
        self._moving = False  # a hand-off is wanted: the node reported its voice service lost
        self._token: str | None = None
        self._cookies = dict(cookies or {})
        self._http: aiohttp.ClientSession | None = None
        self._rest: WorkspaceRest | None = None
        self._bayeux: BayeuxClient | None = None
        self._resyncs: set[asyncio.Task[None]] = set()
        self._dn_reports = 0
        self._closed = False

    # --- log on and off ----------------------------------------------------------------------

    async def login(self) -> LoginOutcome:
        """Log on and activate the voice channel; a rejected agent login is reported, not raised.

        Raises :class:`LoginFailed` (credentials, initialization, notification channel) or
        :class:`ServerUnreachable`.
        """
        if self._closed:
            raise UsageError("this client is closed")
        if self.connection is not Connection.LOGGED_OUT:
            raise UsageError(f"already logged on ({self.connection}): use relogin() or logout()")
        return await self._log_on()

    async def relogin(self) -> LoginOutcome:
        """What the user does after "Please refresh your browser and log in again"."""
        if self._closed:
            raise UsageError("this client is closed")
        await self._close_bayeux(self._detach(), disconnect=False)
        self._dispatch(self.desktop.refresh())
        return await self._log_on()

    async def logout(self) -> None:
        """End the Workspace session (the agent is logged out) and stop listening."""
        rest = self._rest if self.connection is Connection.CONNECTED else None
        # Stop listening first: the server ending the session is not a lost connection.
        bayeux = self._detach()
        if rest is not None:
            with contextlib.suppress(WweError):
                await rest.request("POST", "/logout")
        await self._close_bayeux(bayeux, disconnect=True)
        if self.connection is not Connection.LOGGED_OUT:
            self._dispatch(self.desktop.fire(ConnectionInput.LOGGED_OUT))

    async def close(self) -> None:
        """Drop everything without telling the server (a closed browser tab)."""
        if self._closed:
            return
        self._closed = True
        await self._close_bayeux(self._detach(), disconnect=False)
        await self.reconnector.wait_stopped()
        for task in list(self._resyncs):
            task.cancel()
        await asyncio.gather(*self._resyncs, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        self.events.remove_all_listeners()

    async def __aenter__(self) -> WweClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _log_on(self) -> LoginOutcome:
        if self._http is None:
            # One cookie jar for the page's life, as a browser keeps the proxy's sticky cookie.
            jar = aiohttp.CookieJar(unsafe=True)
            if self._cookies:
                jar.update_cookies(self._cookies, response_url=URL(self.base_url))
            self._http = aiohttp.ClientSession(cookie_jar=jar)
        rest = WorkspaceRest(self._http, self.base_url, timeout=self.network_delay)
        self._token = await rest.token(self.username, self._password)
        await rest.initialize(self._token)
        return await self._open_session(rest, ConnectionInput.LOGGED_ON)

    async def _open_session(self, rest: WorkspaceRest, arrival: ConnectionInput) -> LoginOutcome:
        """CometD and the voice channel of the session ``rest`` initialized."""
        self._rest = rest
        self.desktop.user = None
        bayeux = BayeuxClient(
            self.base_url + NOTIFICATIONS_PATH,
            session=self._http,
            connection_types=(self.transport,),
            max_network_delay=self.network_delay,
            backoff_increment=self.retry_min,
            max_backoff=self.retry_max,
        )
        self._attach(bayeux)
        try:
            await bayeux.handshake(timeout=self.network_delay)
            await bayeux.subscribe(INITIALIZATION_CHANNEL)
            await bayeux.subscribe(VOICE_CHANNEL)
            await self.wait_until(lambda: self.desktop.user is not None, self.network_delay)
        except (BayeuxError, TimeoutError) as exc:
            if self._bayeux is bayeux:
                self._bayeux, self._rest = None, None
            await self._close_bayeux(bayeux, disconnect=False)
            detail = str(exc) or "no WorkspaceInitializationComplete"
            raise LoginFailed(f"could not open the notification channel: {detail}") from None
        self._dispatch(self.desktop.fire(arrival))
        user = self.desktop.user
        assert user is not None
        self._say(
            f"Logged on as {user.username or self.username} (DN {user.dn}) via {user.gws_node}"
        )
        voice, calls, rejected = await self._activate_voice(user)
        return LoginOutcome(user.gws_node, voice, calls, rejected)

    async def _activate_voice(
        self, user: UserInfo
    ) -> tuple[VoiceState, tuple[Call, ...], VoiceError | None]:
        errors_before, reports_before = self._errors, self._dn_reports
        data = {"agentId": user.agent_login or user.employee_id or self.username, "dn": user.dn}

        def answered() -> bool:
            # EventAgentLogin is reported as LoggedIn (GWS logs agents in ManualIn); snapshots
            # (subscription, EventRegistered) never say LoggedIn, so one still on its way after
            # the request is not taken for the outcome. Or: out of service, or an EventError.
            voice = self.voice
            reported = self._dn_reports > reports_before and (
                voice.agent_state is AgentState.LOGGED_IN or not voice.available
            )
            return reported or self._errors > errors_before

        try:
            await self._request("POST", "/activate-channels", data)
            await self.wait_until(answered, self.network_delay)
        except (WweError, TimeoutError) as exc:
            self._say(f"Voice channel login failed: {exc or 'no answer'}")
        rejected = self._last_error if self._errors > errors_before else None
        return self.voice, tuple(self.desktop.calls.values()), rejected

    # --- requests (the voice operations are VoiceOperations') -------------------------------

    async def click_anyway(self, call_id: str, action: str) -> None:
        """What a page that lost its session sends when the agent clicks anyway: the call
        request goes out with the old session's cookies, and the server's refusal is raised
        (``SessionGone``, ``RequestFailed``, ``ServerUnreachable``), as a browser would show it."""
        if self._rest is None:
            raise NotConnected(f"cannot send {action}: the page never had a session")
        await self._rest.request("POST", f"/voice/calls/{call_id}/{action}")

    async def _request(
        self, method: str, path: str, data: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        if self.connection is not Connection.CONNECTED or self._rest is None:
            raise NotConnected(f"cannot send {path.lstrip('/')}: the desktop is {self.connection}")
        try:
            return await self._rest.request(method, path, data)
        except (ServerUnreachable, SessionGone) as exc:
            # CometD decides whether the node is lost (its restoration is what ends the loss);
            # a REST failure only counts when CometD is not connected either.
            bayeux = self._bayeux
            if bayeux is not None and bayeux.state is not ClientState.CONNECTED:
                self._lost(exc.message)
            raise

    # --- CometD ------------------------------------------------------------------------------

    def _attach(self, bayeux: BayeuxClient) -> None:
        self._bayeux = bayeux

        def current() -> bool:
            return self._bayeux is bayeux

        def on_message(message: Message) -> None:
            if current():
                self._on_notification(message)

        def on_state(new: ClientState, old: ClientState) -> None:
            if not current():
                return
            if new is ClientState.CONNECTED and self.connection is Connection.RECONNECTING:
                self._restored()
            elif old is ClientState.CONNECTED and new is not ClientState.CONNECTED:
                self._lost(f"CometD connection {new}")

        def on_failure(error: str) -> None:
            if current():
                self._lost(f"CometD: {error}")

        bayeux.events.on("message", on_message)
        bayeux.events.on("state", on_state)
        bayeux.events.on("connect_failed", on_failure)
        bayeux.events.on("handshake_failed", on_failure)

    def _on_notification(self, message: Message) -> None:
        try:
            notification = parse_notification(message.channel, message.data)
        except BadServerMessage as exc:
            self._log("wwe.bad_message", channel=message.channel, error=exc.message)
            self.events.emit("error", exc)
            return
        if isinstance(notification, Ignored):
            return
        if isinstance(notification, DnStateChanged):
            self._dn_reports += 1
        self._dispatch(self.desktop.apply(notification))
        if isinstance(notification, DnStateChanged):
            self._touch()  # a report that changed nothing still answers a waiting login
        if isinstance(notification, ServiceStateChanged):
            self._service_changed(notification)

    # --- the hand-off (scenario 2) -----------------------------------------------------------

    def _service_changed(self, change: ServiceStateChanged) -> None:
        if change.available:
            if self._moving:
                self._moving = False
                self._log("wwe.handoff_cancelled", reason="voice service available again")
                if self.connection is Connection.CONNECTED:
                    self.reconnector.stop()
            return
        if not self.handoff or self._token is None or self.connection is not Connection.CONNECTED:
            return
        self._moving = True
        reason = change.message or "voice service unavailable"
        self._log("wwe.handoff_started", reason=reason)
        self.reconnector.start(self._move_session, reason, self._give_up)

    async def _move_session(self) -> bool:
        """One try of the hand-off: a new session through the same URL with the token."""
        if self._http is None or self._token is None:
            return False
        rest = WorkspaceRest(self._http, self.base_url, timeout=self.network_delay)
        try:
            await rest.initialize(self._token)
            body = await rest.request("GET", "/current-session")
            services = body["data"]["user"]["activeSession"]["services"]
            available = any(
                item.get("serviceName") == "VOICE" and item.get("serviceState") == "AVAILABLE"
                for item in services
            )
        except (WweError, KeyError, TypeError, AttributeError) as exc:
            self._log("wwe.handoff_retry", error=str(exc) or type(exc).__name__)
            return False
        if not available:
            # The proxy still chose a node without its SIP Server (the same one, before its
            # health check failed): that session is left to time out, as a closed tab's.
            self._log("wwe.handoff_retry", error="the node reached has no voice service")
            return False
        old, self._bayeux = self._bayeux, None
        await self._close_bayeux(old, disconnect=False)  # the old node's session just times out
        self._moving = False
        try:
            outcome = await self._open_session(rest, ConnectionInput.MOVED)
        except WweError as exc:
            self._moving = True
            self._log("wwe.handoff_retry", error=str(exc))
            return False
        self.moved, self.moved_at = outcome, time.time()
        self._log("wwe.handoff", node=outcome.node, rejected=str(outcome.rejected or ""))
        # The page shows what the new session knows: a call the new node does not report is
        # gone (else it stays on the desktop for good, and its release is refused: stuck).
        await self._resync()
        self.events.emit("moved", outcome)
        return True

    def _lost(self, reason: str) -> None:
        bayeux = self._bayeux
        if self.connection is not Connection.CONNECTED or bayeux is None:
            return
        self._log("wwe.connection_lost", reason=reason)
        self._dispatch(self.desktop.fire(ConnectionInput.LOST))
        retry = self._move_session if self._moving else knock(bayeux, self.network_delay)
        self.reconnector.start(retry, reason, self._give_up)

    def _restored(self) -> None:
        self.reconnector.stop()
        self._dispatch(self.desktop.fire(ConnectionInput.RESTORED))
        task = asyncio.create_task(self._resync(), name="wwe-resync")
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def _give_up(self) -> None:
        if self._moving and self.connection is Connection.CONNECTED:
            self._moving = False
            self._log("wwe.handoff_gave_up", reason=self.reconnector.reason)
            return
        if self.connection is not Connection.RECONNECTING:
            return
        self._log("wwe.gave_up", reason=self.reconnector.reason, after=self.give_up_after)
        self._dispatch(self.desktop.fire(ConnectionInput.GIVE_UP))
        bayeux, self._bayeux = self._bayeux, None
        await self._close_bayeux(bayeux, disconnect=False)

    async def _resync(self) -> None:
        if self._rest is None:
            return
        try:
            body = await self._rest.request("GET", "/current-session")
            session = body["data"]["user"]["activeSession"]
            voice = parse_dn(session["dn"])
            calls = [parse_call(item, "CallRecovered") for item in session.get("calls", [])]
        except (WweError, KeyError, TypeError) as exc:
            self._log("wwe.resync_failed", error=str(exc))
            return
        self._dispatch(self.desktop.resync(voice, calls))

    # --- plumbing ----------------------------------------------------------------------------

    def _detach(self) -> BayeuxClient | None:
        """Forget the session: stop the timers, stop listening; returns its CometD client."""
        self.reconnector.stop()
        self._moving = False
        bayeux, self._bayeux = self._bayeux, None
        self._rest = None
        return bayeux

    @staticmethod
    async def _close_bayeux(bayeux: BayeuxClient | None, *, disconnect: bool) -> None:
        if bayeux is None:
            return
        if disconnect:
            with contextlib.suppress(BayeuxError):
                await bayeux.disconnect()
        await bayeux.close()
