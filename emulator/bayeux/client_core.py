"""Sans-I/O Bayeux 1.0 client: builds requests, reads replies and advice, decides what is next.

Implements the client side of the Bayeux 1.0 spec as the official CometD JavaScript client
behaves (the client under ``genesys-workspace-client-js``): handshake offering
``supportedConnectionTypes``, one outstanding ``/meta/connect`` at a time, the first connect after
a handshake asking ``advice: {timeout: 0}``, ``reconnect`` advice obeyed (``retry`` → connect
after ``interval``, ``handshake`` → new handshake, ``none`` → stop), and a growing backoff while
requests fail without fresh advice. States and their transitions are the table below; the I/O
layer asks :attr:`ClientCore.next_action` what to do and when.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from emulator.bayeux.messages import (
    BAYEUX_VERSION,
    LONG_POLLING,
    META_CONNECT,
    META_DISCONNECT,
    META_HANDSHAKE,
    META_SUBSCRIBE,
    META_UNSUBSCRIBE,
    WEBSOCKET,
    Advice,
    Message,
    Reconnect,
    UsageError,
)


class ClientState(enum.StrEnum):
    UNCONNECTED = "unconnected"  # no client id; a handshake is (or will be) needed
    HANDSHAKING = "handshaking"  # handshake sent, reply pending
    CONNECTING = "connecting"  # handshaken; no successful connect yet, or retrying after a failure
    CONNECTED = "connected"  # the last /meta/connect succeeded
    DISCONNECTED = "disconnected"  # stopped: by request or by reconnect advice "none"


class _Input(enum.Enum):
    SEND_HANDSHAKE = "send handshake"
    HANDSHAKE_OK = "handshake succeeded"
    HANDSHAKE_FAILED = "handshake failed"
    CONNECT_OK = "connect succeeded"
    CONNECT_FAILED = "connect failed"
    REHANDSHAKE = "advice reconnect=handshake"
    STOP = "advice reconnect=none"
    SEND_DISCONNECT = "send disconnect"


_S, _I = ClientState, _Input
_TRANSITIONS: dict[tuple[ClientState, _Input], ClientState] = {
    (_S.UNCONNECTED, _I.SEND_HANDSHAKE): _S.HANDSHAKING,
    (_S.DISCONNECTED, _I.SEND_HANDSHAKE): _S.HANDSHAKING,
    (_S.HANDSHAKING, _I.HANDSHAKE_OK): _S.CONNECTING,
    (_S.HANDSHAKING, _I.HANDSHAKE_FAILED): _S.UNCONNECTED,
    (_S.HANDSHAKING, _I.STOP): _S.DISCONNECTED,
    (_S.CONNECTING, _I.CONNECT_OK): _S.CONNECTED,
    (_S.CONNECTING, _I.CONNECT_FAILED): _S.CONNECTING,
    (_S.CONNECTING, _I.REHANDSHAKE): _S.UNCONNECTED,
    (_S.CONNECTING, _I.STOP): _S.DISCONNECTED,
    (_S.CONNECTED, _I.CONNECT_OK): _S.CONNECTED,
    (_S.CONNECTED, _I.CONNECT_FAILED): _S.CONNECTING,
    (_S.CONNECTED, _I.REHANDSHAKE): _S.UNCONNECTED,
    (_S.CONNECTED, _I.STOP): _S.DISCONNECTED,
    (_S.UNCONNECTED, _I.SEND_DISCONNECT): _S.DISCONNECTED,
    (_S.HANDSHAKING, _I.SEND_DISCONNECT): _S.DISCONNECTED,
    (_S.CONNECTING, _I.SEND_DISCONNECT): _S.DISCONNECTED,
    (_S.CONNECTED, _I.SEND_DISCONNECT): _S.DISCONNECTED,
}


class ClientStateError(UsageError):
    """An operation was asked in a state where the table does not allow it."""

    def __init__(self, state: ClientState, action: str) -> None:
        super().__init__(f"cannot {action} in state {state.value}")
        self.state = state


class Step(enum.Enum):
    HANDSHAKE = "handshake"
    CONNECT = "connect"
    NONE = "none"


@dataclass(frozen=True)
class NextAction:
    step: Step
    delay: float = 0.0  # seconds to wait before doing it


# --- events for the I/O layer ------------------------------------------------------------


@dataclass(frozen=True)
class StateChanged:
    old: ClientState
    new: ClientState


@dataclass(frozen=True)
class HandshakeSucceeded:
    client_id: str
    connection_type: str
    reply: Message


@dataclass(frozen=True)
class HandshakeFailed:
    error: str
    reply: Message | None  # None: the transport failed, no reply arrived


@dataclass(frozen=True)
class ConnectFailed:
    error: str
    reply: Message | None


@dataclass(frozen=True)
class SubscriptionReply:
    """Reply to /meta/subscribe or /meta/unsubscribe (``reply.channel`` says which)."""

    reply: Message


@dataclass(frozen=True)
class PublishReply:
    reply: Message


@dataclass(frozen=True)
class Delivery:
    """An event message for the application."""

    message: Message


ClientEvent = (
    StateChanged
    | HandshakeSucceeded
    | HandshakeFailed
    | ConnectFailed
    | SubscriptionReply
    | PublishReply
    | Delivery
)

_DEFAULT_ADVICE = Advice(reconnect=Reconnect.RETRY, timeout_ms=60_000, interval_ms=0)


class ClientCore:
    """One Bayeux client session (possibly spanning several handshakes)."""

    def __init__(
        self,
        *,
        connection_types: Iterable[str] = (WEBSOCKET, LONG_POLLING),
        backoff_increment: float = 1.0,
        max_backoff: float = 60.0,
        handshake_ext: dict[str, Any] | None = None,
    ) -> None:
        self.connection_types = tuple(connection_types)
        if not self.connection_types:
            raise UsageError("a Bayeux client needs at least one connection type")
        self.backoff_increment = backoff_increment
        self.max_backoff = max_backoff
        self.handshake_ext = handshake_ext
        self.state = ClientState.UNCONNECTED
        self.client_id: str | None = None
        self.connection_type = self.connection_types[0]
        self.advice = _DEFAULT_ADVICE
        self.next_action = NextAction(Step.NONE)
        # Channels the application wants; re-sent after a new handshake (see resubscribe()).
        self.subscriptions: set[str] = set()
        self._backoff = 0.0
        self._next_id = 0
        self._handshake_id: str | None = None
        self._connect_id: str | None = None
        self._pending: dict[str, Message] = {}

    # --- building requests -------------------------------------------------------------------

    def _id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _fire(self, event: _Input, events: list[ClientEvent]) -> None:
        new = _TRANSITIONS.get((self.state, event))
        if new is None:
            raise ClientStateError(self.state, event.value)
        if new is not self.state:
            events.append(StateChanged(self.state, new))
            self.state = new

    def handshake(self) -> tuple[Message, list[ClientEvent]]:
        events: list[ClientEvent] = []
        self._fire(_Input.SEND_HANDSHAKE, events)
        self.client_id = None
        self._connect_id = None
        # Reconnect advice belongs to the session that just ended; timers carry over.
        self.advice = _DEFAULT_ADVICE.overlay(
            Advice(timeout_ms=self.advice.timeout_ms, interval_ms=self.advice.interval_ms)
        )
        message = Message(
            channel=META_HANDSHAKE,
            id=self._id(),
            version=BAYEUX_VERSION,
            minimum_version=BAYEUX_VERSION,
            supported_connection_types=self.connection_types,
            advice=Advice(timeout_ms=self.advice.timeout_ms, interval_ms=self.advice.interval_ms),
            ext=self.handshake_ext,
        )
        self._handshake_id = str(message.id)
        self.next_action = NextAction(Step.NONE)
        return message, events

    def connect(self) -> Message:
        if self.state not in (ClientState.CONNECTING, ClientState.CONNECTED):
            raise ClientStateError(self.state, "send /meta/connect")
        message = Message(
            channel=META_CONNECT,
            id=self._id(),
            client_id=self.client_id,
            connection_type=self.connection_type,
            # Like CometD: after a handshake or a failure, ask for an immediate answer so the
            # application learns at once that the connection is (re-)established.
            advice=None if self.state is ClientState.CONNECTED else Advice(timeout_ms=0),
        )
        self._connect_id = str(message.id)
        self.next_action = NextAction(Step.NONE)
        return message

    def _request(self, channel: str, **fields: Any) -> Message:
        if self.client_id is None or self.state in (
            ClientState.HANDSHAKING,
            ClientState.DISCONNECTED,
        ):
            raise ClientStateError(self.state, f"send {channel}")
        message = Message(channel=channel, id=self._id(), client_id=self.client_id, **fields)
        self._pending[str(message.id)] = message
        return message

    def subscribe(self, channel: str) -> Message:
        self.subscriptions.add(channel)
        return self._request(META_SUBSCRIBE, subscription=channel)

    def unsubscribe(self, channel: str) -> Message:
        self.subscriptions.discard(channel)
        return self._request(META_UNSUBSCRIBE, subscription=channel)

    def resubscribe(self) -> list[Message]:
        """Subscribe messages for every wanted channel (after a new handshake)."""
        return [
            self._request(META_SUBSCRIBE, subscription=channel)
            for channel in sorted(self.subscriptions)
        ]

    def publish(self, channel: str, data: Any) -> Message:
        if data is None:
            raise UsageError("Bayeux publish needs data")
        return self._request(channel, data=data)

    def disconnect(self) -> tuple[Message | None, list[ClientEvent]]:
        """Stop; returns the /meta/disconnect to send (None if never handshaken)."""
        events: list[ClientEvent] = []
        client_id = self.client_id
        if self.state is ClientState.DISCONNECTED:
            return None, events
        self._fire(_Input.SEND_DISCONNECT, events)
        self.next_action = NextAction(Step.NONE)
        self._connect_id = None
        self._handshake_id = None
        if client_id is None:
            return None, events
        message = Message(channel=META_DISCONNECT, id=self._id(), client_id=client_id)
        return message, events

    # --- reading replies ---------------------------------------------------------------------

    def receive(self, messages: Iterable[Message]) -> list[ClientEvent]:
        events: list[ClientEvent] = []
        for message in messages:
            if message.advice is not None:
                self.advice = _DEFAULT_ADVICE.overlay(message.advice)
            if message.channel == META_HANDSHAKE:
                self._on_handshake(message, events)
            elif message.channel == META_CONNECT:
                self._on_connect(message, events)
            elif message.channel == META_DISCONNECT:
                pass  # the state already changed when the disconnect was sent
            elif message.is_reply:
                request = self._pending.pop(str(message.id), None)
                if request is None:
                    continue  # a reply we did not ask for (or already gave up on)
                if message.channel in (META_SUBSCRIBE, META_UNSUBSCRIBE):
                    events.append(SubscriptionReply(message))
                else:
                    events.append(PublishReply(message))
            elif not message.is_meta and message.data is not None:
                events.append(Delivery(message))
        return events

    def _retry_delay(self) -> float:
        self._backoff = min(self._backoff + self.backoff_increment, self.max_backoff)
        return (self.advice.interval_ms or 0) / 1000 + self._backoff

    def _on_handshake(self, reply: Message, events: list[ClientEvent]) -> None:
        if self.state is not ClientState.HANDSHAKING or str(reply.id) != self._handshake_id:
            return
        self._handshake_id = None
        chosen = next(
            (
                kind
                for kind in self.connection_types
                if kind in (reply.supported_connection_types or ())
            ),
            None,
        )
        if reply.successful and reply.client_id and chosen is not None:
            self.client_id = reply.client_id
            self.connection_type = chosen
            self._backoff = 0.0
            self._fire(_Input.HANDSHAKE_OK, events)
            events.append(HandshakeSucceeded(reply.client_id, chosen, reply))
            if self.advice.reconnect is Reconnect.NONE:
                self._fire(_Input.SEND_DISCONNECT, events)
            else:
                self.next_action = NextAction(Step.CONNECT, 0.0)
            return
        error = reply.error or (
            "no common connection type" if reply.successful else "handshake refused"
        )
        if self.advice.reconnect is Reconnect.NONE:
            self._fire(_Input.STOP, events)
            self.next_action = NextAction(Step.NONE)
        else:
            self._fire(_Input.HANDSHAKE_FAILED, events)
            self.next_action = NextAction(Step.HANDSHAKE, self._retry_delay())
        events.append(HandshakeFailed(error, reply))

    def _on_connect(self, reply: Message, events: list[ClientEvent]) -> None:
        if self._connect_id is None or str(reply.id) != self._connect_id:
            return  # CometD: "mismatched /meta/connect reply"
        self._connect_id = None
        action = self.advice.reconnect or Reconnect.RETRY
        if reply.successful:
            if action is Reconnect.NONE:
                self._fire(_Input.STOP, events)
                self.next_action = NextAction(Step.NONE)
                return
            self._backoff = 0.0
            self._fire(_Input.CONNECT_OK, events)
            self.next_action = NextAction(Step.CONNECT, (self.advice.interval_ms or 0) / 1000)
            return
        events.append(ConnectFailed(reply.error or "connect refused", reply))
        self._after_connect_failure(action, events)

    def _after_connect_failure(self, action: Reconnect, events: list[ClientEvent]) -> None:
        if action is Reconnect.NONE:
            self._fire(_Input.STOP, events)
            self.next_action = NextAction(Step.NONE)
        elif action is Reconnect.HANDSHAKE:
            self._fire(_Input.REHANDSHAKE, events)
            self.client_id = None
            self.next_action = NextAction(Step.HANDSHAKE, self._retry_delay())
        else:
            self._fire(_Input.CONNECT_FAILED, events)
            self.next_action = NextAction(Step.CONNECT, self._retry_delay())

    def transport_failed(self, messages: Iterable[Message], reason: str) -> list[ClientEvent]:
        """The I/O layer could not get replies for ``messages`` (refused, reset, timed out)."""
        events: list[ClientEvent] = []
        for message in messages:
            key = str(message.id)
            if message.channel == META_HANDSHAKE and key == self._handshake_id:
                self._handshake_id = None
                self._fire(_Input.HANDSHAKE_FAILED, events)
                events.append(HandshakeFailed(reason, None))
                self.next_action = NextAction(Step.HANDSHAKE, self._retry_delay())
            elif message.channel == META_CONNECT and key == self._connect_id:
                self._connect_id = None
                events.append(ConnectFailed(reason, None))
                # CometD retries the connect on a transport failure; a server that lost the
                # client then answers 402 and advises the handshake.
                self._after_connect_failure(Reconnect.RETRY, events)
            else:
                request = self._pending.pop(key, None)
                if request is None:
                    continue
                failed = Message(
                    channel=request.channel,
                    id=request.id,
                    successful=False,
                    error=reason,
                    subscription=request.subscription,
                )
                if request.channel in (META_SUBSCRIBE, META_UNSUBSCRIBE):
                    events.append(SubscriptionReply(failed))
                elif request.channel != META_DISCONNECT:
                    events.append(PublishReply(failed))
        return events
