"""Customer calls through the SIP side of the cluster, with phones routed through the relay.

DESIGN §2.2/§2.4: the call lives on the node the PSTN gateway sent it to, rings the agent's phone
(softphone registration or PSTN agent number), and the desktop sees it through the DN's owner;
"talking" is RTP both ways with no gap longer than 1 s, measured at both phones and the node.
"""

from __future__ import annotations

from typing import Any

from emulator.tlib.messages import (
    EventName,
    RequestAnswerCall,
    RequestHoldCall,
    RequestRegisterAddress,
    RequestReleaseCall,
    RequestRetrieveCall,
)
from tests.sipcluster.sip_lab import agent2_lab, lab_pstn, sip_lab, talk
from tests.support import eventually


def only(calls: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [call for call in calls if all(call.get(k) == v for k, v in match.items())]
    assert len(found) == 1, calls
    return found[0]


def talking(report: dict[str, Any]) -> bool:
    media = report["media"]
    return bool(media["talking"]) and media["packets_lost"] == 0


async def test_customer_call_on_sip2_rings_the_softphone_registered_at_sip1_and_talks() -> None:
    async with agent2_lab() as (lab, phone, pstn, desk):
        call = await pstn.place({"to": "7002", "node": "sip2", "from": "+15551230002"})
        ringing = await desk.expect(EventName.EVENT_RINGING)
        assert ringing.get("CallNode") == "sip2" and ringing.get("OtherDN") == "+15551230002"
        conn_id = ringing.get("ConnID")
        await desk.expect(EventName.EVENT_ESTABLISHED, ConnID=conn_id)
        await eventually(lambda: pstn.find(call.id).state.value == "active", timeout=5)
        await talk(1.2)
        customer = pstn.find(call.id).report()
        agent = only(phone.reports(), state="active")
        assert talking(customer) and talking(agent), (customer, agent)
        assert customer["media"]["packets_received"] >= 50
        assert customer["conn_id"] == agent["conn_id"] == conn_id  # reports match the desktop
        node_call = only(lab.state("sip2")["sip"]["calls"], ConnID=conn_id)
        assert node_call["state"] == "connected" and node_call["agent"]["kind"] == "softphone"
        assert all(d["talking"] for d in node_call["media"].values())
        released = await desk.send(RequestReleaseCall, "7002", conn_id=conn_id)
        assert released.name is EventName.EVENT_RELEASED
        await eventually(
            lambda: pstn.find(call.id).ended and phone.line.active_count() == 0, timeout=5
        )
        assert pstn.find(call.id).report()["end_reason"] == "bye"
        assert only(phone.reports(), state="ended")["end_reason"] == "bye"
        await desk.expect(EventName.EVENT_AGENT_NOT_READY, AgentWorkMode="AfterCallWork")
        ended = only(lab.state("sip2")["sip"]["calls"], ConnID=conn_id)
        assert ended["end_reason"] == "released"


async def test_customer_call_to_a_pstn_agent_rings_the_agent_number_at_the_gateway() -> None:
    async with sip_lab() as lab, lab_pstn(lab) as pstn:
        desk = await lab.desktop("sip1")
        await desk.send(RequestRegisterAddress, "7001")
        call = await pstn.place({"to": "7001", "node": "sip2"})
        ringing = await desk.expect(EventName.EVENT_RINGING)
        await desk.expect(EventName.EVENT_ESTABLISHED, ConnID=ringing.get("ConnID"))
        await eventually(
            lambda: len([c for c in pstn.reports() if c["state"] == "active"]) == 2, timeout=5
        )
        await talk(1.5)
        reports = pstn.reports()
        agent_leg = only(reports, direction="inbound")
        assert agent_leg["to"].startswith("sip:agent-7001@") and agent_leg["node"] == "sip2"
        assert {report["conn_id"] for report in reports} == {ringing.get("ConnID")}
        assert all(talking(report) for report in reports), reports
        assert all(report["media"]["packets_lost"] == 0 for report in reports), reports
        pstn.release(call.id)  # the customer hangs up
        await desk.expect(EventName.EVENT_RELEASED, ConnID=ringing.get("ConnID"))
        await eventually(
            lambda: all(report["state"] == "ended" for report in pstn.reports()), timeout=5
        )
        assert only(pstn.reports(), direction="inbound")["end_reason"] == "bye"


async def test_hold_and_retrieve_are_desktop_state_then_the_agent_hangs_up_on_the_phone() -> None:
    async with agent2_lab(login=False) as (_, phone, pstn, desk):
        call = await pstn.place({"to": "7002", "node": "sip1"})
        established = await desk.expect(EventName.EVENT_ESTABLISHED)
        conn_id = established.get("ConnID")
        held = await desk.send(RequestHoldCall, "7002", conn_id=conn_id)
        assert held.name is EventName.EVENT_HELD
        await talk(0.5)  # hold changes T-Lib state only: media keeps flowing
        retrieved = await desk.send(RequestRetrieveCall, "7002", conn_id=conn_id)
        assert retrieved.name is EventName.EVENT_RETRIEVED
        assert talking(pstn.find(call.id).report())
        phone.release(only(phone.reports(), state="active")["id"])
        await desk.expect(EventName.EVENT_RELEASED, ConnID=established.get("ConnID"))
        await eventually(lambda: pstn.find(call.id).ended, timeout=5)
        assert pstn.find(call.id).report()["end_reason"] == "bye"


async def test_customer_giving_up_while_ringing_cancels_the_agent_leg() -> None:
    async with agent2_lab(auto_answer=False) as (_, phone, pstn, desk):
        call = await pstn.place({"to": "7002", "node": "sip2"})
        ringing = await desk.expect(EventName.EVENT_RINGING)
        await eventually(lambda: phone.line.active_count() == 1, timeout=5)
        refused = await desk.send(RequestAnswerCall, "7002", conn_id=ringing.get("ConnID"))
        assert refused.name is EventName.EVENT_ERROR
        assert "answers it on the phone" in refused.get("ErrorMessage")
        pstn.release(call.id)
        await desk.expect(EventName.EVENT_RELEASED, ConnID=ringing.get("ConnID"))
        await eventually(
            lambda: only(phone.reports(), state="ended")["end_reason"] == "cancel", timeout=5
        )
        customer = pstn.find(call.id).report()
        assert customer["end_reason"] == "released" and customer["status"] == 487


async def test_cutting_the_softphone_links_during_a_call_loses_the_call_everywhere() -> None:
    # The node gives up on a silent leg before the customer's phone would (1.5 s < 4 s).
    setup = agent2_lab(sip={"rtp_timeout": 1.5}, pstn={"rtp_timeout": 4.0})
    async with setup as (lab, phone, pstn, desk):
        call = await pstn.place({"to": "7002", "node": "sip2"})
        established = await desk.expect(EventName.EVENT_ESTABLISHED)
        await talk(0.5)
        await lab.cut(*lab.links_of("softphone2"))
        await eventually(lambda: phone.line.active_count() == 0, timeout=5)
        agent = only(phone.reports(), state="ended")
        assert agent["lost"] and agent["end_reason"] == "rtp-loss" and not agent["media"]["talking"]
        # The call node notices the silent leg too: no call is left stuck on the desktop.
        await desk.expect(EventName.EVENT_RELEASED, ConnID=established.get("ConnID"), timeout=10)
        await eventually(lambda: pstn.find(call.id).ended, timeout=10)
        assert pstn.find(call.id).report()["end_reason"] == "bye"
        node_call = only(lab.state("sip2")["sip"]["calls"], ConnID=established.get("ConnID"))
        assert node_call["end_reason"] == "media-timeout"


async def test_cutting_the_tc_link_during_a_call_does_not_disturb_media() -> None:
    async with agent2_lab(login=False) as (lab, phone, pstn, _):
        call = await pstn.place({"to": "7002", "node": "sip2"})
        await eventually(lambda: pstn.find(call.id).state.value == "active", timeout=5)
        await talk(0.5)
        await lab.cut("sip1-sip2")
        await eventually(lambda: not lab.nodes["sip2"].node.peers_up, timeout=5)
        await talk(1.2)  # longer than the 1 s gap a disturbance would show
        await lab.heal("sip1-sip2")
        customer = pstn.find(call.id).report()
        assert talking(customer) and talking(only(phone.reports(), state="active"))
        assert customer["media"]["longest_gap_ms"] < 1000


async def test_call_for_a_dn_without_phone_or_pstn_route_is_answered_480() -> None:
    async with sip_lab(relay=False) as lab, lab_pstn(lab) as pstn:
        call = await pstn.place({"to": "7002", "node": "sip1"})
        await eventually(lambda: pstn.find(call.id).ended, timeout=5)
        report = pstn.find(call.id).report()
        assert report["end_reason"] == "failed" and report["status"] == 480
        assert not lab.nodes["sip1"].node.calls


async def test_call_for_a_dn_outside_the_cluster_is_answered_404() -> None:
    async with sip_lab(relay=False) as lab, lab_pstn(lab) as pstn:
        call = await pstn.place({"to": "9999", "node": "sip2"})
        await eventually(lambda: pstn.find(call.id).ended, timeout=5)
        assert pstn.find(call.id).report()["status"] == 404
