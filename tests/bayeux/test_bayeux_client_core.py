"""The sans-I/O Bayeux client: state table, advice, backoff; paired with the server core."""

from __future__ import annotations

import itertools

import pytest

from emulator.bayeux.client_core import (
    ClientCore,
    ClientState,
    ClientStateError,
    ConnectFailed,
    Delivery,
    HandshakeFailed,
    HandshakeSucceeded,
    NextAction,
    StateChanged,
    Step,
    SubscriptionReply,
)
from emulator.bayeux.messages import (
    Advice,
    Message,
    Reconnect,
    encode_messages,
    parse_messages,
)
from emulator.bayeux.server_core import ServerCore
from emulator.bayeux.server_model import Exchange, ServerConfig


class Pair:
    """A client core wired to a server core through JSON text, like h11's ConnectionPair."""

    def __init__(self, **config: float) -> None:
        ids = itertools.count(1)
        self.server = ServerCore(
            ServerConfig(**{"timeout": 30.0, "max_interval": 10.0, **config}),
            new_client_id=lambda: f"c{next(ids)}",
        )
        self.client = ClientCore(backoff_increment=1.0, max_backoff=5.0)
        self.now = 0.0

    def exchange(self, *messages: Message) -> tuple[Exchange, list[object]]:
        exchange = self.server.receive(encode_messages(messages), now=self.now)
        replies = parse_messages(encode_messages(exchange.replies)) if exchange.replies else []
        return exchange, list(self.client.receive(replies))

    def establish(self) -> None:
        message, _ = self.client.handshake()
        self.exchange(message)
        self.exchange(self.client.connect())
        assert self.client.state is ClientState.CONNECTED


def test_handshake_then_connect_reaches_connected() -> None:
    pair = Pair()
    message, events = pair.client.handshake()
    assert events == [StateChanged(ClientState.UNCONNECTED, ClientState.HANDSHAKING)]
    assert message.supported_connection_types == ("websocket", "long-polling")
    assert message.version == "1.0"
    _, events = pair.exchange(message)
    assert any(isinstance(e, HandshakeSucceeded) and e.client_id == "c1" for e in events)
    assert pair.client.state is ClientState.CONNECTING
    assert pair.client.next_action == NextAction(Step.CONNECT, 0.0)
    connect = pair.client.connect()
    assert connect.advice == Advice(timeout_ms=0)  # first connect: answer at once
    assert connect.connection_type == "websocket"
    _, events = pair.exchange(connect)
    assert StateChanged(ClientState.CONNECTING, ClientState.CONNECTED) in events
    assert pair.client.next_action == NextAction(Step.CONNECT, 0.0)
    assert pair.client.connect().advice is None  # later connects let the server hold them


def test_negotiates_the_first_client_type_the_server_supports() -> None:
    pair = Pair()
    pair.server = ServerCore(
        ServerConfig(connection_types=("long-polling",)), new_client_id=lambda: "z"
    )
    message, _ = pair.client.handshake()
    pair.exchange(message)
    assert pair.client.connection_type == "long-polling"


def test_delivered_events_come_out_as_deliveries() -> None:
    pair = Pair()
    pair.establish()
    hold = pair.server.receive(encode_messages([pair.client.connect()]), now=0).hold
    assert hold is not None
    pair.server.publish("c1", "/workspace/v3/voice", {"messageType": "CallStateChanged"})
    released = parse_messages(encode_messages(pair.server.release(hold, 0)))
    events = pair.client.receive(released)
    deliveries = [e for e in events if isinstance(e, Delivery)]
    assert [d.message.data for d in deliveries] == [{"messageType": "CallStateChanged"}]


def test_402_unknown_client_leads_to_rehandshake() -> None:
    pair = Pair()
    pair.establish()
    pair.server.remove("c1", 0.0)
    _, events = pair.exchange(pair.client.connect())
    failures = [e for e in events if isinstance(e, ConnectFailed)]
    assert [f.error for f in failures] == ["402::Unknown client"]
    assert pair.client.state is ClientState.UNCONNECTED
    assert pair.client.client_id is None
    assert pair.client.next_action.step is Step.HANDSHAKE
    message, _ = pair.client.handshake()
    pair.exchange(message)
    assert pair.client.client_id == "c2"


