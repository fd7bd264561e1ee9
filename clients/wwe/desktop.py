"""What a WWE desktop shows: its connection, the voice channel, the calls and the user's messages.

Sans-I/O. The connection follows the table below (seed, "WWE reconnects to a new GWS API node":
"Connection to the server has been lost. Reconnecting..." once on losing the node, and "Unable
to establish connection. Please refresh your browser and log in again" when it is not recovered
in time); the voice channel follows ``DnStateChanged`` (seed, "GWS disconnects from SIP Server":
"WWE reports the voice channel as unavailable"); calls follow ``CallStateChanged``. Each input
returns the events the I/O layer emits, in order.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from clients.wwe.errors import UsageError, VoiceError
from clients.wwe.workspace import (
    AgentState,
    Call,
    CallState,
    CallStateChanged,
    DnStateChanged,
    EventErrorReported,
    InitializationComplete,
    Notification,
    ServiceStateChanged,
    UserInfo,
    VoiceState,
)

CONNECTION_LOST = "Connection to the server has been lost. Reconnecting..."
UNABLE_TO_CONNECT = "Unable to establish connection. Please refresh your browser and log in again"
CONNECTION_RESTORED = "Connection to the server has been restored"
VOICE_UNAVAILABLE = "Voice channel is unavailable"
VOICE_AVAILABLE = "Voice channel is available"


class Connection(StrEnum):
    LOGGED_OUT = "logged-out"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    GAVE_UP = "gave-up"


class ConnectionInput(enum.Enum):
    LOGGED_ON = "session established"
    LOST = "connection lost"
    RESTORED = "connection restored"
    GIVE_UP = "give-up delay expired"
    LOGGED_OUT = "logged out"
    REFRESHED = "page refreshed"
    MOVED = "session moved to another node"


_C, _I = Connection, ConnectionInput
# (state, input) -> (new state, message shown to the user or None).
CONNECTION_TABLE: dict[tuple[Connection, ConnectionInput], tuple[Connection, str | None]] = {
    (_C.LOGGED_OUT, _I.LOGGED_ON): (_C.CONNECTED, None),
    (_C.CONNECTED, _I.LOST): (_C.RECONNECTING, CONNECTION_LOST),
    (_C.RECONNECTING, _I.LOST): (_C.RECONNECTING, None),  # shown once per loss
    (_C.RECONNECTING, _I.RESTORED): (_C.CONNECTED, CONNECTION_RESTORED),
    (_C.RECONNECTING, _I.GIVE_UP): (_C.GAVE_UP, UNABLE_TO_CONNECT),
    (_C.GAVE_UP, _I.LOST): (_C.GAVE_UP, None),
    # The desktop moved its session to another node by itself (client.py, the hand-off).
    (_C.CONNECTED, _I.MOVED): (_C.CONNECTED, None),
    (_C.RECONNECTING, _I.MOVED): (_C.CONNECTED, CONNECTION_RESTORED),
    **{(state, _I.LOGGED_OUT): (_C.LOGGED_OUT, None) for state in Connection},
    **{(state, _I.REFRESHED): (_C.LOGGED_OUT, None) for state in Connection},
}


class ConnectionTransitionError(UsageError):
    def __init__(self, state: Connection, event: ConnectionInput) -> None:
        super().__init__(f"connection cannot take {event.value!r} in state {state.value}")
        self.state = state
        self.event = event


# --- events for the I/O layer ----------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionChanged:
    old: Connection
    new: Connection

    def describe(self) -> str:
        return f"connection {self.old} -> {self.new}"


@dataclass(frozen=True)
class VoiceChanged:
    old: VoiceState
    new: VoiceState

    def describe(self) -> str:
        return f"voice {self.new.describe()}"


@dataclass(frozen=True)
class UserMessage:
    text: str


@dataclass(frozen=True)
class CallChanged:
    call: Call


@dataclass(frozen=True)
class ErrorReported:
    error: VoiceError


@dataclass(frozen=True)
class ServiceChanged:
    available: bool


DesktopEvent = (
    ConnectionChanged | VoiceChanged | UserMessage | CallChanged | ErrorReported | ServiceChanged
)


class Desktop:
    """One desktop page: what it shows and the messages it has shown."""

    def __init__(self, history: int = 1000) -> None:
        self.connection = Connection.LOGGED_OUT
        self.voice = VoiceState()
        self.calls: dict[str, Call] = {}
        self.user: UserInfo | None = None
        self.messages: list[str] = []
        # Every call notification, for waiting on states that leave ``calls`` (Released).
        self.call_log: deque[Call] = deque(maxlen=history)

    # --- connection ------------------------------------------------------------------------

    def fire(self, event: ConnectionInput) -> list[DesktopEvent]:
        row = CONNECTION_TABLE.get((self.connection, event))
        if row is None:
            raise ConnectionTransitionError(self.connection, event)
        new, text = row
        events: list[DesktopEvent] = []
        if new is not self.connection:
            events.append(ConnectionChanged(self.connection, new))
            self.connection = new
        if text is not None:
            events.extend(self.say(text))
        return events

    def say(self, text: str) -> list[DesktopEvent]:
        self.messages.append(text)
        return [UserMessage(text)]

    def refresh(self) -> list[DesktopEvent]:
        """The user refreshed the page: a new page knows nothing of the old session."""
        events = self.fire(ConnectionInput.REFRESHED)
        self.user = None
        self.calls = {}
        events.extend(self._set_voice(VoiceState()))
        return events

    # --- notifications ---------------------------------------------------------------------

    def apply(self, notification: Notification) -> list[DesktopEvent]:
        if isinstance(notification, InitializationComplete):
            self.user = notification.user
            return []
        if isinstance(notification, DnStateChanged):
            return self._on_dn(notification)
        if isinstance(notification, CallStateChanged):
            return self._on_call(notification.call)
        if isinstance(notification, EventErrorReported):
            return [ErrorReported(notification.error), *self.say(notification.error.message)]
        if isinstance(notification, ServiceStateChanged):
            return [ServiceChanged(notification.available)]
        raise UsageError(f"not a Workspace notification: {notification!r}")

    def _on_dn(self, change: DnStateChanged) -> list[DesktopEvent]:
        was_logged_in = self.voice.logged_in
        events = self._set_voice(change.voice)
        if (
            was_logged_in
            and change.voice.agent_state is AgentState.LOGGED_OUT
            and change.reason
            and change.reason != "Request"
        ):
            events.extend(self.say(f"Logged out of the voice channel ({change.reason})"))
        return events

    def _set_voice(self, voice: VoiceState) -> list[DesktopEvent]:
        old = self.voice
        if voice == old:
            return []
        self.voice = voice
        events: list[DesktopEvent] = [VoiceChanged(old, voice)]
        if old.available and not voice.available:
            events.extend(self.say(VOICE_UNAVAILABLE))
        elif voice.available and not old.available:
            events.extend(self.say(VOICE_AVAILABLE))
        return events

    def _on_call(self, call: Call) -> list[DesktopEvent]:
        if call.state.ended:
            self.calls.pop(call.id, None)
        else:
            self.calls[call.id] = call
        self.call_log.append(call)
        return [CallChanged(call)]

    def resync(self, voice: VoiceState, calls: Iterable[Call]) -> list[DesktopEvent]:
        """Align with the server's view after a reconnection (``current-session``)."""
        events = self._set_voice(voice)
        # A released call GWS keeps for the agent to mark done is not on the phone any more.
        current = {call.id: call for call in calls if not call.state.ended}
        for call_id in [known for known in self.calls if known not in current]:
            events.extend(self._on_call(self.calls[call_id].released()))
        for call in current.values():
            known = self.calls.get(call.id)
            if known is None or _shown(known) != _shown(call):
                events.extend(self._on_call(call))
        return events


def _shown(call: Call) -> tuple[CallState, tuple[str, ...]]:
    """What a call row shows (the notification type that brought it is not shown)."""
    return call.state, call.capabilities
