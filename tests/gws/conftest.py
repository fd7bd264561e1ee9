"""A GWS node in-process against a real SIP node (sip1), through a cuttable T-Lib relay, and a
desktop that speaks plain HTTP + raw Bayeux (independent of the project's CometD code)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog, flush_all
from emulator.gws.config import GwsConfig, GwsTimers, UserDirectory
from emulator.gws.server import GwsServer
from emulator.sipcluster.config import NodeConfig, Timers
from emulator.sipcluster.service import NodeService
from tests.sipcluster.conftest import FAST_TIMERS, Relay
from tests.support import LOOPBACK, eventually, free_port

FAST_GWS_TIMERS = GwsTimers(
    session_timeout=0.8,
    addp_interval=0.2,
    addp_timeout=0.4,
    reconnect_min=0.05,
    reconnect_max=0.2,
    connect_timeout=2.0,
    cometd_timeout=1.0,
    cometd_max_interval=0.5,
)


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    flush_all()
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def log_events(lines: Iterable[dict[str, Any]], event: str, **fields: Any) -> list[dict[str, Any]]:
    """The log ``lines`` of ``event`` with these field values."""
    return [
        line
        for line in lines
        if line["event"] == event and all(line.get(k) == v for k, v in fields.items())
    ]


def sip1(timers: Timers = FAST_TIMERS, tc_port: int = 0) -> tuple[NodeService, io.StringIO]:
    """DC1's sip1 on loopback (not started; every port 0 but ``tc_port``) and its log's stream."""
    log = io.StringIO()
    node = NodeService(
        NodeConfig(
            name="sip1",
            dc="DC1",
            tlib=Endpoint(LOOPBACK, 0),
            tc=Endpoint(LOOPBACK, tc_port),
            control=Endpoint(LOOPBACK, 0),
            timers=timers,
        ),
        JsonLog("sip1", "DC1", log),
    )
    return node, log


def tlib_of(sip: NodeService) -> Endpoint:
    """Where a started sip1 takes T-Lib clients."""
    host, port = sip.endpoints["tlib"].rsplit(":", 1)
    return Endpoint(host, int(port))


def gws_node(
    name: str,
    sip: Endpoint,
    timers: GwsTimers = FAST_GWS_TIMERS,
    users: tuple[str, ...] = (),
    **options: Any,
) -> tuple[GwsServer, io.StringIO]:
    """DC1's GWS node ``name`` on loopback port 0 (not started), a T-Lib client of sip1 at
    ``sip``, and its log's stream; ``options`` are further ``GwsConfig`` fields."""
    log = io.StringIO()
    config = GwsConfig(
        name=name,
        dc="DC1",
        sip_name="sip1",
        sip_host=sip.host,
        sip_port=sip.port,
        users=UserDirectory.from_options(None, users),
        timers=timers,
        **options,
    )
    return GwsServer(config, http=Endpoint(LOOPBACK, 0), log=JsonLog(name, "DC1", log)), log


async def refuse_link(relay: Relay) -> None:
    """Cut the T-Lib link so that GWS's reconnects are refused, not accepted and then reset
    (an accepted connect would bring the link up for an instant: a flapping link)."""
    relay.cut("reset")
    if relay.server is not None:
        relay.server.close()
        await relay.server.wait_closed()


async def restore_link(relay: Relay) -> None:
    relay.heal()
    await relay.start(relay.port)


@dataclass
class Lab:
    sip: NodeService
    relay: Relay
    gws: GwsServer
    gws_log: io.StringIO
    sip_log: io.StringIO
    desktops: list[Desktop] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.gws.http_endpoint}"

    def sip_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.sip.node.state()
        return state

    def gws_events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return log_events(log_lines(self.gws_log), event, **fields)

    def sip_saw(self, message: str, dn: str) -> bool:
        """Whether sip1 logged receiving ``message`` for ``dn`` (its T-Lib request log)."""
        for line in log_lines(self.sip_log):
            if line.get("message") == message and dn in (line.get("DN"), line.get("ThisDN")):
                return True
        return False

    async def desktop(self) -> Desktop:
        desk = Desktop(self.base_url)
        self.desktops.append(desk)
        return desk

    async def logged_on(self, user: str = "agent1") -> Desktop:
        """A desktop through token, initialize-workspace and CometD subscriptions."""
        desk = await self.desktop()
        token = await desk.token(user, user)
        await desk.initialize(token)
        await desk.cometd_start()
        await desk.expect(lambda m: m["channel"] == "/workspace/v3/initialization")
        return desk

    async def voice_on(self, user: str, dn: str) -> Desktop:
        """A desktop logged on with its voice channel activated on ``dn`` (LoggedIn seen)."""
        desk = await self.logged_on(user)
        await desk.call("POST", "/workspace/v3/activate-channels", {"data": {"dn": dn}})
        await desk.expect_voice("DnStateChanged", agentState="LoggedIn")
        return desk

    async def answered_call(self, desk: Desktop, caller: str, dn: str) -> str:
        """A customer call from ``caller`` to ``dn`` on sip1, answered from ``desk``: its ConnID,
        once the desktop has seen it Established."""
        conn_id = self.sip.node.inbound_call(caller, dn)
        await desk.expect_voice("CallStateChanged", id=conn_id, state="Ringing")
        await desk.call("POST", f"/workspace/v3/voice/calls/{conn_id}/answer")
        await desk.expect_voice("CallStateChanged", id=conn_id, state="Established")
        return conn_id


