"""The node's SIP side against an independent implementation: SIPp (Debian ``sip-tester``).

A SIPp UAC calls a registered softphone's DN through a node other than the one the phone
registered at, over UDP and over TCP, and completes INVITE/200/ACK/BYE; a SIPp UAS, standing as
agent1's PSTN phone, answers the call the node forwards to it and echoes RTP, so the customer is
measured talking.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from emulator.common.addresses import Endpoint
from tests.sipcluster.sip_lab import (
    lab_pstn,
    lab_softphone,
    run_sipp,
    sip_lab,
    sipp_succeeded,
    talk,
)
from tests.support import eventually, free_tcp_and_udp_port, free_udp_port

pytestmark = pytest.mark.skipif(
    shutil.which("sipp") is None, reason="SIPp (Debian sip-tester) not installed"
)


def only(calls: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(calls) == 1, calls
    return calls[0]


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
async def test_sipp_uac_calls_a_softphone_dn_through_a_node_invite_200_ack_bye(
    tmp_path: Path, transport: str
) -> None:
    async with sip_lab(relay=False) as lab, lab_softphone(lab, ("sip1",)) as phone:
        await eventually(lambda: lab.nodes["sip2"].node.phones.get("7002") is not None, timeout=5)
        process = await run_sipp(
            tmp_path,
            str(lab.sip("sip2")),
            "-sn",
            "uac",
            "-s",
            "7002",
            "-d",
            "500",
            "-t",
            transport,
            "-p",
            str(free_tcp_and_udp_port()),
            "-mp",
            str(free_udp_port()),
        )
        await sipp_succeeded(process)
        await eventually(lambda: phone.line.active_count() == 0, timeout=5)
        report = only(phone.reports())
        assert report["end_reason"] == "bye" and report["acked"]
        assert report["node"] == str(lab.sip("sip2"))  # the call node, not its registrar
        assert report["media"]["packets_sent"] > 0
        node_call = only(lab.state("sip2")["sip"]["calls"])
        assert node_call["end_reason"] == "customer-bye" and node_call["caller"] == "sipp"


async def test_sipp_uas_answers_the_call_a_node_forwards_to_the_pstn_agent_phone(
    tmp_path: Path,
) -> None:
    agent_phone = Endpoint("127.0.0.1", free_udp_port())
    async with sip_lab(relay=False, pstn_route=agent_phone) as lab, lab_pstn(lab) as pstn:
        process = await run_sipp(
            tmp_path,
            "-sn",
            "uas",
            "-p",
            str(agent_phone.port),
            "-mp",
            str(free_udp_port()),
            "-rtp_echo",
        )
        await asyncio.sleep(0.3)  # SIPp binds its port; there is no ready signal to wait on
        call = await pstn.place({"to": "7001", "node": "sip1"})
        await eventually(lambda: pstn.find(call.id).state.value == "active", timeout=5)
        await talk(1.0)
        customer = pstn.find(call.id).report()
        assert customer["media"]["talking"], customer  # the agent phone echoes the customer
        pstn.release(call.id)
        await sipp_succeeded(process)
        node_call = only(lab.state("sip1")["sip"]["calls"])
        assert node_call["agent"] == {"kind": "pstn", "dest": str(agent_phone), "status": 200}
        assert node_call["end_reason"] == "customer-bye"
