"""The aiohttp CometD endpoint and the asyncio client on loopback, over both transports."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest
from bayeux_support import FAST, PATH, CuttablePath, serve

from emulator.bayeux.client import BayeuxClient, HandshakeRefused, RequestFailed
from emulator.bayeux.client_core import ClientState
from emulator.bayeux.messages import Message, Reconnect
from emulator.bayeux.server_model import (
    Accept,
    ClientRemoved,
    Credentials,
    Deny,
    RemovalReason,
    ServerConfig,
)
from tests.support import eventually

TRANSPORTS = ["websocket", "long-polling"]


def fast_client(url: str, transport: str, **options: object) -> BayeuxClient:
    settings: dict[str, object] = {
        "max_network_delay": 2.0,
        "backoff_increment": 0.05,
        "max_backoff": 0.2,
        **options,
    }
    return BayeuxClient(url, connection_types=(transport,), **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_client_receives_events_published_to_it(transport: str) -> None:
    async with serve(FAST) as served, fast_client(served.url, transport) as client:
        received: list[Message] = []
        client.events.on("message", received.append)
        reply = await client.handshake()
        assert reply.successful and client.connection_type == transport
        await client.subscribe("/workspace/v3/voice")
        await client.wait_for_state(ClientState.CONNECTED, timeout=5)
        client_id = client.client_id
        assert client_id is not None
        assert served.endpoint.publish(client_id, "/workspace/v3/voice", {"n": 1})
        assert served.endpoint.broadcast("/workspace/v3/voice", {"n": 2}) == 1
        await eventually(lambda: len(received) == 2)
        assert [m.data for m in received] == [{"n": 1}, {"n": 2}]
        assert [name for name, _ in served.events][:2] == ["client_added", "subscribed"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_held_connect_survives_idle_periods_longer_than_the_timeout(transport: str) -> None:
    config = dataclasses.replace(FAST, timeout=0.2)
    async with serve(config) as served, fast_client(served.url, transport) as client:
        received: list[Message] = []
        client.events.on("message", received.append)
        await client.handshake()
        await client.wait_for_state(ClientState.CONNECTED, timeout=5)
        await asyncio.sleep(0.7)  # several held connects time out and are renewed
        assert client.state is ClientState.CONNECTED
        assert client.client_id is not None
        served.endpoint.publish(client.client_id, "/x", {"late": True})
        await eventually(lambda: bool(received))


async def test_client_disconnect_removes_it_on_the_server() -> None:
    async with serve(FAST) as served:
        client = fast_client(served.url, "websocket")
        await client.handshake()
        await client.disconnect()
        await client.close()
        await eventually(lambda: served.endpoint.client_ids() == ())
        removed = [event for name, event in served.events if name == "client_removed"]
        assert [event.reason for event in removed] == [RemovalReason.DISCONNECTED]


async def test_vanished_client_expires_after_max_interval() -> None:
    async with serve(FAST) as served:
        client = fast_client(served.url, "long-polling")
        await client.handshake()
        await client.wait_for_state(ClientState.CONNECTED, timeout=5)
        await client.close()  # no /meta/disconnect: a closed browser tab
        await eventually(lambda: any(name == "client_removed" for name, _ in served.events))
        removed = [event for name, event in served.events if name == "client_removed"]
        assert isinstance(removed[0], ClientRemoved)
        assert removed[0].reason is RemovalReason.EXPIRED


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_client_rehandshakes_and_resubscribes_after_the_server_forgot_it(
    transport: str,
) -> None:
    async with serve(FAST) as first:
        port = first.port
        client = fast_client(first.url, transport)
        received: list[Message] = []
        client.events.on("message", received.append)
        await client.handshake()
        await client.subscribe("/workspace/v3/voice")
        await client.wait_for_state(ClientState.CONNECTED, timeout=5)
        old_id = client.client_id
    # A new server process on the same port knows nothing of the old client id.
    async with serve(FAST, port=port) as second:
        try:
            await eventually(lambda: client.client_id not in (None, old_id), timeout=10)
            await client.wait_for_state(ClientState.CONNECTED, timeout=10)
            await eventually(
                lambda: bool(second.endpoint.core.subscriptions(client.client_id or ""))
            )
            second.endpoint.broadcast("/workspace/v3/voice", {"after": "restart"})
            await eventually(lambda: bool(received))
            assert received[-1].data == {"after": "restart"}
        finally:
            await client.close()


async def test_handshake_denied_by_authorizer_raises_and_stops() -> None:
    def authorize(message: Message, credentials: Credentials) -> Accept | Deny:
        if credentials.cookies.get("WORKSPACE_SESSIONID") == "s1":
            return Accept("agent1")
        return Deny("missing session cookie", Reconnect.NONE)

    async with serve(FAST, authorize=authorize) as served:
        async with fast_client(served.url, "websocket") as client:
            with pytest.raises(HandshakeRefused, match="403::missing session cookie"):
                await client.handshake()
            assert client.state is ClientState.DISCONNECTED
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            jar.update_cookies({"WORKSPACE_SESSIONID": "s1"})
            async with fast_client(served.url, "websocket", session=session) as client:
                await client.handshake()
                assert client.client_id is not None
                assert served.endpoint.core.principal(client.client_id) == "agent1"


async def test_subscribe_refused_by_the_server_raises_request_failed() -> None:
    config = dataclasses.replace(FAST, channels=("/workspace/v3/**",))
    async with serve(config) as served, fast_client(served.url, "long-polling") as client:
        await client.handshake()
        with pytest.raises(RequestFailed, match="404:/elsewhere:Unknown channel"):
            await client.subscribe("/elsewhere")
        assert client.core.subscriptions == set()


async def test_client_falls_back_to_long_polling_when_websocket_is_not_offered() -> None:
    config = dataclasses.replace(FAST, connection_types=("long-polling",))
    async with serve(config) as served:
        client = BayeuxClient(served.url, max_network_delay=2.0, backoff_increment=0.05)
        async with client:
            await client.handshake()
            assert client.connection_type == "long-polling"
            await client.wait_for_state(ClientState.CONNECTED, timeout=5)


async def test_server_shutdown_sends_the_client_to_reconnecting() -> None:
    states: list[ClientState] = []
    async with serve(FAST) as served:
        client = fast_client(served.url, "websocket")
        client.events.on("state", lambda new, old: states.append(new))
        await client.handshake()
        await client.wait_for_state(ClientState.CONNECTED, timeout=5)
    try:
        await client.wait_for_state(ClientState.CONNECTING, ClientState.UNCONNECTED, timeout=5)
    finally:
        await client.close()
    assert states[:2] == [ClientState.HANDSHAKING, ClientState.CONNECTING]


async def test_many_clients_each_get_only_their_own_events() -> None:
    config = ServerConfig(timeout=2.0, max_interval=2.0)
    async with serve(config) as served:
        clients = [fast_client(served.url, TRANSPORTS[i % 2]) for i in range(6)]
        inboxes: list[list[Message]] = [[] for _ in clients]
        try:
            for client, inbox in zip(clients, inboxes, strict=True):
                client.events.on("message", inbox.append)
                await client.handshake()
            for index, client in enumerate(clients):
                assert client.client_id is not None
                served.endpoint.publish(client.client_id, "/mine", {"to": index})
            await eventually(lambda: all(inboxes))
            assert [[m.data["to"] for m in inbox] for inbox in inboxes] == [[i] for i in range(6)]
        finally:
            for client in clients:
                await client.close()


async def test_websocket_that_stops_answering_is_dropped_and_a_new_one_recovers() -> None:
    """A black-holed WebSocket never errors: the client must give up on it, not wait forever."""
    config = ServerConfig(timeout=0.5, max_interval=5.0)
    async with serve(config) as served, CuttablePath(served.port) as path:
        url = f"http://127.0.0.1:{path.listen_port}{PATH}"
        async with fast_client(url, "websocket", max_network_delay=0.5) as client:
            received: list[Message] = []
            client.events.on("message", received.append)
            await client.handshake()
            await client.subscribe("/workspace/v3/voice")
            await client.wait_for_state(ClientState.CONNECTED, timeout=5)
            client_id = client.client_id
            assert client_id is not None and path.accepted == 1

            path.black_hole_current()
            # The held connect's reply never comes: the socket is dropped (closed by the client,
            # aborted when the close frame is not answered either) and a new one is opened.
            await eventually(lambda: path.accepted == 2 and path.closed_by_client == 1)
            await eventually(lambda: len(served.endpoint.core.subscriptions(client_id)) == 1)
            served.endpoint.publish(client_id, "/workspace/v3/voice", {"after": "black hole"})
            await eventually(lambda: bool(received), timeout=5)
            assert client.client_id == client_id  # same client, only the socket changed
            assert [m.data for m in received] == [{"after": "black hole"}]
            assert client.state is ClientState.CONNECTED
