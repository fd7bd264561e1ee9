"""Seed scenario 1 and 2 from the desktop's side: losing the GWS node, giving up, re-logging on
through the proxy, a brief proxy outage, and the SIP Server link of GWS going down."""

from __future__ import annotations

import asyncio

import pytest

from clients.wwe.client import WweClient
from clients.wwe.desktop import (
    CONNECTION_LOST,
    CONNECTION_RESTORED,
    UNABLE_TO_CONNECT,
    VOICE_UNAVAILABLE,
    Connection,
)
from clients.wwe.errors import NotConnected, VoiceError
from clients.wwe.workspace import AgentState, CallState
from tests.support import eventually

from .wwe_test_lab import WweDc, datacentre


async def talking(dc: WweDc, wwe: WweClient) -> str:
    """A customer calls agent1 (DN 7001) and the agent answers on the desktop: the ConnID."""
    conn_id = await dc.inbound_call("7001")
    await wwe.wait_for_call(CallState.RINGING, 5, conn_id)
    await wwe.answer(conn_id)
    await wwe.wait_for_call(CallState.ESTABLISHED, 5, conn_id)
    return conn_id


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
async def test_losing_the_node_shows_reconnecting_then_gives_up_then_relogin_recovers_the_call(
    transport: str,
) -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1", transport=transport)  # give-up after 60 s scaled to 1 s
        errors: list[Exception] = []
        wwe.events.on("error", errors.append)
        first = await wwe.login()
        conn_id = await talking(dc, wwe)

        await dc.stop_gws(first.node)
        await wwe.wait_for_message(CONNECTION_LOST, 10)
        assert wwe.connection is Connection.RECONNECTING
        with pytest.raises(NotConnected):
            await wwe.hold(conn_id)
        await wwe.wait_for_message(UNABLE_TO_CONNECT, 10)
        assert wwe.messages[-1] == UNABLE_TO_CONNECT
        assert str(wwe.connection) == "gave-up"
        loop = asyncio.get_running_loop()
        assert wwe.reconnector.lost_at is not None
        assert loop.time() - wwe.reconnector.lost_at >= wwe.give_up_after == pytest.approx(1.0)
        assert wwe.messages.count(CONNECTION_LOST) == 1
        assert wwe.messages.count(UNABLE_TO_CONNECT) == 1

        # The refresh: a new session on the other node, the call reported, login rejected.
        second = await wwe.relogin()
        assert second.node != first.node
        assert wwe.messages.count(CONNECTION_LOST) == 1  # a fresh page: nothing shown again
        assert [call.id for call in second.calls] == [conn_id]
        assert second.calls[0].notification == "CallRecovered"
        assert isinstance(second.rejected, VoiceError)
        assert second.rejected.code == 245
        assert any(isinstance(e, VoiceError) and e.code == 245 for e in errors)
        assert "Error 245: agent login rejected on DN 7001" in wwe.messages[-1]
        assert not wwe.voice.logged_in
        # The agent controls the call without being logged in (S1.7).
        await wwe.hold(conn_id)
        await wwe.wait_for_call(CallState.HELD, 5, conn_id)
        await wwe.retrieve(conn_id)
        await eventually(lambda: wwe.calls[conn_id].state is CallState.ESTABLISHED)
        assert dc.sip_saw("RequestAgentLogin", "7001")


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
async def test_a_brief_proxy_outage_within_the_window_reconnects_the_same_session(
    transport: str,
) -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1", transport=transport, time_scale=0.1)  # give up after 6 s
        outcome = await wwe.login()
        await dc.restart_proxy(down_for=0.3)
        await wwe.wait_for_message(CONNECTION_LOST, 10)
        await wwe.wait_for_connection(Connection.CONNECTED, 10)
        assert wwe.messages[-1] == CONNECTION_RESTORED
        assert UNABLE_TO_CONNECT not in wwe.messages
        assert wwe.node == outcome.node
        # Still the same session: requests work without a new log-on.
        await wwe.ready()
        await wwe.wait_until(lambda: wwe.voice.agent_state is AgentState.READY, 5)


async def test_gws_losing_its_sip_server_makes_the_voice_channel_unavailable() -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1", handoff=False)  # the knob: the desktop stays where it is
        outcome = await wwe.login()
        assert wwe.voice.available
        dc.relays[f"{outcome.node}-sip1"].cut("reset")
        await wwe.wait_for_message(VOICE_UNAVAILABLE, 5)
        assert not wwe.voice.available
        assert wwe.voice.agent_state is AgentState.OUT_OF_SERVICE
        assert any("Error 1800: Connection to SIP Server sip1 is lost" in m for m in wwe.messages)
        assert wwe.connection is Connection.CONNECTED  # the desktop's own connection is fine


async def test_the_desktop_moves_by_itself_when_its_node_loses_the_sip_server() -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1")
        moved: list[object] = []
        wwe.events.on("moved", moved.append)
        first = await wwe.login()
        conn_id = await talking(dc, wwe)
        token = wwe._token

        dc.relays[f"{first.node}-sip1"].cut("reset")
        await wwe.wait_for_message(VOICE_UNAVAILABLE, 5)
        await eventually(lambda: wwe.moved is not None)
        outcome = wwe.moved
        assert outcome is not None and moved == [outcome]
        assert outcome.node != first.node and wwe.node == outcome.node
        # The call in progress is reported there; the agent login is rejected (245) meanwhile.
        assert [call.id for call in outcome.calls] == [conn_id]
        assert isinstance(outcome.rejected, VoiceError) and outcome.rejected.code == 245
        assert wwe.connection is Connection.CONNECTED and wwe.voice.available
        assert wwe._token == token  # the same token: no password asked again
        assert CONNECTION_LOST not in wwe.messages and UNABLE_TO_CONNECT not in wwe.messages
        await wwe.hold(conn_id)
        await wwe.wait_for_call(CallState.HELD, 5, conn_id)


async def test_a_session_ended_by_its_node_cannot_resume_and_the_desktop_gives_up() -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1", transport="long-polling")
        outcome = await wwe.login()
        node = dc.gws[outcome.node].node
        [session] = [s for s in node.sessions if s.user.username == "agent1"]
        node.end_session(session, "ended by the test", logout_agent=False)
        await wwe.wait_for_message(CONNECTION_LOST, 10)
        await wwe.wait_for_message(UNABLE_TO_CONNECT, 10)
        # The node forgot the CometD client (402); the re-handshake is refused (403) for good.
        assert wwe.reconnector.reason == "CometD: 402::Unknown client"


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
async def test_a_black_holed_path_to_the_node_gives_up_and_relogin_uses_the_other_node(
    transport: str,
) -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1", transport=transport)
        first = await wwe.login()
        conn_id = await talking(dc, wwe)

        dc.relays[f"proxy-dc1-{first.node}"].cut("blackhole")  # gws1's NIC (S1)
        await wwe.wait_for_message(CONNECTION_LOST, 10)
        await wwe.wait_for_message(UNABLE_TO_CONNECT, 15)
        second = await wwe.relogin()
        assert second.node != first.node
        assert [call.id for call in second.calls] == [conn_id]
        assert second.rejected is not None and second.rejected.code == 245
