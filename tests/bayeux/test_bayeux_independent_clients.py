"""The endpoint spoken to by independent clients: raw JSON over aiohttp POST and `websockets`.

None of the project's client code is used here, so these tests pin the wire format the public
CometD clients (and genesys-workspace-client-js) depend on, and the precise errors bad input gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import websockets
from bayeux_support import FAST, serve

from emulator.bayeux.client import BayeuxClient
from emulator.bayeux.client_core import ClientState
from emulator.bayeux.messages import Message
from tests.support import eventually

HANDSHAKE = {
    "channel": "/meta/handshake",
    "id": "1",
    "version": "1.0",
    "minimumVersion": "1.0",
    "supportedConnectionTypes": ["websocket", "long-polling", "callback-polling"],
    "advice": {"timeout": 60000, "interval": 0},
}


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json;charset=UTF-8"}
    async with session.post(url, data=data, headers=headers) as response:
        return response.status, await response.json()


async def test_raw_long_polling_client_gets_cometd_shaped_replies_and_events() -> None:
    async with serve(FAST) as served, aiohttp.ClientSession() as session:
        status, replies = await post(session, served.url + "/handshake", [HANDSHAKE])
        assert status == 200
        (handshake,) = replies
        assert handshake["successful"] is True and handshake["id"] == "1"
        assert handshake["supportedConnectionTypes"] == ["websocket", "long-polling"]
        client_id = handshake["clientId"]
        connect = {
            "channel": "/meta/connect",
            "clientId": client_id,
            "connectionType": "long-polling",
        }
        status, replies = await post(
            session, served.url + "/connect", [{**connect, "id": "2", "advice": {"timeout": 0}}]
        )
        assert replies == [
            {
                "channel": "/meta/connect",
                "id": "2",
                "clientId": client_id,
                "successful": True,
                "advice": {"reconnect": "retry", "interval": 0, "timeout": 2000},
            }
        ]
        subscribe = {
            "channel": "/meta/subscribe",
            "id": "3",
            "clientId": client_id,
            "subscription": "/workspace/v3/voice",
        }
        # CometD JS posts non-handshake/connect/disconnect messages to "<url>/".
        status, replies = await post(session, served.url + "/", [subscribe])
        assert replies[0]["successful"] is True
        assert replies[0]["subscription"] == "/workspace/v3/voice"
        held = asyncio.create_task(post(session, served.url + "/connect", [{**connect, "id": "4"}]))
        await eventually(lambda: served.endpoint.core.subscriptions(client_id) != frozenset())
        await asyncio.sleep(0.05)
        assert not held.done()  # the connect is held by the server
        served.endpoint.broadcast("/workspace/v3/voice", {"messageType": "DnStateChanged"})
        status, replies = await asyncio.wait_for(held, 5)
        assert replies[0] == {
            "channel": "/workspace/v3/voice",
            "data": {"messageType": "DnStateChanged"},
        }
        assert replies[1]["channel"] == "/meta/connect" and replies[1]["id"] == "4"


async def test_raw_websocket_client_gets_events_pushed_while_connect_is_held() -> None:
    async with serve(FAST) as served:
        ws_url = served.url.replace("http", "ws", 1)
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps([HANDSHAKE]))
            (handshake,) = json.loads(await ws.recv())
            client_id = handshake["clientId"]
            await ws.send(
                json.dumps(
                    [
                        {
                            "channel": "/meta/connect",
                            "id": "2",
                            "clientId": client_id,
                            "connectionType": "websocket",
                        },
                        {
                            "channel": "/meta/subscribe",
                            "id": "3",
                            "clientId": client_id,
                            "subscription": "/workspace/v3/voice",
                        },
                    ]
                )
            )
            (subscribed,) = json.loads(await ws.recv())
            assert subscribed["channel"] == "/meta/subscribe" and subscribed["successful"]
            served.endpoint.publish(client_id, "/workspace/v3/voice", {"messageType": "EventError"})
            (event,) = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert event == {
                "channel": "/workspace/v3/voice",
                "data": {"messageType": "EventError"},
            }
            # The held connect is answered when its timeout (2 s) passes.
            (connect_reply,) = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert connect_reply["id"] == "2" and connect_reply["successful"] is True


async def test_bad_long_polling_input_gets_precise_errors_and_spares_other_clients() -> None:
    async with (
        serve(FAST, max_payload=4096) as served,
        aiohttp.ClientSession() as session,
        BayeuxClient(served.url, connection_types=("websocket",), max_network_delay=2) as bystander,
    ):
        received: list[Message] = []
        bystander.events.on("message", received.append)
        await bystander.handshake()
        await bystander.wait_for_state(ClientState.CONNECTED, timeout=5)

        status, replies = await post(session, served.url, b"{not json")
        assert status == 400
        assert replies[0]["error"].startswith("400::payload is not valid JSON")
        status, replies = await post(session, served.url, {"channel": 7})
        assert (status, replies[0]["error"]) == (200, "400::channel must be a string")
        status, replies = await post(session, served.url, b'"a string"')
        assert status == 400
        assert replies[0]["error"] == "400::payload must be a JSON array of Bayeux message objects"
        status, replies = await post(session, served.url, [{"id": "x"}])
        assert replies == [
            {
                "channel": "/meta/unsuccessful",
                "id": "x",
                "successful": False,
                "error": "400::message has no channel",
            }
        ]
        status, replies = await post(
            session,
            served.url + "/connect",
            [
                {
                    "channel": "/meta/connect",
                    "id": "9",
                    "clientId": "forged",
                    "connectionType": "long-polling",
                }
            ],
        )
        assert replies[0]["error"] == "402::Unknown client"
        assert replies[0]["advice"]["reconnect"] == "handshake"
        status, replies = await post(
            session,
            served.url,
            [
                {
                    "channel": "/meta/subscribe",
                    "clientId": bystander.client_id,
                    "subscription": "/meta/connect",
                }
            ],
        )
        assert replies[0]["error"] == "403:/meta/connect:Cannot subscribe to meta channels"
        status, replies = await post(session, served.url, b"x" * 8192)
        assert status == 413

        assert bystander.client_id is not None
        served.endpoint.publish(bystander.client_id, "/still", {"fine": True})
        await eventually(lambda: bool(received))
        assert bystander.state is ClientState.CONNECTED


async def test_bad_websocket_frames_get_errors_and_the_socket_stays_usable() -> None:
    async with serve(FAST) as served:
        ws_url = served.url.replace("http", "ws", 1)
        async with websockets.connect(ws_url) as ws:
            for frame, error in [
                ("not json", "400::payload is not valid JSON"),
                ("{}", "400::message has no channel"),
                (
                    json.dumps([{"channel": "/meta/subscribe", "clientId": "nobody"}]),
                    "402::Unknown client",
                ),
                (b"\x00\x01", "400::binary frames are not Bayeux"),
            ]:
                await ws.send(frame)
                (reply,) = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply["successful"] is False
                assert reply["error"].startswith(error)
            await ws.send(json.dumps([HANDSHAKE]))
            (handshake,) = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert handshake["successful"] is True


async def test_get_without_upgrade_is_a_clear_400() -> None:
    async with (
        serve(FAST) as served,
        aiohttp.ClientSession() as session,
        session.get(served.url) as response,
    ):
        assert response.status == 400
        assert "POST for long-polling" in await response.text()


async def test_form_encoded_message_parameter_is_accepted() -> None:
    async with serve(FAST) as served, aiohttp.ClientSession() as session:
        async with session.post(served.url, data={"message": json.dumps([HANDSHAKE])}) as response:
            replies = await response.json()
        assert replies[0]["successful"] is True


async def test_client_that_moves_to_a_new_websocket_gets_its_events_there_only() -> None:
    """The server cannot see that a socket is black-holed; a connect on a new one says so."""
    async with serve(FAST) as served:
        ws_url = served.url.replace("http", "ws", 1)
        async with websockets.connect(ws_url) as old, websockets.connect(ws_url) as new:
            await old.send(json.dumps([HANDSHAKE]))
            (handshake,) = json.loads(await old.recv())
            client_id = handshake["clientId"]
            for ws, first_id in ((old, 2), (new, 4)):
                # A connect to hold, and a subscribe whose reply shows the frame was processed.
                batch = [
                    {
                        "channel": "/meta/connect",
                        "id": str(first_id),
                        "clientId": client_id,
                        "connectionType": "websocket",
                    },
                    {
                        "channel": "/meta/subscribe",
                        "id": str(first_id + 1),
                        "clientId": client_id,
                        "subscription": "/workspace/v3/voice",
                    },
                ]
                await ws.send(json.dumps(batch))
                (subscribed,) = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert subscribed["id"] == str(first_id + 1) and subscribed["successful"]
            for n in range(5):
                served.endpoint.publish(client_id, "/workspace/v3/voice", {"n": n})
                (event,) = json.loads(await asyncio.wait_for(new.recv(), 5))
                assert event["data"] == {"n": n}
            with contextlib.suppress(TimeoutError):
                stray = await asyncio.wait_for(old.recv(), 0.3)
                # At most its superseded connect is answered there, never an event.
                assert all(m["channel"] == "/meta/connect" for m in json.loads(stray)), stray
