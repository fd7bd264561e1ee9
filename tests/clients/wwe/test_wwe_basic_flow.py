"""A WWE desktop through the proxy: log on, Ready, an inbound call, ACW; both CometD transports."""

from __future__ import annotations

import pytest

from clients.wwe.desktop import Connection, VoiceChanged
from clients.wwe.workspace import AgentState, CallState

from .wwe_test_lab import datacentre


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
async def test_agent_takes_an_inbound_call_and_goes_to_after_call_work(transport: str) -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1", transport=transport)
        voice_states: list[tuple[str, str]] = []
        wwe.events.on(
            "state",
            lambda change: (
                voice_states.append((str(change.new.agent_state), change.new.agent_work_mode))
                if isinstance(change, VoiceChanged)
                else None
            ),
        )
        outcome = await wwe.login()
        assert wwe.connection is Connection.CONNECTED
        assert outcome.rejected is None
        assert outcome.node in ("gws1", "gws2")
        assert outcome.voice.dn == "7001"
        assert outcome.voice.agent_state is AgentState.LOGGED_IN
        await wwe.ready()
        await wwe.wait_until(lambda: wwe.voice.agent_state is AgentState.READY, 5)

        conn_id = await dc.inbound_call("7001")
        ringing = await wwe.wait_for_call(CallState.RINGING, 5, conn_id)
        assert "answer" in ringing.capabilities
        assert wwe.calls[conn_id].state is CallState.RINGING
        await wwe.answer(conn_id)
        await wwe.wait_for_call(CallState.ESTABLISHED, 5, conn_id)
        await wwe.release(conn_id)
        await wwe.wait_for_call(CallState.RELEASED, 5, conn_id)
        assert conn_id not in wwe.calls
        await wwe.wait_until(lambda: ("NotReady", "AfterCallWork") in voice_states, 5)

        await wwe.logout()
        assert str(wwe.connection) == "logged-out"
        assert wwe.messages[0].startswith("Logged on as agent1 (DN 7001) via gws")


@pytest.mark.parametrize("node", ["gws1", "gws2"])
async def test_a_page_opened_with_the_proxys_cookie_is_pinned_to_that_node(node: str) -> None:
    async with datacentre() as dc:
        wwe = dc.wwe("agent1", cookies={dc.proxy.config.cookie_name: node})
        outcome = await wwe.login()
        assert outcome.node == node
        await wwe.logout()
