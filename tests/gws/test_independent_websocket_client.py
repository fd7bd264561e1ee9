"""An independent CometD client — Bayeux JSON written by hand over the ``websockets`` library, none
of the project's client code — reaches GWS through the DC's sticky proxy over the WebSocket
transport and receives voice events (DESIGN §2.3; STYLE §9)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import websockets

from tests.gws.dc_support import datacentre

NOTIFICATIONS = "/workspace/v3/notifications"
VOICE = "/workspace/v3/voice"


class RawWebSocketCometd:
    """Handshake, connect after every connect reply (as CometD does), subscribe; queue events."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.client_id = ""
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    async def send(self, *messages: dict[str, Any]) -> None:
        for message in messages:
            message["id"] = str(next(self._ids))
            if self.client_id:
                message["clientId"] = self.client_id
        await self.ws.send(json.dumps(list(messages)))

    async def handshake(self) -> dict[str, Any]:
        await self.send(
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "minimumVersion": "1.0",
                "supportedConnectionTypes": ["websocket"],
                "advice": {"timeout": 60000, "interval": 0},
            }
        )
        (reply,) = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
        assert reply["successful"], reply
        self.client_id = reply["clientId"]
        self._reader = asyncio.create_task(self._read())
        await self.send(
            {"channel": "/meta/connect", "connectionType": "websocket", "advice": {"timeout": 0}}
        )
        return dict(reply)

    async def subscribe(self, channel: str) -> None:
        await self.send({"channel": "/meta/subscribe", "subscription": channel})
        reply = await self.reply("/meta/subscribe")
        assert reply["successful"] and reply["subscription"] == channel, reply

    async def reply(self, channel: str) -> dict[str, Any]:
        while True:
            reply = await asyncio.wait_for(self.replies.get(), 5)
            if reply["channel"] == channel:
                return reply

    async def _read(self) -> None:
        async for frame in self.ws:
            for message in json.loads(frame):
                if message["channel"] == "/meta/connect":
                    assert message["successful"], message
                    await self.send({"channel": "/meta/connect", "connectionType": "websocket"})
                elif message["channel"].startswith("/meta/"):
                    self.replies.put_nowait(message)
                else:
                    self.events.put_nowait(message)

    async def expect(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(8):
            while True:
                event = await self.events.get()
                if predicate(event):
                    return event

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await self._reader


def voice(message_type: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    def matches(event: dict[str, Any]) -> bool:
        data = event.get("data", {})
        if event["channel"] != VOICE or data.get("messageType") != message_type:
            return False
        inner = data.get("dn") or data.get("call") or {}
        return all(inner.get(key) == value for key, value in fields.items())

    return matches


async def test_raw_websocket_cometd_client_through_the_proxy_receives_voice_events() -> None:
    async with (
        datacentre() as dc,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        basic = base64.b64encode(b"external_api_client:secret").decode()
        async with http.post(
            f"{dc.base_url}/auth/v3/oauth/token",
            data={"grant_type": "password", "username": "agent1", "password": "agent1"},
            headers={"Authorization": f"Basic {basic}"},
        ) as response:
            token = (await response.json())["access_token"]
        async with http.post(
            f"{dc.base_url}/workspace/v3/initialize-workspace",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200
        # The session cookie and the proxy's stickiness cookie, as a browser would send them.
        cookies = "; ".join(f"{c.key}={c.value}" for c in http.cookie_jar)
        assert "WORKSPACE_SESSIONID=" in cookies and "DRLAB_UPSTREAM=" in cookies
        url = f"ws://{dc.proxy.endpoint}{NOTIFICATIONS}"
        async with websockets.connect(url, additional_headers={"Cookie": cookies}) as ws:
            cometd = RawWebSocketCometd(ws)
            try:
                handshake = await cometd.handshake()
                assert "websocket" in handshake["supportedConnectionTypes"]
                await cometd.subscribe("/workspace/v3/initialization")
                await cometd.subscribe(VOICE)
                init = await cometd.expect(lambda e: e["channel"].endswith("/initialization"))
                assert init["data"]["state"] == "Complete"

                async with http.post(
                    f"{dc.base_url}/workspace/v3/activate-channels",
                    json={"data": {"agentId": "agent1", "dn": "7001"}},
                ) as response:
                    assert response.status == 200
                await cometd.expect(voice("DnStateChanged", number="7001", agentState="LoggedIn"))

                conn_id = await dc.inbound_call("7001")
                ringing = await cometd.expect(voice("CallStateChanged", id=conn_id))
                call = ringing["data"]["call"]
                assert (call["state"], call["connId"]) == ("Ringing", conn_id)
                assert "answer" in call["capabilities"]
            finally:
                await cometd.close()
