"""Softphone calls over real loopback UDP: answer, RTP both ways, and every way a call ends."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from softphone_test_helpers import (
    Caller,
    LogCapture,
    capture_log,
    phone_config,
)

from clients.softphone.control import ControlServer
from clients.softphone.phone import Softphone
from emulator.common.timescale import TimeScale
from emulator.sip.builder import make_cancel
from emulator.sip.message import Request, Response
from emulator.sip.parser import parse_datagram
from emulator.sip.registrar import RegistrarService
from tests.support import eventually, free_udp_port


@asynccontextmanager
async def registered_phone(**overrides: Any) -> AsyncIterator[tuple[Softphone, LogCapture]]:
    log, records = capture_log()
    registrar = RegistrarService(name="sip2", scale=TimeScale(0.05))
    async with (
        registrar,
        Softphone(phone_config([("sip2", registrar.bound)], **overrides), log) as phone,
    ):
        await eventually(lambda: phone.status()["registered"])
        yield phone, records


def only_call(phone: Softphone) -> dict[str, Any]:
    (report,) = phone.line.reports()
    return report


async def test_call_is_answered_and_media_flows_both_ways_until_bye() -> None:
    async with registered_phone() as (phone, records), Caller() as caller:
        statuses: list[int] = []
        final = await caller.call(
            phone.sip_bound, on_provisional=lambda r: statuses.append(r.status)
        )
        assert final.status == 200 and statuses == [100, 180]
        await eventually(lambda: caller.rtp.meter.packets_received >= 50)
        await eventually(lambda: only_call(phone)["media"]["packets_received"] >= 50)
        assert only_call(phone)["state"] == "active" and only_call(phone)["acked"]
        assert (await caller.hang_up()).status == 200
        report = only_call(phone)
        caller_report = caller.rtp.stop()
    assert report["state"] == "ended" and report["end_reason"] == "bye" and not report["lost"]
    media = report["media"]
    assert media["talking"] and media["packets_lost"] == 0
    assert media["packets_sent"] >= 50 and media["packets_received"] >= 50
    assert media["longest_gap_ms"] < 1000
    assert caller_report.talking and caller_report.packets_lost == 0
    assert report["node"] == str(caller.ua.transport.bound)  # not one of its registrars
    events = [r["event"] for r in records.records() if r["event"].startswith("call.")]
    assert events == ["call.ringing", "call.answered", "call.ended"]


async def test_silent_media_ends_the_call_as_lost_with_rtp_loss_and_a_bye() -> None:
    async with registered_phone(rtp_timeout=1.2) as (phone, records), Caller() as caller:
        await caller.call(phone.sip_bound)
        await eventually(lambda: only_call(phone)["media"]["packets_received"] >= 10)
        caller.rtp.stop()  # the customer's media path is gone
        await eventually(lambda: only_call(phone)["state"] == "ended")
        await eventually(lambda: len(caller.byes) == 1)
        report = only_call(phone)
    assert report["end_reason"] == "rtp-loss" and report["lost"]
    assert not report["media"]["talking"]
    gaps = records.records("media.gap")
    assert gaps and gaps[0]["state"] == "started"
    (ended,) = records.records("call.ended")
    assert ended["level"] == "warning" and ended["end_reason"] == "rtp-loss"


async def test_unacknowledged_answer_ends_the_call_as_timeout() -> None:
    async with registered_phone() as (phone, _), Caller() as caller:
        assert (await caller.call(phone.sip_bound, ack=False)).status == 200
        # 64*T1 scaled: 64 * 0.5 s * 0.05 = 1.6 s of 200 retransmissions, then BYE
        await eventually(lambda: only_call(phone)["state"] == "ended")
        report = only_call(phone)
        await eventually(lambda: len(caller.byes) == 1)
    assert report["end_reason"] == "timeout" and report["lost"] and not report["acked"]


async def test_cancel_while_ringing_ends_the_call_with_487() -> None:
    async with registered_phone(auto_answer=False) as (phone, _), Caller() as caller:
        invite = caller.invite(phone.sip_bound)
        ringing = asyncio.Event()
        pending = asyncio.create_task(
            caller.call(phone.sip_bound, invite=invite, on_provisional=lambda _: ringing.set())
        )
        await asyncio.wait_for(ringing.wait(), 10)
        assert only_call(phone)["state"] == "ringing"
        assert (await caller.ua.request(make_cancel(invite), phone.sip_bound)).status == 200
        assert (await asyncio.wait_for(pending, 10)).status == 487
        report = only_call(phone)
    assert report["end_reason"] == "cancel" and not report["lost"]


async def test_control_api_answers_and_releases_calls_and_reports_status() -> None:
    async with (
        registered_phone(auto_answer=False) as (phone, _),
        ControlServer(phone) as control,
        Caller() as caller,
        aiohttp.ClientSession(f"http://{control.bound}") as http,
    ):
        async with http.get("/health") as health:
            assert health.status == 200 and (await health.json())["status"] == "ok"
        async with http.get("/status") as status:
            body = await status.json()
        assert body["registrar"] == "sip2" and body["registered"]
        assert body["registration"]["state"] == "registered" and body["dn"] == "7002"
        pending = asyncio.create_task(caller.call(phone.sip_bound))
        await eventually(lambda: len(phone.line.calls) == 1)
        async with http.get("/calls") as calls:
            (entry,) = (await calls.json())["calls"]
        assert entry["state"] == "ringing" and entry["id"] == "c1"
        async with http.post("/calls/c1/answer") as answered:
            assert answered.status == 200
            assert (await answered.json())["call"]["state"] == "active"
        assert (await asyncio.wait_for(pending, 10)).status == 200
        await eventually(lambda: caller.rtp.meter.packets_received >= 10)
        async with http.post(f"/calls/{entry['call_id']}/release") as released:
            assert released.status == 200
            assert (await released.json())["call"]["end_reason"] == "released"
        await eventually(lambda: len(caller.byes) == 1)
        async with http.post("/calls/c1/answer") as again:
            assert again.status == 409
        async with http.post("/calls/c9/release") as unknown:
            assert unknown.status == 404
        async with http.get("/calls/c1") as one:
            assert (await one.json())["call"]["media"]["packets_received"] >= 1


async def test_busy_phone_answers_486_and_bad_offers_488() -> None:
    async with registered_phone(max_calls=1, auto_answer=False) as (phone, _):
        async with Caller() as first, Caller() as second:
            pending = asyncio.create_task(first.call(phone.sip_bound))
            await eventually(lambda: len(phone.line.calls) == 1)
            assert (await second.call(phone.sip_bound)).status == 486
            phone.release("c1")
            assert (await asyncio.wait_for(pending, 10)).status == 603
        async with Caller() as third:
            invite = third.invite(phone.sip_bound)
            gsm_only = invite.body.replace(b"RTP/AVP 0", b"RTP/AVP 3").replace(
                b"a=rtpmap:0 PCMU/8000\r\n", b""
            )
            bad = Request(invite.method, invite.uri, invite.headers, gsm_only)
            assert (await third.call(phone.sip_bound, invite=bad)).status == 488


def udp_ask(target: Any, payload: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.settimeout(0.5)
        raw.sendto(payload, tuple(target))
        try:
            return raw.recv(65536)
        except TimeoutError:
            return None


async def test_softphone_survives_garbage_and_answers_bad_requests() -> None:
    async with registered_phone() as (phone, _):
        target = phone.sip_bound
        register = (
            b"REGISTER sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKq\r\n"
            b"From: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: q@h\r\nCSeq: 1 REGISTER\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        answers = await asyncio.gather(
            asyncio.to_thread(udp_ask, target, b"\x00garbage"),
            asyncio.to_thread(udp_ask, target, register),
            asyncio.to_thread(
                udp_ask, target, register.replace(b"REGISTER", b"FROB").replace(b"bKq", b"bKf")
            ),
        )
        assert answers[0] is None
        statuses = [parse_datagram(a or b"") for a in answers[1:]]
        assert all(isinstance(s, Response) for s in statuses)
        assert [s.status for s in statuses if isinstance(s, Response)] == [405, 501]
        counters = phone.status()["counters"]
        assert counters["sip_garbage_dropped"] == 1
        assert counters["sip_requests_rejected"] == 2
        assert phone.status()["registered"]


@pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (Debian sip-tester) not installed")
async def test_sipp_uac_calls_the_softphone_invite_200_ack_bye(tmp_path: Path) -> None:
    async with registered_phone() as (phone, _):
        process = await asyncio.create_subprocess_exec(
            "sipp",
            str(phone.sip_bound),
            "-sn",
            "uac",
            "-s",
            "7002",
            "-m",
            "1",
            "-d",
            "500",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port()),
            "-mp",
            str(free_udp_port()),
            "-timeout",
            "30s",
            "-timeout_error",
            "-nostdin",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, output.decode(errors="replace")[-2000:]
        await eventually(lambda: only_call(phone)["state"] == "ended")
        report = only_call(phone)
    assert report["end_reason"] == "bye" and report["acked"]
    assert report["media"]["packets_sent"] > 0
