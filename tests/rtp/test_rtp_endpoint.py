"""Asyncio RTP endpoints over real loopback UDP sockets."""

from __future__ import annotations

import asyncio
import io
import json
import socket

from emulator.common.jsonlog import JsonLog, flush_all
from emulator.rtp.endpoint import MediaTicker, RtpEndpoint
from emulator.rtp.packet import RtpPacket
from emulator.rtp.relay import RtpRelay
from tests.support import eventually


async def test_two_endpoints_talk_both_ways_at_50_packets_per_second() -> None:
    ticker = MediaTicker()
    async with ticker, RtpEndpoint(ticker=ticker) as a, RtpEndpoint(ticker=ticker) as b:
        assert a.bound.port != 0 and b.bound.port != 0
        a.start(b.bound)
        b.start(a.bound)
        await eventually(lambda: min(a.meter.packets_received, b.meter.packets_received) >= 25)
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent_before = a.sender.packets_sent
        await eventually(lambda: a.sender.packets_sent >= sent_before + 25)
        elapsed = loop.time() - started
        report_a, report_b = a.stop(), b.stop()
    # 25 packets at 20 ms each take about half a second (generous bound for a loaded machine)
    assert 0.35 < elapsed < 2.0
    for report in (report_a, report_b):
        assert report.talking
        assert report.packets_received > 0
        assert report.bad_packets == 0
        assert report.longest_gap_ms < 1000


async def test_garbage_and_wrong_version_datagrams_are_counted_and_dropped() -> None:
    stream = io.StringIO()
    async with RtpEndpoint(log=JsonLog("test", stream=stream), label="call-1") as rtp:
        rtp.start(None)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            wrong_version = bytearray(RtpPacket(0, 1, 1, 1, b"x").to_bytes())
            wrong_version[0] = 0x40
            raw.sendto(bytes(wrong_version), tuple(rtp.bound))
            raw.sendto(b"hello", tuple(rtp.bound))
            raw.sendto(RtpPacket(0, 5, 1, 1, b"ok").to_bytes(), tuple(rtp.bound))
            await eventually(lambda: rtp.meter.packets_received == 1)
            await eventually(lambda: rtp.meter.bad_packets == 2)
        report = rtp.stop()
    assert report.packets_received == 1 and report.bad_packets == 2
    flush_all()
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events.count("rtp.bad_packet") == 2


async def test_silence_is_reported_as_a_media_gap_and_its_end_too() -> None:
    stream = io.StringIO()
    gaps: list[tuple[str, float]] = []
    async with (
        RtpEndpoint(
            log=JsonLog("test", stream=stream),
            gap_threshold=0.2,
            on_gap=lambda state, gap: gaps.append((state, gap)),
        ) as listener,
        RtpEndpoint() as talker,
    ):
        listener.start(None)
        talker.start(listener.bound)
        await eventually(lambda: listener.meter.packets_received >= 5)
        talker.stop()
        await eventually(lambda: [state for state, _ in gaps] == ["started"])
        await eventually(lambda: listener.silence() > 0.3)
        silent_for = listener.silence()
        talker_again = RtpEndpoint()
        async with talker_again:
            talker_again.start(listener.bound)
            await eventually(lambda: len(gaps) == 2)
        report = listener.stop()
    assert gaps[1][0] == "ended" and gaps[1][1] >= silent_for
    assert report.longest_gap_ms >= 200
    assert not report.talking
    flush_all()
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [entry["state"] for entry in logged if entry["event"] == "media.gap"] == [
        "started",
        "ended",
    ]


async def test_a_silence_under_the_gap_threshold_is_logged_as_a_dropout_not_a_gap() -> None:
    stream = io.StringIO()
    async with RtpEndpoint(log=JsonLog("test", stream=stream), label="c1") as rtp:
        rtp.start(None)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            for sequence, pause in ((1, 0.0), (2, 0.02), (3, 0.4), (4, 0.02)):
                await asyncio.sleep(pause)
                raw.sendto(
                    RtpPacket(0, sequence, sequence * 160, 7, b"x").to_bytes(), tuple(rtp.bound)
                )
            await eventually(lambda: rtp.meter.packets_received == 4)
        report = rtp.stop()
    assert 380 <= report.longest_gap_ms < 1000  # under the 1 s threshold
    flush_all()
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    dropouts = [entry for entry in logged if entry["event"] == "media.dropout"]
    assert [entry["call"] for entry in dropouts] == ["c1"]
    assert 380 <= dropouts[0]["gap_ms"] < 1000
    assert not [entry for entry in logged if entry["event"] == "media.gap"]


async def test_latching_endpoint_answers_where_the_media_comes_from() -> None:
    async with RtpEndpoint(latch=True) as node, RtpEndpoint() as phone:
        node.start(None)
        phone.start(node.bound)
        await eventually(lambda: node.remote == phone.bound)
        await eventually(lambda: phone.meter.packets_received >= 3)
        assert phone.stop().packets_received >= 3


async def test_relay_forwards_both_ways_and_measures_each_direction() -> None:
    ticker = MediaTicker()
    async with (
        ticker,
        RtpRelay() as relay,
        RtpEndpoint(ticker=ticker) as customer,
        RtpEndpoint(ticker=ticker) as agent,
    ):
        assert relay.a.bound is not None and relay.b.bound is not None
        relay.start(a_remote=customer.bound, b_remote=agent.bound)
        customer.start(relay.a.bound)
        agent.start(relay.b.bound)
        await eventually(
            lambda: customer.meter.packets_received >= 25 and agent.meter.packets_received >= 25
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"\x00" * 20, tuple(relay.a.bound))  # version 0: dropped, not forwarded
            await eventually(lambda: relay.report()["a_to_b"].bad_packets == 1)
        reports = relay.close()
        customer_report, agent_report = customer.stop(), agent.stop()
    for direction in ("a_to_b", "b_to_a"):
        assert reports[direction].talking and reports[direction].packets_lost == 0
    assert reports["a_to_b"].packets_received >= agent_report.packets_received
    assert customer_report.talking and agent_report.talking
    assert agent_report.bad_packets == 0


async def test_relay_latches_onto_where_media_really_comes_from() -> None:
    async with RtpRelay() as relay, RtpEndpoint() as customer, RtpEndpoint() as agent:
        assert relay.a.bound is not None and relay.b.bound is not None
        relay.start()  # no SDP addresses known: both legs learn them from the media
        customer.start(relay.a.bound)
        agent.start(relay.b.bound)
        await eventually(lambda: relay.a.remote == customer.bound and relay.b.remote == agent.bound)
        await eventually(
            lambda: min(customer.meter.packets_received, agent.meter.packets_received) > 5
        )