class Desktop:
    """A Workspace API user: aiohttp with a cookie jar, and a raw Bayeux long-polling client."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.client_id: str | None = None
        self._poller: asyncio.Task[None] | None = None
        self._ids = 0

    async def token(self, username: str, password: str) -> str:
        async with self.http.post(
            f"{self.base_url}/auth/v3/oauth/token",
            data={"grant_type": "password", "username": username, "password": password},
            headers={"Authorization": "Basic " + base64.b64encode(b"external_api:secret").decode()},
        ) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        token: str = body["access_token"]
        return token

    async def initialize(self, token: str) -> dict[str, Any]:
        status, body = await self.call(
            "POST",
            "/workspace/v3/initialize-workspace",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert status == 200, body
        return body

    async def call(
        self, method: str, path: str, body: Any = None, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        if body is not None:
            kwargs["json"] = body
        async with self.http.request(method, f"{self.base_url}{path}", **kwargs) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else {}

    # --- raw Bayeux (long-polling) -------------------------------------------------------------

    async def bayeux(self, *messages: dict[str, Any], suffix: str = "") -> list[dict[str, Any]]:
        for message in messages:
            self._ids += 1
            message.setdefault("id", str(self._ids))
            if self.client_id and message.get("channel") != "/meta/handshake":
                message.setdefault("clientId", self.client_id)
        async with self.http.post(
            f"{self.base_url}/workspace/v3/notifications{suffix}", json=list(messages)
        ) as response:
            replies: list[dict[str, Any]] = await response.json()
        return replies

    async def handshake(self) -> dict[str, Any]:
        replies = await self.bayeux(
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            },
            suffix="/handshake",
        )
        reply = replies[0]
        if reply.get("successful"):
            self.client_id = reply["clientId"]
        return reply

    async def cometd_start(
        self, channels: tuple[str, ...] = ("/workspace/v3/initialization", "/workspace/v3/voice")
    ) -> None:
        reply = await self.handshake()
        assert reply["successful"], reply
        self._route(
            await self.bayeux(
                {
                    "channel": "/meta/connect",
                    "connectionType": "long-polling",
                    "advice": {"timeout": 0},
                }
            )
        )
        for channel in channels:
            # As the cometd JS client does: non-connect messages go to "<url>/".
            replies = await self.bayeux(
                {"channel": "/meta/subscribe", "subscription": channel}, suffix="/"
            )
            assert any(r.get("successful") for r in replies if r["channel"] == "/meta/subscribe")
            self._route(replies)
        self._poller = asyncio.create_task(self._poll())

    def _route(self, replies: list[dict[str, Any]]) -> None:
        for message in replies:
            if not message["channel"].startswith("/meta/"):
                self.seen.append(message)
                self.messages.put_nowait(message)

    async def _poll(self) -> None:
        while True:
            replies = await self.bayeux(
                {"channel": "/meta/connect", "connectionType": "long-polling"}
            )
            self._route(replies)
            connect = next(r for r in replies if r["channel"] == "/meta/connect")
            if not connect.get("successful"):
                return

    def stop_polling(self) -> None:
        """The desktop loses its server (as after a NIC failure): no more CometD requests."""
        if self._poller is not None:
            self._poller.cancel()

    async def expect(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 8.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.messages.get()
                if predicate(message):
                    return message

    async def expect_voice(
        self, message_type: str, timeout: float = 8.0, **fields: Any
    ) -> dict[str, Any]:
        def matches(message: dict[str, Any]) -> bool:
            data = message.get("data", {})
            if (
                message["channel"] != "/workspace/v3/voice"
                or data.get("messageType") != message_type
            ):
                return False
            inner = data.get("dn") or data.get("call") or data.get("error") or {}
            return all(inner.get(k) == v for k, v in fields.items())

        return await self.expect(matches, timeout)

    async def close(self) -> None:
        self.stop_polling()
        if self._poller is not None:
            await asyncio.gather(self._poller, return_exceptions=True)
        await self.http.close()


@pytest.fixture
async def lab_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[Lab] = []

    async def make(
        timers: GwsTimers = FAST_GWS_TIMERS,
        users: tuple[str, ...] = (),
        unregister_on_timeout: bool = True,
    ) -> Lab:
        sip, sip_log = sip1(tc_port=free_port())
        await sip.start()
        relay = Relay(tlib_of(sip))
        await relay.start()
        gws, gws_log = gws_node(
            "gws1",
            Endpoint(LOOPBACK, relay.port),
            timers,
            users,
            unregister_on_timeout=unregister_on_timeout,
        )
        await gws.start()
        lab = Lab(sip, relay, gws, gws_log, sip_log)
        made.append(lab)
        await eventually(lambda: gws.node.link.up, timeout=8)
        return lab

    yield make
    for lab in made:
        for desk in lab.desktops:
            with contextlib.suppress(Exception):
                await desk.close()
        await lab.gws.close()
        await lab.relay.close()
        await lab.sip.stop()
