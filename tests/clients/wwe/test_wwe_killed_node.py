"""Seed scenario 1 with real processes: the GWS node serving the desktop is SIGKILLed."""

from __future__ import annotations

import aiohttp
import pytest

from clients.wwe.client import WweClient
from clients.wwe.desktop import CONNECTION_LOST, UNABLE_TO_CONNECT, Connection
from clients.wwe.workspace import CallState

from .wwe_processes import process_dc

TIME_SCALE = 0.05  # WWE gives up after 3 s; GWS sessions time out after 3 s


async def test_killed_gws_node_gives_up_on_time_and_relogin_lands_on_the_other_node() -> None:
    async with process_dc(TIME_SCALE) as lab:
        proxy = lab["proxy-dc1"].endpoints["http"]
        control = lab["sip1"].endpoints["control"]
        async with WweClient(f"http://{proxy}", "agent1", "agent1", time_scale=TIME_SCALE) as wwe:
            first = await wwe.login()
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"http://{control}/calls", json={"to": "7001"}) as response,
            ):
                conn_id = (await response.json())["ConnID"]
            await wwe.wait_for_call(CallState.RINGING, 10, conn_id)
            await wwe.answer(conn_id)
            await wwe.wait_for_call(CallState.ESTABLISHED, 10, conn_id)

            lab[first.node].kill()
            await wwe.wait_for_message(CONNECTION_LOST, 10)
            await wwe.wait_for_message(UNABLE_TO_CONNECT, 15)
            shown = dict((text, at) for at, text in wwe.message_times)
            # "If not recovered after 1 minute" (scaled: 3 s) after the loss, not before.
            assert 3.0 <= shown[UNABLE_TO_CONNECT] - shown[CONNECTION_LOST] < 4.0
            assert wwe.reconnector.lost_at == pytest.approx(shown[CONNECTION_LOST], abs=0.01)
            assert wwe.connection is Connection.GAVE_UP

            second = await wwe.relogin()
            assert {first.node, second.node} == {"gws1", "gws2"}
            assert [call.id for call in second.calls] == [conn_id]
            assert second.rejected is not None and second.rejected.code == 245
            await wwe.hold(conn_id)
            await wwe.wait_for_call(CallState.HELD, 10, conn_id)
            await wwe.release(conn_id)
            await wwe.wait_for_call(CallState.RELEASED, 10, conn_id)
            assert wwe.calls == {}