def test_transport_failure_retries_connect_with_growing_backoff_capped() -> None:
    pair = Pair(interval=0.5)
    pair.establish()
    delays = []
    for _ in range(7):
        connect = pair.client.connect()
        events = pair.client.transport_failed([connect], "connection refused")
        assert any(isinstance(e, ConnectFailed) for e in events)
        delays.append(pair.client.next_action.delay)
    assert pair.client.state is ClientState.CONNECTING
    assert delays == [1.5, 2.5, 3.5, 4.5, 5.5, 5.5, 5.5]
    _, events = pair.exchange(pair.client.connect())
    assert pair.client.state is ClientState.CONNECTED
    assert pair.client.next_action == NextAction(Step.CONNECT, 0.5)


def test_handshake_denied_with_none_advice_stops_the_client() -> None:
    pair = Pair()
    pair.client.handshake()
    reply = Message(
        channel="/meta/handshake",
        id="1",
        successful=False,
        error="403::No workspace session",
        advice=Advice(reconnect=Reconnect.NONE),
    )
    events = pair.client.receive([reply])
    assert HandshakeFailed("403::No workspace session", reply) in events
    assert pair.client.state is ClientState.DISCONNECTED
    assert pair.client.next_action.step is Step.NONE


def test_handshake_denied_with_handshake_advice_retries_after_backoff() -> None:
    pair = Pair()
    pair.client.handshake()
    reply = Message(
        channel="/meta/handshake",
        id="1",
        successful=False,
        error="403::later",
        advice=Advice(reconnect=Reconnect.HANDSHAKE, interval_ms=0),
    )
    pair.client.receive([reply])
    assert pair.client.state is ClientState.UNCONNECTED
    assert pair.client.next_action == NextAction(Step.HANDSHAKE, 1.0)


def test_mismatched_connect_reply_is_ignored() -> None:
    pair = Pair()
    pair.establish()
    pair.client.connect()
    stale = Message(channel="/meta/connect", id="999", successful=False, error="x")
    assert pair.client.receive([stale]) == []
    assert pair.client.state is ClientState.CONNECTED


def test_subscription_reply_and_its_failure_are_reported() -> None:
    pair = Pair()
    pair.establish()
    _, events = pair.exchange(pair.client.subscribe("/meta/connect"))
    (reply_event,) = [e for e in events if isinstance(e, SubscriptionReply)]
    assert reply_event.reply.error == "403:/meta/connect:Cannot subscribe to meta channels"
    message = pair.client.subscribe("/workspace/v3/voice")
    failed = pair.client.transport_failed([message], "reset")
    assert isinstance(failed[0], SubscriptionReply)
    assert failed[0].reply.successful is False and failed[0].reply.error == "reset"


def test_resubscribe_after_rehandshake_sends_every_wanted_channel() -> None:
    pair = Pair()
    pair.establish()
    pair.exchange(pair.client.subscribe("/b"))
    pair.exchange(pair.client.subscribe("/a"))
    assert [m.subscription for m in pair.client.resubscribe()] == ["/a", "/b"]


def test_advice_none_on_connect_reply_disconnects() -> None:
    pair = Pair()
    pair.establish()
    hold = pair.server.receive(encode_messages([pair.client.connect()]), now=0).hold
    assert hold is not None
    pair.server.remove("c1", 0.0)
    pair.client.receive(parse_messages(encode_messages(pair.server.release(hold, 0.0))))
    assert pair.client.state is ClientState.DISCONNECTED


def test_operations_outside_the_state_table_name_state_and_action() -> None:
    client = ClientCore()
    with pytest.raises(ClientStateError, match="cannot send /meta/connect in state unconnected"):
        client.connect()
    client.handshake()
    with pytest.raises(ClientStateError, match="in state handshaking"):
        client.handshake()
    with pytest.raises(ClientStateError):
        client.subscribe("/a")


def test_disconnect_sends_meta_disconnect_and_stops() -> None:
    pair = Pair()
    pair.establish()
    message, events = pair.client.disconnect()
    assert message is not None and message.channel == "/meta/disconnect"
    assert events == [StateChanged(ClientState.CONNECTED, ClientState.DISCONNECTED)]
    exchange, _ = pair.exchange(message)
    assert exchange.replies[0].successful
    assert not pair.server.has_client("c1")
