"""The PSTN gateway: customer calls placed through its control API, PSTN agent numbers answered.

Against a real SIP Cluster node (in-process) with softphone2 registered, so calls go
customer -> node -> phone and back; the gateway's per-call reports carry the media verdict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from clients.phoneline.config import NodeEntry
from clients.phoneline.control import ControlServer
from clients.pstn.gateway import Pstn
from emulator.common.addresses import Endpoint
from emulator.sip.sdp import AudioSession
from emulator.sip.transport import UdpTransport
from emulator.sip.ua import UserAgent
from tests.clients.softphone.softphone_test_helpers import FAST_TIMERS
from tests.sip.sip_test_helpers import new_request
from tests.sipcluster.sip_lab import lab_pstn, lab_softphone, sip_lab, talk
from tests.support import eventually


@asynccontextmanager
async def controlled(pstn: Pstn) -> AsyncIterator[aiohttp.ClientSession]:
    async with (
        ControlServer(pstn, place=pstn.place) as server,
        aiohttp.ClientSession(f"http://{server.bound}") as session,
    ):
        yield session


async def get_json(session: aiohttp.ClientSession, path: str) -> Any:
    async with session.get(path) as response:
        assert response.status == 200
        return await response.json()


async def test_control_api_places_a_call_reports_it_talking_and_releases_it() -> None:
    async with (
        sip_lab() as lab,
        lab_softphone(lab, ("sip1",)),
        lab_pstn(lab) as pstn,
        controlled(pstn) as session,
    ):
        await eventually(lambda: lab.nodes["sip2"].node.phones.get("7002") is not None, timeout=5)
        async with session.post("/calls", json={"to": "7002", "node": "sip2"}) as response:
            assert response.status == 201
            placed = await response.json()
        call_id = placed["id"]
        assert placed["call"]["direction"] == "outbound" and placed["call"]["node"] == "sip2"
        await eventually(lambda: pstn.find(call_id).state.value == "active", timeout=5)
        await talk(1.2)
        listed = (await get_json(session, "/calls"))["calls"]
        assert [call["id"] for call in listed] == [call_id]
        media = listed[0]["media"]
        assert media["talking"] and media["packets_received"] >= 40 and media["loss_ratio"] == 0
        assert (await get_json(session, "/status"))["calls"]["talking"] == 1
        async with session.post(f"/calls/{call_id}/release") as response:
            assert response.status == 200
        ended = (await get_json(session, f"/calls/{call_id}"))["call"]
        assert ended["state"] == "ended" and ended["end_reason"] == "released"
        assert not ended["lost"] and ended["media"]["talking"]
        async with session.post(f"/calls/{call_id}/release") as response:
            assert response.status == 409  # already ended


async def test_control_api_refuses_bad_call_requests_with_400_or_404() -> None:
    async with sip_lab(relay=False) as lab, lab_pstn(lab) as pstn, controlled(pstn) as session:
        for body, complaint in (
            ({"node": "sip1"}, "'to'"),
            ({"to": "7002", "node": "sip9"}, "unknown node 'sip9'"),
            ({"to": "70 02"}, "not a plain SIP user part"),
            ({"to": "7002", "from": 5}, "strings"),
        ):
            async with session.post("/calls", json=body) as response:
                assert response.status == 400
                assert complaint in (await response.json())["error"]
        async with session.post("/calls", data=b"{not json") as response:
            assert response.status == 400
        async with session.post("/calls/c99/release") as response:
            assert response.status == 404
        assert pstn.reports() == []


async def test_agent_number_is_answered_by_hand_when_auto_answer_is_off() -> None:
    async with sip_lab() as lab, lab_pstn(lab, auto_answer=False) as pstn:
        customer = await pstn.place({"to": "7001", "node": "sip1"})
        await eventually(
            lambda: any(c["direction"] == "inbound" for c in pstn.reports()), timeout=5
        )
        agent = next(c for c in pstn.reports() if c["direction"] == "inbound")
        assert agent["state"] == "ringing" and agent["node"] == "sip1"
        assert pstn.find(customer.id).state.value == "ringing"  # 180 relayed by the node
        pstn.answer(agent["id"])
        await eventually(lambda: pstn.find(customer.id).state.value == "active", timeout=5)
        pstn.release(agent["id"])  # the agent hangs up: BYE to sip1, named in the INVITE
        await eventually(lambda: pstn.find(customer.id).ended, timeout=5)
        assert pstn.find(customer.id).report()["end_reason"] == "bye"


async def test_invite_for_a_number_that_is_no_agent_phone_is_answered_404() -> None:
    async with (
        sip_lab(relay=False) as lab,
        lab_pstn(lab) as pstn,
        UdpTransport() as transport,
        UserAgent(transport, timers=FAST_TIMERS) as ua,
    ):
        body = AudioSession("127.0.0.1", 4000).to_bytes()
        invite = new_request(ua, "INVITE", pstn.sip_bound, user="agent-7999", body=body)
        response = await ua.request(invite, pstn.sip_bound)
        assert response.status == 404
        assert pstn.reports() == []


async def test_keepalive_reports_which_nodes_answer_options() -> None:
    async with sip_lab(("sip1",), relay=False) as lab:
        nodes = (NodeEntry("sip1", lab.sip("sip1")), NodeEntry("sip9", Endpoint("127.0.0.1", 9)))
        async with lab_pstn(lab, nodes=nodes, keepalive=0.2) as pstn:
            await eventually(lambda: len(pstn.pings) == 2, timeout=6)  # timer F: 1.6 s
            status = {node["name"]: node for node in pstn.status()["nodes"]}
    assert status["sip1"]["reachable"] and status["sip1"]["status"] == 200
    assert not status["sip9"]["reachable"] and "timer F" in status["sip9"]["reason"]
