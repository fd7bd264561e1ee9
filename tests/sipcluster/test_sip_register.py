"""The node as registrar for softphone DNs: ownership follows the phone's REGISTER (DESIGN §2.2).

A new binding makes the node claim (or ask the owner to move) the DN; the loss of the last
binding, by unregister or by expiry (Expires scaled by the lab's time-scale), tells the cluster
the phone is gone; every node learns where the phone is. A softphone whose refresh fails
registers at the next node, ownership moves at once and the old owner logs the agent out.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from emulator.common.addresses import Endpoint
from emulator.sip.message import Response
from emulator.sip.transport import UdpTransport
from emulator.sip.ua import UserAgent
from emulator.tlib.messages import EventName, RequestAgentLogin, RequestRegisterAddress
from tests.clients.softphone.softphone_test_helpers import FAST_TIMERS
from tests.sip.sip_test_helpers import new_request
from tests.sipcluster.sip_lab import SipLab, lab_softphone, run_sipp, sip_lab, sipp_succeeded
from tests.support import eventually, free_udp_port

SIPP = shutil.which("sipp")

REGISTER_SCENARIO = Path(__file__).parents[1] / "sip" / "sipp" / "register.xml"  # DN 7002


@asynccontextmanager
async def registering_ua() -> AsyncIterator[UserAgent]:
    async with UdpTransport() as transport, UserAgent(transport, timers=FAST_TIMERS) as ua:
        yield ua


async def register(ua: UserAgent, node: Endpoint, dn: str, expires: int) -> Response:
    request = new_request(ua, "REGISTER", node, user=dn)
    return await ua.request(
        request.with_headers(request.headers.add("Expires", str(expires))), node
    )


def knows_phone(lab: SipLab, dn: str, node: str | None) -> bool:
    """Every node's view of where ``dn``'s phone is registered (None: nowhere)."""
    return all(
        (reg.node if (reg := service.node.phones.get(dn)) else None) == node
        for service in lab.nodes.values()
    )


@pytest.mark.skipif(SIPP is None, reason="SIPp (Debian sip-tester) not installed")
async def test_sipp_registers_over_udp_and_the_node_owns_the_dn(tmp_path: Path) -> None:
    async with sip_lab(relay=False) as lab:
        process = await run_sipp(
            tmp_path,
            str(lab.sip("sip1")),
            "-sf",
            str(REGISTER_SCENARIO),
            "-p",
            str(free_udp_port()),
        )
        await sipp_succeeded(process)
        bindings = lab.state("sip1")["sip"]["registrations"]
        assert [binding["DN"] for binding in bindings] == ["7002"]
        await eventually(lambda: knows_phone(lab, "7002", "sip1"), timeout=5)
        assert all(n.node.owner_of("7002") == "sip1" for n in lab.nodes.values())
        assert lab.state("sip2")["phones"]["7002"]["contact"].startswith("sip:7002@127.0.0.1:")


async def test_expired_registration_tells_the_cluster_the_phone_is_gone() -> None:
    async with sip_lab(relay=False) as lab, registering_ua() as ua:
        response = await register(ua, lab.sip("sip2"), "7002", 20)  # 20 s scaled: 1 s
        assert response.status == 200
        assert response.header("Contact") is not None
        await eventually(lambda: knows_phone(lab, "7002", "sip2"), timeout=5)
        await eventually(lambda: knows_phone(lab, "7002", None), timeout=5)
        assert lab.records("sip2", "sip.register.expired")[0]["DN"] == "7002"
        assert lab.state("sip2")["sip"]["registrations"] == []


async def test_unregister_with_expires_zero_tells_the_cluster_at_once() -> None:
    async with sip_lab(relay=False) as lab, registering_ua() as ua:
        await register(ua, lab.sip("sip1"), "7002", 600)
        await eventually(lambda: knows_phone(lab, "7002", "sip1"), timeout=5)
        response = await register(ua, lab.sip("sip1"), "7002", 0)
        assert response.status == 200
        await eventually(lambda: knows_phone(lab, "7002", None), timeout=5)


async def test_register_for_a_dn_outside_the_cluster_is_404() -> None:
    async with sip_lab(relay=False) as lab, registering_ua() as ua:
        response = await register(ua, lab.sip("sip1"), "5555", 600)
        assert response.status == 404
        assert lab.state("sip1")["sip"]["counters"]["registers_rejected"] == 1
        assert "5555" not in lab.nodes["sip1"].node.view


async def test_softphone_failing_over_moves_ownership_and_the_old_owner_logs_the_agent_out() -> (
    None
):
    # A REGISTER unanswered for 0.5 s (10 s scaled): the refresh is retried at sip1 while the
    # registration lasts, then the phone fails over at its expiry.
    async with sip_lab() as lab, lab_softphone(lab, ("sip1", "sip2"), register_timeout=10) as phone:
        await eventually(lambda: knows_phone(lab, "7002", "sip1"), timeout=5)
        await eventually(lambda: lab.nodes["sip2"].node.owner_of("7002") == "sip1", timeout=5)
        desk = await lab.desktop("sip1")
        await desk.send(RequestRegisterAddress, "7002")
        await desk.send(RequestAgentLogin, "7002", agent_id="agent2")
        await lab.cut("softphone2-sip1")  # the phone's path to sip1 only
        logout = await desk.expect(EventName.EVENT_AGENT_LOGOUT, timeout=10)
        assert logout.get("AgentID") == "agent2" and logout.get("Reason") == "OwnershipMove"
        assert phone.status()["registrar"] == "sip2"
        await eventually(lambda: knows_phone(lab, "7002", "sip2"), timeout=5)
        await eventually(
            lambda: all(n.node.owner_of("7002") == "sip2" for n in lab.nodes.values()), timeout=5
        )
        # sip1's binding is gone: expired, or dropped when the cluster heard of sip2's.
        assert lab.state("sip1")["sip"]["registrations"] == []


async def test_a_registration_at_another_node_supersedes_the_old_binding() -> None:
    async with sip_lab(relay=False) as lab, registering_ua() as ua:
        await register(ua, lab.sip("sip1"), "7002", 600)
        await eventually(lambda: knows_phone(lab, "7002", "sip1"), timeout=5)
        await register(ua, lab.sip("sip2"), "7002", 600)
        await eventually(lambda: knows_phone(lab, "7002", "sip2"), timeout=5)
        # sip1's binding is stale once the cluster knows better: dropped, not left to expire.
        await eventually(lambda: lab.state("sip1")["sip"]["registrations"] == [], timeout=5)
        assert lab.records("sip1", "sip.register.superseded")


async def test_path_restored_before_the_refresh_changes_nothing() -> None:
    async with sip_lab() as lab, lab_softphone(lab, ("sip1", "sip2")) as phone:
        await eventually(lambda: knows_phone(lab, "7002", "sip1"), timeout=5)
        desk = await lab.desktop("sip1")
        await desk.send(RequestRegisterAddress, "7002")
        await desk.send(RequestAgentLogin, "7002", agent_id="agent2")
        sent = phone.registering.registrations_sent
        await eventually(
            lambda: phone.registering.registrations_sent > sent, timeout=5
        )  # a refresh: cut now
        await eventually(lambda: phone.status()["registration"]["state"] == "registered", timeout=5)
        await lab.cut("softphone2-sip1")
        await asyncio.sleep(0.4)  # the fault lasts less than the 1.5 s refresh interval
        await lab.heal("softphone2-sip1")
        refreshed = phone.registering.registrations_sent
        await eventually(lambda: phone.registering.registrations_sent > refreshed + 1, timeout=6)
        assert phone.status()["registrar"] == "sip1"
        assert all(n.node.owner_of("7002") == "sip1" for n in lab.nodes.values())
        await desk.absent(EventName.EVENT_AGENT_LOGOUT, within=0.1)
