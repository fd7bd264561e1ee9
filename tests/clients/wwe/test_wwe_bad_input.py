"""Misuse and refusals: each is a precise error, the desktop keeps working."""

from __future__ import annotations

import pytest

from clients.wwe.client import WweClient
from clients.wwe.desktop import Connection
from clients.wwe.errors import (
    LoginFailed,
    NotConnected,
    RequestFailed,
    ServerUnreachable,
    SessionGone,
    UsageError,
)
from clients.wwe.workspace import AgentState

from .wwe_test_lab import datacentre


async def test_wrong_password_is_refused_clearly_and_the_desktop_stays_logged_out() -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1", password="wrong")
        with pytest.raises(LoginFailed, match="login refused for 'agent1': bad credentials"):
            await wwe.login()
        assert wwe.connection is Connection.LOGGED_OUT
        with pytest.raises(NotConnected, match="the desktop is logged-out"):
            await wwe.ready()


async def test_unknown_user_and_unreachable_server_are_refused_clearly() -> None:
    async with datacentre() as dc:
        with pytest.raises(LoginFailed, match="bad credentials"):
            await dc.wwe("nobody").login()
    async with WweClient("http://127.0.0.1:9", "agent1", "agent1", time_scale=0.01) as wwe:
        with pytest.raises(ServerUnreachable, match="/auth/v3/oauth/token"):
            await wwe.login()


async def test_unknown_call_id_is_answered_with_the_servers_reason() -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1")
        await wwe.login()
        with pytest.raises(
            RequestFailed, match="call 'nosuchcall' is not a call of DN 7001"
        ) as info:
            await wwe.answer("nosuchcall")
        assert info.value.status == 404
        with pytest.raises(UsageError, match="is not a call id"):
            await wwe.hold("a/b")
        # Nothing else is affected.
        assert wwe.connection is Connection.CONNECTED
        await wwe.ready()
        await wwe.wait_until(lambda: wwe.voice.agent_state is AgentState.READY, 5)


async def test_bad_work_mode_and_double_login_are_refused() -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1")
        await wwe.login()
        with pytest.raises(RequestFailed, match="agentWorkMode 'Sleeping' is not supported"):
            await wwe.not_ready("Sleeping")
        with pytest.raises(UsageError, match="already logged on"):
            await wwe.login()
    with pytest.raises(UsageError, match="transport must be one of websocket, long-polling"):
        WweClient("http://127.0.0.1:9", "agent1", "agent1", transport="carrier-pigeon")


async def test_voice_requests_while_gws_has_no_sip_server_fail_without_losing_the_session() -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1")
        outcome = await wwe.login()
        dc.relays[f"{outcome.node}-sip1"].cut("reset")
        await wwe.wait_until(lambda: not wwe.voice.available, 5)
        with pytest.raises(RequestFailed, match="SIP Server sip1") as info:
            await wwe.ready()
        assert info.value.status == 503
        assert wwe.connection is Connection.CONNECTED
        dc.relays[f"{outcome.node}-sip1"].heal()
        await wwe.wait_until(lambda: wwe.voice.available, 10)
        assert wwe.messages[-1] == "Voice channel is available"


async def test_closed_client_refuses_to_log_on_and_clears_its_listeners() -> None:
    wwe = WweClient("http://127.0.0.1:9", "agent1", "agent1")
    wwe.events.on("message", print)
    await wwe.close()
    assert wwe.events.listeners("message") == []
    with pytest.raises(UsageError, match="closed"):
        await wwe.login()
    await wwe.close()  # idempotent


async def test_a_rest_refusal_while_cometd_is_connected_is_an_error_not_a_lost_connection() -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1")
        await wwe.login()
        assert wwe._http is not None
        wwe._http.cookie_jar.clear(lambda morsel: morsel.key == "WORKSPACE_SESSIONID")
        with pytest.raises(SessionGone, match="WORKSPACE_SESSIONID") as info:
            await wwe.ready()
        assert info.value.status == 401
        assert wwe.connection is Connection.CONNECTED
        assert "Connection to the server has been lost. Reconnecting..." not in wwe.messages
