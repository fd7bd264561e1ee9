"""``python -m clients.pstn`` as the lab runs it, with a SIP node and a softphone as processes.

Each service prints its ``ready`` line with its endpoints; a customer call placed through the
gateway's control API reaches the softphone through the node and talks; SIGTERM stops all three
cleanly (exit 0, ``stopping`` then ``stopped``); bad command lines exit 2 with a message.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.support import ServiceProcess, eventually, refused

SCALE = ("--time-scale", "0.05")


async def test_pstn_calls_the_softphone_through_a_node_process_and_everything_stops_cleanly() -> (
    None
):
    started: list[ServiceProcess] = []
    try:
        node = await ServiceProcess.start(
            "emulator.sipcluster", "--name", "sip1", "--dc", "DC1", "--sip", "127.0.0.1:0", *SCALE
        )
        started.append(node)
        endpoints = node.endpoints
        assert set(endpoints) >= {"tlib", "tc", "control", "sip", "media"}
        softphone2 = ("--name", "softphone2", "--dn", "7002", "--registrar")
        phone = await ServiceProcess.start(
            "clients.softphone", *softphone2, f"sip1={endpoints['sip']}", *SCALE
        )
        started.append(phone)
        pstn = await ServiceProcess.start(
            "clients.pstn",
            *("--name", "pstn", "--node", f"sip1={endpoints['sip']}"),
            *("--agent", "7001=agent-7001", *SCALE),
        )
        started.append(pstn)
        ready = pstn.ready.result()
        assert ready["agents"] == {"7001": "agent-7001"} and "sip" in ready["endpoints"]
        node_api = aiohttp.ClientSession(f"http://{endpoints['control']}")
        pstn_api = aiohttp.ClientSession(f"http://{ready['endpoints']['http']}")
        async with node_api, pstn_api:
            state: dict[str, Any] = {}

            async def refresh() -> None:
                async with node_api.get("/state") as response:
                    state.update(await response.json())

            async def phone_known() -> bool:
                await refresh()
                return "7002" in state.get("phones", {})

            await eventually(phone_known, what="sip1 to know phone 7002", interval=0.05)
            async with pstn_api.post("/calls", json={"to": "7002", "node": "sip1"}) as response:
                assert response.status == 201
                call_id = (await response.json())["id"]
            call: dict[str, Any] = {}

            async def read_call() -> None:
                async with pstn_api.get(f"/calls/{call_id}") as response:
                    call.update((await response.json())["call"])

            async def call_talking() -> bool:
                await read_call()
                return call.get("media", {}).get("packets_received", 0) > 50

            await eventually(call_talking, what="50 packets on the call", interval=0.05)
            assert call["state"] == "active" and call["media"]["talking"]
            await refresh()
            assert state["sip"]["calls"][0]["state"] == "connected"
            assert state["sip"]["media"]["packets_forwarded"] > 100
        for stopped in (pstn, phone, node):
            assert await stopped.stop(timeout=20) == 0
            events = stopped.events()
            assert "stopping" in events and events[-1] == "stopped"  # calls ended in between
    finally:
        for service in started:
            await service.stop()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--agent", "7001=agent-7001"], "--node"),
        (["--node", "sip1"], "NAME=HOST:PORT"),
        (["--node", "sip1=10.0.0.1:5060"], "loopback"),
        (["--node", "sip1=127.0.0.1:5060", "--agent", "7001"], "DN=NUMBER"),
        (["--node", "sip1=127.0.0.1:5060", "--rtp-timeout", "0.5"], "longer than the gap"),
    ],
)
async def test_bad_command_line_exits_2_with_a_clear_message(
    args: list[str], complaint: str
) -> None:
    code, errors = await refused("clients.pstn", *args, *SCALE)
    assert code == 2
    assert complaint in errors


async def test_node_sip_options_need_sip_and_bad_routes_exit_2() -> None:
    for args, complaint in (
        (["--pstn-route", "127.0.0.1:5060"], "need --sip"),
        (["--sip", "127.0.0.1:0", "--phone-route", "7002"], "KEY=VALUE"),
    ):
        code, errors = await refused(
            "emulator.sipcluster", "--name", "sip1", "--dc", "DC1", *args, *SCALE
        )
        assert code == 2 and complaint in errors, errors
