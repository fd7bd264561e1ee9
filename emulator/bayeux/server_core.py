"""Sans-I/O Bayeux 1.0 server: the client registry and the replies to every meta channel.

Implements the server side of the Bayeux 1.0 spec (handshake, connect, subscribe, unsubscribe,
disconnect, publish; advice; ``402::Unknown client`` with ``reconnect: handshake``) with the
long-polling semantics written as data, CometD style:

* a ``/meta/connect`` that arrives at ``now`` with nothing queued for its client becomes a
  :class:`Hold` due at ``now + timeout`` (the client may ask for a shorter timeout, e.g. ``0``
  for the first connect after a handshake); the transport waits until :meth:`ServerCore.is_ready`
  and then sends :meth:`ServerCore.release` — the queued messages and the connect reply;
* a client with no connect outstanding for longer than ``max_interval`` is gone:
  :meth:`ServerCore.expire` removes it (the spec's "act as if a disconnect had been received").

Time is always passed in (``now``, seconds on the caller's monotonic clock); client ids come from
an injected factory, so tests are deterministic. Nothing here does I/O or raises on peer input:
every bad message gets a reply with a precise ``error`` and the other clients are untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.bayeux import channels
from emulator.bayeux.messages import (
    BAYEUX_VERSION,
    META_CONNECT,
    META_DISCONNECT,
    META_HANDSHAKE,
    META_SUBSCRIBE,
    META_UNSUBSCRIBE,
    UNKNOWN_CLIENT_ERROR,
    Advice,
    ErrorCode,
    MalformedMessage,
    Message,
    PayloadError,
    Reconnect,
    UsageError,
    bayeux_error,
    decode_payload,
    failure_reply,
)
from emulator.bayeux.server_model import (
    Accept,
    Authorizer,
    ClientAdded,
    ClientPublished,
    ClientRemoved,
    ClientSubscribed,
    ClientUnsubscribed,
    Credentials,
    Deny,
    Exchange,
    Hold,
    RemovalReason,
    ServerConfig,
    ServerEvent,
)
from emulator.bayeux.server_registry import ClientRecord, ClientRegistry


@dataclass
class _Batch:
    replies: list[Message] = field(default_factory=list)
    events: list[ServerEvent] = field(default_factory=list)
    hold: Hold | None = None
    client_ids: list[str] = field(default_factory=list)


def _allow_everyone(handshake: Message, credentials: Credentials) -> Accept | Deny:
    return Accept()


class ServerCore:
    """The Bayeux server state for one endpoint: clients, subscriptions, queues and holds."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        new_client_id: Callable[[], str],
        authorize: Authorizer | None = None,
    ) -> None:
        self.config = config
        self._new_client_id = new_client_id
        self._authorize = authorize or _allow_everyone
        self._registry = ClientRegistry(config)
        self._handlers: dict[str, Callable[[Message, float, Credentials, _Batch], None]] = {
            META_HANDSHAKE: self._handshake,
            META_CONNECT: self._connect,
            META_SUBSCRIBE: self._subscribe,
            META_UNSUBSCRIBE: self._unsubscribe,
            META_DISCONNECT: self._disconnect,
        }

    # --- queries -----------------------------------------------------------------------------

    def client_ids(self) -> tuple[str, ...]:
        return tuple(self._registry.clients)

    def has_client(self, client_id: str) -> bool:
        return client_id in self._registry.clients

    def principal(self, client_id: str) -> object:
        client = self._registry.clients.get(client_id)
        if client is None:
            raise UsageError(f"no Bayeux client {client_id!r}")
        return client.principal

    def subscriptions(self, client_id: str) -> frozenset[str]:
        client = self._registry.clients.get(client_id)
        return frozenset(client.subscriptions) if client else frozenset()

    def dropped(self, client_id: str) -> int:
        """Messages discarded because the client's queue was full."""
        client = self._registry.clients.get(client_id)
        return client.dropped if client else 0

    @property
    def advice(self) -> Advice:
        return self._registry.advice

    # --- input from the peer -----------------------------------------------------------------

    def receive(
        self, payload: bytes | str, *, now: float, credentials: Credentials | None = None
    ) -> Exchange:
        """Process one transport payload (a JSON array of messages)."""
        credentials = credentials or Credentials()
        try:
            objects = decode_payload(payload)
        except PayloadError as exc:
            return Exchange(replies=(failure_reply(exc),), bad_payload=True)
        parsed: list[Message | MalformedMessage] = []
        for item in objects:
            try:
                parsed.append(Message.from_json(item))
            except MalformedMessage as exc:
                parsed.append(exc)
        handshakes = [m for m in parsed if isinstance(m, Message) and m.channel == META_HANDSHAKE]
        if handshakes:
            # Spec: a server MUST ignore any other message sent in the same request.
            parsed = [handshakes[0]]
        batch = _Batch()
        for item in parsed:
            if isinstance(item, MalformedMessage):
                batch.replies.append(failure_reply(item))
                continue
            handler = self._handlers.get(item.channel)
            if handler is not None:
                handler(item, now, credentials, batch)
            elif channels.kind_of(item.channel) is channels.ChannelKind.META:
                self._fail(batch, item, ErrorCode.UNKNOWN_CHANNEL, "Unknown meta channel")
            else:
                self._publish(item, now, batch)
        return Exchange(
            replies=tuple(batch.replies),
            hold=batch.hold,
            events=tuple(batch.events),
            client_ids=tuple(dict.fromkeys(batch.client_ids)),
        )

    def _error(
        self, request: Message, error: str, *, advice: Advice | None = None, **fields: Any
    ) -> Message:
        return Message(
            channel=request.channel,
            id=request.id,
            successful=False,
            error=error,
            advice=advice,
            **fields,
        )

    def _fail(
        self,
        batch: _Batch,
        request: Message,
        code: ErrorCode,
        text: str,
        arg: str | None = None,
        **fields: Any,
    ) -> None:
        """Reply ``code:arg:text``; ``arg`` defaults to the request's channel."""
        error = bayeux_error(code, text, request.channel if arg is None else arg)
        batch.replies.append(self._error(request, error, **fields))

    def _known_client(self, request: Message, batch: _Batch) -> ClientRecord | None:
        """The requesting client, or None after queueing the reply that tells it to handshake."""
        fields: dict[str, Any] = {}
        if request.channel in (META_SUBSCRIBE, META_UNSUBSCRIBE):
            fields["subscription"] = request.subscription
        rehandshake = Advice(reconnect=Reconnect.HANDSHAKE, interval_ms=0)
        if request.client_id is None:
            error = bayeux_error(ErrorCode.NO_CLIENT_ID, "No client ID")
            batch.replies.append(self._error(request, error, advice=rehandshake, **fields))
            return None
        client = self._registry.clients.get(request.client_id)
        if client is None:
            batch.replies.append(
                self._error(request, UNKNOWN_CLIENT_ERROR, advice=rehandshake, **fields)
            )
            return None
        batch.client_ids.append(client.client_id)
        return client

    def _handshake(
        self, request: Message, now: float, credentials: Credentials, batch: _Batch
    ) -> None:
        offered = request.supported_connection_types
        supported = self.config.connection_types
        none = Advice(reconnect=Reconnect.NONE)
        refusal: str | None = None
        if self._registry.closing:
            refusal = bayeux_error(ErrorCode.DENIED, "Server is shutting down")
        elif request.version is None:
            refusal = bayeux_error(ErrorCode.BAD_REQUEST, "Handshake requires a version")
        elif request.version.split(".")[0] != "1":
            refusal = bayeux_error(
                ErrorCode.BAD_REQUEST, "Unsupported Bayeux version", request.version
            )
        elif offered is None:
            refusal = bayeux_error(
                ErrorCode.BAD_REQUEST, "Handshake requires supportedConnectionTypes"
            )
        elif not set(offered) & set(supported):
            refusal = bayeux_error(
                ErrorCode.BAD_REQUEST,
                f"No common connection type; the server supports {' and '.join(supported)}",
            )
        if refusal is not None:
            batch.replies.append(
                self._error(
                    request,
                    refusal,
                    advice=none,
                    version=BAYEUX_VERSION,
                    supported_connection_types=supported,
                )
            )
            return
        decision = self._authorize(request, credentials)
        if isinstance(decision, Deny):
            batch.replies.append(
                self._error(
                    request,
                    bayeux_error(ErrorCode.DENIED, decision.reason),
                    advice=Advice(reconnect=decision.reconnect),
                    version=BAYEUX_VERSION,
                    supported_connection_types=supported,
                )
            )
            return
        client_id = self._new_client_id()
        self._registry.add(client_id, decision.principal, now)
        batch.client_ids.append(client_id)
        batch.events.append(ClientAdded(client_id, decision.principal))
        batch.replies.append(
            Message(
                channel=META_HANDSHAKE,
                id=request.id,
                client_id=client_id,
                successful=True,
                version=BAYEUX_VERSION,
                minimum_version=BAYEUX_VERSION,
                supported_connection_types=supported,
                advice=self.advice,
            )
        )

    def _connect(
        self, request: Message, now: float, credentials: Credentials, batch: _Batch
    ) -> None:
        client = self._known_client(request, batch)
        if client is None:
            return
        kind = request.connection_type
        if kind is None:
            self._fail(batch, request, ErrorCode.BAD_REQUEST, "Connect requires a connectionType")
            return
        if kind not in self.config.connection_types:
            self._fail(batch, request, ErrorCode.BAD_REQUEST, "Unsupported connection type", kind)
            return
        client.last_seen = now
        previous = client.hold
        if previous is not None and batch.hold is previous:
            # Two connects in one payload: the earlier one is answered at once.
            batch.replies.extend(self.release(previous, now))
            batch.hold = None
        timeout = self.config.timeout
        asked = request.advice.timeout_ms if request.advice else None
        if asked is not None and asked >= 0:
            timeout = min(timeout, asked / 1000)
        hold = self._registry.new_hold(client, now + timeout, request.id)
        if client.queue or timeout <= 0 or self._registry.closing:
            batch.replies.extend(self.release(hold, now))
        else:
            batch.hold = hold

    def _validate_subscription(self, request: Message) -> str | None:
        if not request.subscriptions:
            return bayeux_error(ErrorCode.BAD_REQUEST, "subscription is required", request.channel)
        for channel in request.subscriptions:
            if not channels.is_valid_pattern(channel):
                return bayeux_error(ErrorCode.BAD_REQUEST, "Invalid channel name", channel)
            kind = channels.kind_of(channel)
            if kind is channels.ChannelKind.META:
                return bayeux_error(ErrorCode.DENIED, "Cannot subscribe to meta channels", channel)
            allowed = self.config.channels
            if (
                kind is channels.ChannelKind.BROADCAST
                and allowed is not None
                and not any(channels.covers(pattern, channel) for pattern in allowed)
            ):
                return bayeux_error(ErrorCode.UNKNOWN_CHANNEL, "Unknown channel", channel)
        return None

    def _subscribe(
        self, request: Message, now: float, credentials: Credentials, batch: _Batch
    ) -> None:
        client = self._known_client(request, batch)
        if client is None:
            return
        error = self._validate_subscription(request)
        if error is not None:
            batch.replies.append(
                self._error(
                    request, error, client_id=client.client_id, subscription=request.subscription
                )
            )
            return
        for channel in request.subscriptions:
            # Spec: servers SHOULD NOT record subscriptions to service channels.
            if channels.kind_of(channel) is channels.ChannelKind.BROADCAST:
                client.subscriptions.add(channel)
            batch.events.append(ClientSubscribed(client.client_id, channel))
        batch.replies.append(self._success(request, client, subscription=request.subscription))

    def _unsubscribe(
        self, request: Message, now: float, credentials: Credentials, batch: _Batch
    ) -> None:
        client = self._known_client(request, batch)
        if client is None:
            return
        if not request.subscriptions:
            text = "subscription is required"
            self._fail(batch, request, ErrorCode.BAD_REQUEST, text, client_id=client.client_id)
            return
        for channel in request.subscriptions:
            if channel in client.subscriptions:
                client.subscriptions.discard(channel)
                batch.events.append(ClientUnsubscribed(client.client_id, channel))
        batch.replies.append(self._success(request, client, subscription=request.subscription))

    def _disconnect(
        self, request: Message, now: float, credentials: Credentials, batch: _Batch
    ) -> None:
        client = self._known_client(request, batch)
        if client is None:
            return
        if batch.hold is not None and batch.hold.client_id == client.client_id:
            batch.replies.extend(self.release(batch.hold, now))
            batch.hold = None
        removed = self.remove(client.client_id, now, RemovalReason.DISCONNECTED)
        if removed is not None:
            batch.events.append(removed)
        batch.replies.append(self._success(request, client))

    def _publish(self, request: Message, now: float, batch: _Batch) -> None:
        channel = request.channel
        if not channels.is_valid_name(channel):
            self._fail(batch, request, ErrorCode.BAD_REQUEST, "Invalid channel name")
            return
        client = self._known_client(request, batch)
        if client is None:
            return
        if request.data is None:
            self._fail(batch, request, ErrorCode.BAD_REQUEST, "Publish requires data")
            return
        kind = channels.kind_of(channel)
        if kind is channels.ChannelKind.BROADCAST and not self.config.allow_client_publish:
            self._fail(
                batch, request, ErrorCode.DENIED, "Publishing to this channel is not allowed"
            )
            return
        if kind is channels.ChannelKind.BROADCAST:
            self.broadcast(channel, request.data, message_id=request.id)
        batch.events.append(ClientPublished(client.client_id, channel, request.data))
        batch.replies.append(Message(channel=channel, id=request.id, successful=True))

    def _success(self, request: Message, client: ClientRecord, **fields: Any) -> Message:
        return Message(
            channel=request.channel,
            id=request.id,
            client_id=client.client_id,
            successful=True,
            **fields,
        )

    # --- output to clients (delegated to the registry) ---------------------------------------

    def publish(
        self, client_id: str, channel: str, data: Any, *, message_id: str | int | None = None
    ) -> bool:
        """Queue an event for one client, subscribed or not (CometD ``ServerSession.deliver``).

        Returns False when the client is unknown. A full queue drops its oldest message.
        """
        return self._registry.publish(client_id, channel, data, message_id=message_id)

    def broadcast(
        self, channel: str, data: Any, *, message_id: str | int | None = None
    ) -> tuple[str, ...]:
        """Queue an event for every client subscribed to ``channel``; returns their ids."""
        return self._registry.broadcast(channel, data, message_id=message_id)

    def drain(self, client_id: str) -> tuple[Message, ...]:
        """Take every queued message of a client (a WebSocket sends them without waiting)."""
        return self._registry.drain(client_id)

    def is_ready(self, hold: Hold, now: float) -> bool:
        """Whether a held connect must be answered now."""
        return self._registry.is_ready(hold, now)

    def release(self, hold: Hold, now: float) -> tuple[Message, ...]:
        """Answer a held connect: the client's queued messages, then the connect reply."""
        return self._registry.release(hold, now)

    def abandon(self, hold: Hold, now: float) -> None:
        """The transport under a held connect went away; the client starts its max_interval."""
        self._registry.abandon(hold, now)

    def remove(
        self, client_id: str, now: float, reason: RemovalReason = RemovalReason.REMOVED
    ) -> ClientRemoved | None:
        """Forget a client; a connect it has held is answered with ``reconnect: none``."""
        return self._registry.remove(client_id, now, reason)

    def expire(self, now: float) -> tuple[ClientRemoved, ...]:
        """Remove the clients whose last connect ended more than ``max_interval`` ago."""
        return self._registry.expire(now)

    def close(self) -> None:
        """Shutting down: every held connect is ready and new handshakes are refused."""
        self._registry.closing = True
