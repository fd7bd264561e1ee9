"""The sans-I/O Bayeux server: payloads in, replies/holds/events out, time passed explicitly."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from emulator.bayeux.messages import Message, Reconnect, UsageError
from emulator.bayeux.server_core import ServerCore
from emulator.bayeux.server_model import (
    Accept,
    ClientAdded,
    ClientPublished,
    ClientRemoved,
    ClientSubscribed,
    Credentials,
    Deny,
    Exchange,
    RemovalReason,
    ServerConfig,
)


def make_core(**config: Any) -> ServerCore:
    counter = itertools.count(1)
    return ServerCore(
        ServerConfig(**{"timeout": 30.0, "max_interval": 10.0, **config}),
        new_client_id=lambda: f"client{next(counter)}",
    )


def send(core: ServerCore, *messages: dict[str, Any], now: float = 0.0) -> Exchange:
    return core.receive(json.dumps(list(messages)).encode(), now=now)


def handshake(core: ServerCore, now: float = 0.0) -> str:
    exchange = send(
        core,
        {
            "channel": "/meta/handshake",
            "id": "1",
            "version": "1.0",
            "supportedConnectionTypes": ["websocket", "long-polling"],
        },
        now=now,
    )
    reply = exchange.replies[0]
    assert reply.successful and reply.client_id
    return reply.client_id


def wire(message: Message) -> dict[str, Any]:
    return message.to_json()


def test_handshake_reply_has_client_id_connection_types_and_advice() -> None:
    core = make_core(timeout=30.0, interval=0.0)
    exchange = send(
        core,
        {
            "channel": "/meta/handshake",
            "id": "7",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": ["long-polling", "callback-polling"],
        },
    )
    assert [wire(reply) for reply in exchange.replies] == [
        {
            "channel": "/meta/handshake",
            "id": "7",
            "clientId": "client1",
            "successful": True,
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": ["websocket", "long-polling"],
            "advice": {"reconnect": "retry", "interval": 0, "timeout": 30000},
        }
    ]
    assert exchange.events == (ClientAdded("client1", None),)


def test_handshake_ignores_other_messages_in_the_same_payload() -> None:
    core = make_core()
    exchange = send(
        core,
        {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"]},
        {"channel": "/meta/subscribe", "clientId": "x", "subscription": "/a"},
    )
    assert [reply.channel for reply in exchange.replies] == ["/meta/handshake"]


def test_handshake_without_common_connection_type_fails_with_advice_none() -> None:
    core = make_core(connection_types=("long-polling",))
    exchange = send(
        core,
        {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["iframe"]},
    )
    reply = exchange.replies[0]
    assert reply.successful is False
    assert reply.error == "400::No common connection type; the server supports long-polling"
    assert reply.advice is not None and reply.advice.reconnect is Reconnect.NONE
    assert core.client_ids() == ()


def test_handshake_without_version_is_refused() -> None:
    core = make_core()
    exchange = send(core, {"channel": "/meta/handshake", "supportedConnectionTypes": ["websocket"]})
    assert exchange.replies[0].error == "400::Handshake requires a version"


def test_authorizer_sees_credentials_and_can_deny_with_reconnect_advice() -> None:
    seen: list[Credentials] = []

    def authorize(request: Message, credentials: Credentials) -> Accept | Deny:
        seen.append(credentials)
        if credentials.cookies.get("WORKSPACE_SESSIONID") == "good":
            return Accept(principal="agent1")
        return Deny("No workspace session", Reconnect.HANDSHAKE)

    core = ServerCore(ServerConfig(), new_client_id=lambda: "abc", authorize=authorize)
    request = json.dumps(
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["websocket"],
            }
        ]
    )
    denied = core.receive(request, now=0, credentials=Credentials(cookies={}))
    assert denied.replies[0].error == "403::No workspace session"
    assert denied.replies[0].advice is not None
    assert denied.replies[0].advice.reconnect is Reconnect.HANDSHAKE
    accepted = core.receive(
        request, now=0, credentials=Credentials(cookies={"WORKSPACE_SESSIONID": "good"})
    )
    assert accepted.replies[0].successful
    assert core.principal("abc") == "agent1"
    assert len(seen) == 2


def test_first_connect_with_timeout_zero_is_answered_at_once() -> None:
    core = make_core()
    client_id = handshake(core)
    exchange = send(
        core,
        {
            "channel": "/meta/connect",
            "id": "2",
            "clientId": client_id,
            "connectionType": "long-polling",
            "advice": {"timeout": 0},
        },
    )
    assert exchange.hold is None
    assert [wire(reply) for reply in exchange.replies] == [
        {
            "channel": "/meta/connect",
            "id": "2",
            "clientId": client_id,
            "successful": True,
            "advice": {"reconnect": "retry", "interval": 0, "timeout": 30000},
        }
    ]


def test_connect_is_held_until_timeout_then_answered() -> None:
    core = make_core(timeout=30.0)
    client_id = handshake(core)
    connect = {"channel": "/meta/connect", "id": "3", "clientId": client_id}
    exchange = send(core, {**connect, "connectionType": "long-polling"}, now=100.0)
    hold = exchange.hold
    assert hold is not None and exchange.replies == ()
    assert hold.deadline == 130.0
    assert not core.is_ready(hold, 129.9)
    assert core.is_ready(hold, 130.0)
    released = core.release(hold, 130.0)
    assert [m.channel for m in released] == ["/meta/connect"]
    assert released[0].id == "3" and released[0].successful


def test_held_connect_is_released_with_the_published_event_first() -> None:
    core = make_core()
    client_id = handshake(core)
    hold = send(
        core, {"channel": "/meta/connect", "clientId": client_id, "connectionType": "websocket"}
    ).hold
    assert hold is not None
    assert core.publish(client_id, "/workspace/v3/voice", {"messageType": "DnStateChanged"})
    assert core.is_ready(hold, 1.0)
    released = core.release(hold, 1.0)
    assert [(m.channel, m.data) for m in released] == [
        ("/workspace/v3/voice", {"messageType": "DnStateChanged"}),
        ("/meta/connect", None),
    ]


def test_connect_with_queued_messages_returns_them_immediately() -> None:
    core = make_core()
    client_id = handshake(core)
    core.publish(client_id, "/a/b", {"n": 1})
    exchange = send(
        core, {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
    )
    assert exchange.hold is None
    assert [m.channel for m in exchange.replies] == ["/a/b", "/meta/connect"]


def test_newer_connect_supersedes_the_held_one() -> None:
    core = make_core()
    client_id = handshake(core)
    connect = {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
    first = send(core, {**connect, "id": "a"}).hold
    second = send(core, {**connect, "id": "b"}).hold
    assert first is not None and second is not None
    assert core.is_ready(first, 0.0) and not core.is_ready(second, 0.0)
    core.publish(client_id, "/x", {"n": 1})
    assert [m.channel for m in core.release(first, 0.0)] == ["/meta/connect"]
    assert [m.channel for m in core.release(second, 0.0)] == ["/x", "/meta/connect"]


def test_unknown_client_gets_402_with_handshake_advice() -> None:
    core = make_core()
    exchange = send(
        core,
        {"channel": "/meta/connect", "id": "9", "clientId": "nope", "connectionType": "websocket"},
    )
    assert [wire(reply) for reply in exchange.replies] == [
        {
            "channel": "/meta/connect",
            "id": "9",
            "successful": False,
            "error": "402::Unknown client",
            "advice": {"reconnect": "handshake", "interval": 0},
        }
    ]


def test_non_json_payload_is_a_bad_payload_with_precise_error() -> None:
    core = make_core()
    exchange = core.receive(b"{not json", now=0)
    assert exchange.bad_payload
    assert exchange.replies[0].error is not None
    assert exchange.replies[0].error.startswith("400::payload is not valid JSON")


def test_payload_that_is_not_an_array_of_objects_is_refused() -> None:
    core = make_core()
    exchange = core.receive(b'"hello"', now=0)
    assert exchange.bad_payload
    assert exchange.replies[0].error == (
        "400::payload must be a JSON array of Bayeux message objects"
    )
    item = core.receive(b"[42]", now=0)
    assert item.replies[0].error == "400::each Bayeux message must be a JSON object"


def test_message_without_channel_is_answered_with_its_id() -> None:
    core = make_core()
    exchange = send(core, {"id": "5", "clientId": "x"})
    assert [wire(reply) for reply in exchange.replies] == [
        {
            "channel": "/meta/unsuccessful",
            "id": "5",
            "successful": False,
            "error": "400::message has no channel",
        }
    ]


def test_subscribe_to_meta_channel_is_denied_and_nothing_recorded() -> None:
    core = make_core()
    client_id = handshake(core)
    exchange = send(
        core,
        {"channel": "/meta/subscribe", "id": "4", "clientId": client_id, "subscription": "/meta/*"},
    )
    reply = exchange.replies[0]
    assert reply.error == "403:/meta/*:Cannot subscribe to meta channels"
    assert reply.subscription == "/meta/*"
    assert core.subscriptions(client_id) == frozenset()


def test_subscribe_to_invalid_or_unknown_channel_is_refused() -> None:
    core = make_core(channels=("/workspace/v3/**",))
    client_id = handshake(core)
    bad = send(core, {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "a//"})
    assert bad.replies[0].error == "400:a//:Invalid channel name"
    unknown = send(
        core, {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/other"}
    )
    assert unknown.replies[0].error == "404:/other:Unknown channel"
    good = send(
        core,
        {
            "channel": "/meta/subscribe",
            "clientId": client_id,
            "subscription": ["/workspace/v3/voice", "/workspace/v3/initialization"],
        },
    )
    assert good.replies[0].successful
    assert ClientSubscribed(client_id, "/workspace/v3/voice") in good.events


def test_unknown_meta_channel_is_404() -> None:
    core = make_core()
    client_id = handshake(core)
    exchange = send(core, {"channel": "/meta/frobnicate", "clientId": client_id})
    assert exchange.replies[0].error == "404:/meta/frobnicate:Unknown meta channel"


def test_client_publish_to_broadcast_channel_is_denied_by_default() -> None:
    core = make_core()
    client_id = handshake(core)
    exchange = send(
        core, {"channel": "/workspace/v3/voice", "id": "p", "clientId": client_id, "data": {}}
    )
    assert (
        exchange.replies[0].error
        == "403:/workspace/v3/voice:Publishing to this channel is not allowed"
    )


def test_publish_to_service_channel_reaches_the_application() -> None:
    core = make_core()
    client_id = handshake(core)
    exchange = send(
        core, {"channel": "/service/echo", "id": "p", "clientId": client_id, "data": {"a": 1}}
    )
    assert exchange.replies[0].successful
    assert exchange.events == (ClientPublished(client_id, "/service/echo", {"a": 1}),)


def test_broadcast_reaches_only_subscribers_of_matching_patterns() -> None:
    core = make_core(allow_client_publish=True)
    alice, bob = handshake(core), handshake(core)
    send(core, {"channel": "/meta/subscribe", "clientId": alice, "subscription": "/chat/**"})
    assert core.broadcast("/chat/room/1", {"text": "hi"}) == (alice,)
    assert [m.data for m in core.drain(alice)] == [{"text": "hi"}]
    assert core.drain(bob) == ()


def test_bad_input_from_one_client_leaves_the_other_clients_unharmed() -> None:
    core = make_core()
    good = handshake(core)
    hold = send(
        core, {"channel": "/meta/connect", "clientId": good, "connectionType": "websocket"}
    ).hold
    assert hold is not None
    for payload in (b"garbage", b"{}", b"[1,2]", b'[{"channel": 5}]', b'[{"channel": "/meta/x"}]'):
        core.receive(payload, now=1.0)
    assert core.has_client(good) and not core.is_ready(hold, 1.0)
    core.publish(good, "/x", {"still": "here"})
    assert core.release(hold, 1.0)[0].data == {"still": "here"}


def test_client_without_connect_expires_after_max_interval() -> None:
    core = make_core(max_interval=10.0)
    client_id = handshake(core, now=0.0)
    assert core.expire(10.0) == ()
    assert core.expire(10.5) == (ClientRemoved(client_id, None, RemovalReason.EXPIRED),)
    exchange = send(
        core, {"channel": "/meta/connect", "clientId": client_id, "connectionType": "websocket"}
    )
    assert exchange.replies[0].error == "402::Unknown client"


def test_client_with_a_held_connect_never_expires_and_abandon_starts_the_clock() -> None:
    core = make_core(max_interval=10.0, timeout=1000.0)
    client_id = handshake(core)
    hold = send(
        core,
        {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"},
        now=1.0,
    ).hold
    assert hold is not None
    assert core.expire(500.0) == ()
    core.abandon(hold, 500.0)
    assert core.expire(509.0) == ()
    assert len(core.expire(511.0)) == 1


def test_disconnect_removes_the_client_and_answers_its_held_connect() -> None:
    core = make_core()
    client_id = handshake(core)
    hold = send(
        core, {"channel": "/meta/connect", "clientId": client_id, "connectionType": "websocket"}
    ).hold
    assert hold is not None
    exchange = send(core, {"channel": "/meta/disconnect", "id": "d", "clientId": client_id})
    assert exchange.replies[0].successful and exchange.replies[0].id == "d"
    assert exchange.events == (ClientRemoved(client_id, None, RemovalReason.DISCONNECTED),)
    assert core.is_ready(hold, 0.0)
    final = core.release(hold, 0.0)[0]
    assert final.advice is not None and final.advice.reconnect is Reconnect.NONE


def test_full_queue_drops_the_oldest_message() -> None:
    core = make_core(max_queue=2)
    client_id = handshake(core)
    for n in range(3):
        core.publish(client_id, "/x", {"n": n})
    assert [m.data["n"] for m in core.drain(client_id)] == [1, 2]
    assert core.dropped(client_id) == 1


def test_publishing_on_a_meta_channel_is_local_misuse() -> None:
    core = make_core()
    client_id = handshake(core)
    with pytest.raises(UsageError):
        core.publish(client_id, "/meta/connect", {"x": 1})


def test_closing_releases_holds_and_refuses_handshakes() -> None:
    core = make_core()
    client_id = handshake(core)
    hold = send(
        core, {"channel": "/meta/connect", "clientId": client_id, "connectionType": "websocket"}
    ).hold
    assert hold is not None
    core.close()
    assert core.is_ready(hold, 0.0)
    refused = send(
        core,
        {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"]},
    )
    assert refused.replies[0].error == "403::Server is shutting down"
