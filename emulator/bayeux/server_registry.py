"""The Bayeux server's clients: queues, held connects and expiry (Bayeux 1.0, "Connect").

Each client has a subscription set, a bounded queue of events waiting for delivery and at most
one held ``/meta/connect`` (:class:`Hold`). A held connect is answered when an event is queued,
when its deadline passes, when a newer connect supersedes it or when the client goes away. A
client without a held connect for longer than ``max_interval`` is expired — the spec's "if the
server does not have a current outstanding connect and a connect is not received within a
configured timeout, then the server SHOULD act as if a disconnect message has been received".
Time is always a parameter; nothing here does I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from emulator.bayeux import channels
from emulator.bayeux.messages import (
    META_CONNECT,
    UNKNOWN_CLIENT_ERROR,
    Advice,
    Message,
    Reconnect,
    UsageError,
)
from emulator.bayeux.server_model import ClientRemoved, Hold, RemovalReason, ServerConfig


@dataclass
class ClientRecord:
    client_id: str
    principal: object
    last_seen: float
    subscriptions: set[str] = field(default_factory=set)
    queue: deque[Message] = field(default_factory=deque)
    hold: Hold | None = None
    dropped: int = 0


class ClientRegistry:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.clients: dict[str, ClientRecord] = {}
        self.closing = False
        self._next_token = 0
        # Final connect replies of clients removed while a connect was held, by hold token.
        self._final_replies: dict[int, Message] = {}

    @property
    def advice(self) -> Advice:
        return Advice(
            reconnect=Reconnect.RETRY,
            interval_ms=round(self.config.interval * 1000),
            timeout_ms=round(self.config.timeout * 1000),
        )

    def add(self, client_id: str, principal: object, now: float) -> ClientRecord:
        if client_id in self.clients or not client_id.isalnum():
            raise UsageError(f"client id factory returned an unusable id {client_id!r}")
        record = ClientRecord(client_id, principal, last_seen=now)
        self.clients[client_id] = record
        return record

    def new_hold(self, client: ClientRecord, deadline: float, message_id: str | int | None) -> Hold:
        self._next_token += 1
        hold = Hold(client.client_id, self._next_token, deadline, message_id)
        client.hold = hold
        return hold

    def publish(
        self, client_id: str, channel: str, data: Any, *, message_id: str | int | None = None
    ) -> bool:
        meta = channels.kind_of(channel) is channels.ChannelKind.META
        if not channels.is_valid_name(channel) or meta:
            raise UsageError(f"cannot deliver on channel {channel!r}")
        if data is None:
            raise UsageError("Bayeux event messages need data")
        client = self.clients.get(client_id)
        if client is None:
            return False
        if len(client.queue) >= self.config.max_queue:
            client.queue.popleft()
            client.dropped += 1
        client.queue.append(Message(channel=channel, id=message_id, data=data))
        return True

    def broadcast(
        self, channel: str, data: Any, *, message_id: str | int | None = None
    ) -> tuple[str, ...]:
        targets = tuple(
            client.client_id
            for client in self.clients.values()
            if any(channels.matches(pattern, channel) for pattern in client.subscriptions)
        )
        for client_id in targets:
            self.publish(client_id, channel, data, message_id=message_id)
        return targets

    def drain(self, client_id: str) -> tuple[Message, ...]:
        client = self.clients.get(client_id)
        if client is None or not client.queue:
            return ()
        messages = tuple(client.queue)
        client.queue.clear()
        return messages

    def is_ready(self, hold: Hold, now: float) -> bool:
        client = self.clients.get(hold.client_id)
        if client is None or client.hold != hold or self.closing:
            return True
        return bool(client.queue) or now >= hold.deadline

    def release(self, hold: Hold, now: float) -> tuple[Message, ...]:
        final = self._final_replies.pop(hold.token, None)
        if final is not None:
            return (final,)
        client = self.clients.get(hold.client_id)
        if client is None:
            return (
                Message(
                    channel=META_CONNECT,
                    id=hold.message_id,
                    successful=False,
                    error=UNKNOWN_CLIENT_ERROR,
                    advice=Advice(reconnect=Reconnect.HANDSHAKE, interval_ms=0),
                ),
            )
        reply = Message(
            channel=META_CONNECT,
            id=hold.message_id,
            client_id=client.client_id,
            successful=True,
            advice=self.advice,
        )
        if client.hold != hold:
            return (reply,)  # superseded by a newer connect, which gets the queue
        client.hold = None
        client.last_seen = now
        messages = tuple(client.queue)
        client.queue.clear()
        return (*messages, reply)

    def abandon(self, hold: Hold, now: float) -> None:
        self._final_replies.pop(hold.token, None)
        client = self.clients.get(hold.client_id)
        if client is not None and client.hold == hold:
            client.hold = None
            client.last_seen = now

    def remove(
        self, client_id: str, now: float, reason: RemovalReason = RemovalReason.REMOVED
    ) -> ClientRemoved | None:
        client = self.clients.pop(client_id, None)
        if client is None:
            return None
        if client.hold is not None:
            self._final_replies[client.hold.token] = Message(
                channel=META_CONNECT,
                id=client.hold.message_id,
                client_id=client_id,
                successful=True,
                advice=Advice(reconnect=Reconnect.NONE, interval_ms=0),
            )
        return ClientRemoved(client_id, client.principal, reason)

    def expire(self, now: float) -> tuple[ClientRemoved, ...]:
        limit = self.config.max_interval
        gone = [
            client.client_id
            for client in self.clients.values()
            if client.hold is None and now - client.last_seen > limit
        ]
        removed = [self.remove(client_id, now, RemovalReason.EXPIRED) for client_id in gone]
        return tuple(event for event in removed if event is not None)
