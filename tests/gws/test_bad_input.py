"""Bad input gets a precise error and harms neither the session nor any other session."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from emulator.gws.auth import TokenAuthority
from emulator.gws.config import UserDirectory

VOICE = "/workspace/v3/voice"


async def test_token_request_errors_follow_rfc_6749(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.desktop()
    url = f"{lab.base_url}/auth/v3/oauth/token"
    cases = [
        ({"grant_type": "password", "username": "agent1", "password": "nope"}, "invalid_grant"),
        ({"grant_type": "password", "username": "ghost", "password": "x"}, "invalid_grant"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"username": "agent1", "password": "agent1"}, "invalid_request"),
    ]
    for form, error in cases:
        async with desk.http.post(url, data=form) as response:
            assert response.status == 400
            assert (await response.json())["error"] == error
    async with desk.http.post(
        url,
        data={"grant_type": "password", "username": "agent1", "password": "agent1"},
        headers={"Authorization": "Basic !!!notbase64"},
    ) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"


async def test_forged_expired_or_missing_tokens_are_refused(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.desktop()
    token = await desk.token("agent1", "agent1")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    other_lab = TokenAuthority(UserDirectory.from_options(None, ()), "another-secret", 60)
    foreign = other_lab.grant(
        {"grant_type": "password", "username": "agent1", "password": "agent1"}, None, time.time()
    )["access_token"]
    expired = TokenAuthority(UserDirectory.from_options(None, ()), "drlab-lab-auth-secret", 1)
    stale = expired.grant(
        {"grant_type": "password", "username": "agent1", "password": "agent1"},
        None,
        time.time() - 10,
    )["access_token"]
    for header, fragment in (
        (None, "missing Authorization"),
        ("Basic abc", "Bearer"),
        ("Bearer garbage", "malformed"),
        (f"Bearer {forged}", "signature"),
        (f"Bearer {foreign}", "signature"),
        (f"Bearer {stale}", "expired"),
    ):
        headers = {"Authorization": header} if header else {}
        status, body = await desk.call(
            "POST", "/workspace/v3/initialize-workspace", headers=headers
        )
        assert status == 401, header
        assert fragment in body["status"]["message"], (header, body)


async def test_requests_without_a_live_session_are_refused(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.desktop()
    status, body = await desk.call("POST", "/workspace/v3/voice/ready")
    assert status == 401
    assert "missing WORKSPACE_SESSIONID" in body["status"]["message"]
    status, body = await desk.call(
        "GET", "/workspace/v3/current-session", headers={"Cookie": "WORKSPACE_SESSIONID=made-up"}
    )
    assert status == 401
    assert "does not name a live session" in body["status"]["message"]
    reply = await desk.handshake()
    assert reply["successful"] is False
    assert reply["error"].startswith("403::")
    assert "WORKSPACE_SESSIONID" in reply["error"]


async def test_malformed_bodies_unknown_calls_and_paths_get_precise_errors(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    other = await lab.logged_on("agent2")
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/workspace/v3/voice/make-call", "{not json", 400, "not valid JSON"),
        ("POST", "/workspace/v3/voice/make-call", [1, 2], 400, "must be a JSON object"),
        ("POST", "/workspace/v3/voice/make-call", {"data": {}}, 400, "data.destination"),
        ("POST", "/workspace/v3/voice/make-call", {"data": "x"}, 400, "'data' must be an object"),
        (
            "POST",
            "/workspace/v3/voice/not-ready",
            {"data": {"agentWorkMode": "Lunch"}},
            400,
            "agentWorkMode 'Lunch'",
        ),
        ("POST", "/workspace/v3/voice/calls/0000dead/answer", None, 404, "not a call of DN 7001"),
        ("POST", "/workspace/v3/voice/calls/0000dead/explode", None, 404, "unknown call operation"),
        ("POST", "/workspace/v3/activate-channels", {"data": {"dn": "7002"}}, 409, "agent2"),
        (
            "POST",
            "/workspace/v3/activate-channels",
            {"data": {"placeName": "Nowhere"}},
            400,
            "unknown place",
        ),
        ("GET", "/workspace/v3/no-such-thing", None, 404, "no such resource"),
        ("GET", "/workspace/v3/voice/ready", None, 405, "not allowed"),
    ]
    for method, path, body, status, fragment in cases:
        kwargs: dict[str, Any] = {}
        if isinstance(body, str):
            kwargs["data"] = body
            kwargs["headers"] = {"Content-Type": "application/json"}
        elif body is not None:
            kwargs["json"] = body
        async with desk.http.request(method, f"{lab.base_url}{path}", **kwargs) as response:
            answer = await response.json()
            assert response.status == status, (path, answer)
            assert answer["status"]["code"] == status
            assert fragment in answer["status"]["message"], (path, answer)
    big = {"data": {"destination": "1" * 100_000}}
    status, answer = await desk.call("POST", "/workspace/v3/voice/make-call", big)
    assert status == 413, answer
    # Another agent's call is not this desktop's to control.
    conn_id = lab.sip.node.inbound_call("+15551230002", "7002")
    await other.expect_voice("CallStateChanged", id=conn_id, state="Ringing")
    status, answer = await desk.call("POST", f"/workspace/v3/voice/calls/{conn_id}/answer")
    assert status == 404
    # Both sessions are unharmed.
    for session in (desk, other):
        status, _ = await session.call("GET", "/workspace/v3/current-session")
        assert status == 200


async def test_bad_bayeux_messages_are_answered_and_the_session_survives(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    replies = await desk.bayeux({"channel": "/meta/subscribe", "subscription": "/other/thing"})
    assert replies[0]["successful"] is False
    assert "Unknown channel" in replies[0]["error"]
    async with desk.http.post(
        f"{lab.base_url}/workspace/v3/notifications",
        data="[{bad json",
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 400
    replies = await desk.bayeux(
        {"channel": "/meta/connect", "connectionType": "long-polling", "clientId": "nobody"}
    )
    assert replies[0]["error"].startswith("402::")
    assert replies[0]["advice"]["reconnect"] == "handshake"
    # Wrong Bayeux messages from a known client: each answered with the field that is wrong.
    wrong: list[tuple[dict[str, Any], str]] = [
        ({"data": {}}, "400::message has no channel"),
        ({"channel": "/meta/connect"}, "Connect requires a connectionType"),
        ({"channel": "/meta/subscribe"}, "subscription is required"),
        ({"channel": "/meta/subscribe", "subscription": "no-slash"}, "Invalid channel name"),
        ({"channel": "/meta/nonsense"}, "Unknown meta channel"),
        ({"channel": VOICE, "data": {"messageType": "x"}}, "not allowed"),
        ({"channel": "/meta/handshake", "version": "9.0"}, "Unsupported Bayeux version"),
    ]
    for message, error in wrong:
        (reply,) = await desk.bayeux(message)
        assert reply["successful"] is False and error in reply["error"], (message, reply)
    await desk.call("POST", "/workspace/v3/voice/ready")
    await desk.expect_voice("EventError")  # not logged in yet: the SIP node says so
    status, _ = await desk.call("GET", "/workspace/v3/current-session")
    assert status == 200


async def test_oversized_cometd_payloads_are_refused_and_the_sessions_survive(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    other = await lab.logged_on("agent2")
    huge = json.dumps([{"channel": "/meta/connect", "data": "x" * 200_000}])
    async with desk.http.post(
        f"{lab.base_url}/workspace/v3/notifications",
        data=huge,
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 413
        (reply,) = await response.json()
        assert reply["error"].startswith("413::payload larger than")
    url = f"ws://{lab.gws.http_endpoint}/workspace/v3/notifications"
    async with desk.http.ws_connect(url) as ws:
        await ws.send_str(huge)
        closing = await ws.receive(timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert closing.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    for session, dn in ((desk, "7001"), (other, "7002")):
        status, _ = await session.call(
            "POST", "/workspace/v3/activate-channels", {"data": {"dn": dn}}
        )
        assert status == 200
        await session.expect_voice("DnStateChanged", number=dn, agentState="LoggedIn")


async def test_websocket_transport_delivers_voice_events(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.desktop()
    token = await desk.token("agent1", "agent1")
    await desk.initialize(token)
    url = f"ws://{lab.gws.http_endpoint}/workspace/v3/notifications"
    async with desk.http.ws_connect(url) as ws:
        await ws.send_json(
            [
                {
                    "channel": "/meta/handshake",
                    "version": "1.0",
                    "supportedConnectionTypes": ["websocket"],
                    "id": "1",
                }
            ]
        )
        [handshake] = await ws.receive_json(timeout=5)
        assert handshake["successful"], handshake
        client_id = handshake["clientId"]
        await ws.send_json(
            [
                {
                    "channel": "/meta/subscribe",
                    "subscription": "/workspace/v3/voice",
                    "clientId": client_id,
                    "id": "2",
                },
                {
                    "channel": "/meta/connect",
                    "connectionType": "websocket",
                    "clientId": client_id,
                    "id": "3",
                },
            ]
        )
        status, _ = await desk.call(
            "POST", "/workspace/v3/activate-channels", {"data": {"dn": "7001"}}
        )
        assert status == 200
        seen: list[str] = []
        while "LoggedIn" not in seen:
            message = await ws.receive(timeout=5)
            assert message.type is aiohttp.WSMsgType.TEXT
            for item in message.json():
                if item["channel"] == "/workspace/v3/voice":
                    seen.append(item["data"]["dn"]["agentState"])
        assert seen[0] == "LoggedOut"


async def test_garbage_requests_get_4xx_answers_never_500(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    url = lab.base_url
    cases = [
        (
            "POST",
            "/auth/v3/oauth/token",
            b"\xff\xfe=\xff",
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        (
            "POST",
            "/auth/v3/oauth/token",
            b"grant_type=password&username=%ZZ&password=x",
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        ("POST", "/auth/v3/oauth/token", b'{"a":1}', {"Content-Type": "application/json"}),
        (
            "POST",
            "/auth/v3/oauth/token",
            b"x" * 200000,
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        (
            "POST",
            "/workspace/v3/voice/make-call",
            b"\xff\xfe",
            {"Content-Type": "application/json"},
        ),
        (
            "POST",
            "/workspace/v3/voice/make-call",
            b'{"data": {"destination": 5}}',
            {"Content-Type": "application/json"},
        ),
        ("POST", "/workspace/v3/initialize-workspace?code=abc", b"", {}),
        (
            "POST",
            "/workspace/v3/initialize-workspace",
            b"",
            {"Authorization": "Bearer drlab.@@@.sig"},
        ),
        (
            "POST",
            "/workspace/v3/initialize-workspace",
            b"",
            {"Authorization": "Bearer drlab.e30.x"},
        ),
        ("POST", "/workspace/v3/notifications", b"\xff", {"Content-Type": "application/json"}),
        ("POST", "/workspace/v3/notifications/", b"[]", {"Content-Type": "application/json"}),
        ("GET", "/workspace/v3/notifications", b"", {}),
        (
            "POST",
            "/workspace/v3/activate-channels",
            b'{"data": {"agentId": ""}}',
            {"Content-Type": "application/json"},
        ),
        ("POST", "/workspace/v3/voice/calls/%00/answer", b"", {}),
    ]
    for method, path, body, headers in cases:
        async with desk.http.request(method, url + path, data=body, headers=headers) as r:
            text = await r.text()
            assert r.status < 500, (path, text)
    status, _ = await desk.call("GET", "/workspace/v3/current-session")
    assert status == 200
    assert not lab.gws_events("http.internal_error")
