"""The SIP side's sans-I/O cores, synchronously: the media table's demultiplexing and the B2BUA
call table (no sockets, explicit times)."""

from __future__ import annotations

import pytest

from emulator.common.addresses import Endpoint
from emulator.rtp.meter import RtpSender
from emulator.sipcluster.b2b_calls import (
    TRANSITIONS,
    B2bCall,
    B2bEvent,
    B2bState,
    B2bStateError,
    EndReason,
    announced_ssrc,
)
from emulator.sipcluster.media import MediaTable, Side

CUSTOMER = Endpoint("127.0.3.1", 40000)
AGENT = Endpoint("127.0.3.2", 41000)
RELAY_A = Endpoint("127.0.0.1", 50001)  # a relay session's upstream socket
RELAY_B = Endpoint("127.0.0.1", 50002)


def packet(sender: RtpSender) -> bytes:
    return sender.next_packet().to_bytes()


def test_direct_legs_latch_by_their_sdp_address_and_media_is_bridged_both_ways() -> None:
    table = MediaTable()
    customer, agent = table.open_call("c1", now=0.0)
    customer.expected, agent.expected = CUSTOMER, AGENT
    caller, callee = RtpSender(), RtpSender()
    forward = table.receive(packet(callee), AGENT, 0.02)  # agent first: sent to the SDP address
    assert forward is not None and forward.target == CUSTOMER
    forward = table.receive(packet(caller), CUSTOMER, 0.04)
    assert forward is not None and forward.target == AGENT
    report = table.call_report("c1", 0.05)
    assert report["customer_to_agent"]["packets_received"] == 1
    assert report["agent_to_customer"]["packets_sent"] == 1  # forwarded to the customer


def test_relayed_legs_send_only_where_media_came_from_never_around_the_relay() -> None:
    table = MediaTable()
    customer, agent = table.open_call("c1", now=0.0)
    customer.expected, agent.expected = CUSTOMER, AGENT
    customer.send_before_latch = agent.send_before_latch = False
    customer.announced_ssrc = (caller := RtpSender()).ssrc
    assert table.receive(packet(caller), RELAY_A, 0.02) is None  # agent not heard from yet
    assert table.counters.no_target == 1
    forward = table.receive(packet(RtpSender()), RELAY_B, 0.04)  # the only leg still waiting
    assert forward is not None and forward.target == RELAY_A
    assert agent.source == RELAY_B and customer.source == RELAY_A


def test_an_announced_ssrc_picks_its_leg_among_several_waiting_calls() -> None:
    table = MediaTable()
    first_customer, _ = table.open_call("c1", now=0.0)
    second_customer, _ = table.open_call("c2", now=0.0)
    second = RtpSender()
    first_customer.announced_ssrc = RtpSender().ssrc
    second_customer.announced_ssrc = second.ssrc
    table.receive(packet(second), RELAY_A, 0.02)
    assert second_customer.source == RELAY_A and first_customer.source is None


def test_a_known_stream_from_a_new_source_relatches_its_leg() -> None:
    table = MediaTable()
    customer, agent = table.open_call("c1", now=0.0)
    agent.expected = AGENT
    caller = RtpSender()
    table.receive(packet(caller), RELAY_A, 0.02)
    table.receive(packet(caller), RELAY_B, 0.04)  # the relay renewed its session
    assert customer.source == RELAY_B and table.counters.relatched == 1


def test_bad_rtp_and_strangers_are_counted_and_never_forwarded() -> None:
    table = MediaTable()
    assert table.receive(b"\x00" * 20, RELAY_A, 0.0) is None
    assert table.receive(packet(RtpSender()), RELAY_A, 0.0) is None  # no call waits for it
    assert (table.counters.bad_packets, table.counters.unknown_source) == (1, 1)


def test_silence_after_media_started_marks_the_silent_side() -> None:
    table = MediaTable()
    customer, agent = table.open_call("c1", now=0.0)
    customer.expected, agent.expected = CUSTOMER, AGENT
    caller, callee = RtpSender(), RtpSender()
    table.receive(packet(caller), CUSTOMER, 0.1)
    assert table.silent_call("c1", 3.0, timeout=5.0) is None  # the agent never had media
    table.receive(packet(callee), AGENT, 3.0)
    for tick in range(1, 300):
        table.receive(packet(caller), CUSTOMER, 3.0 + tick * 0.02)
    assert table.silent_call("c1", 8.5, timeout=5.0) is Side.AGENT
    final = table.close_call("c1", 9.0)
    assert not final["agent_to_customer"]["talking"] and table.active_calls == 0


def test_b2b_table_answers_then_ends_once() -> None:
    call = B2bCall("c1", "7002", "+1555", customer=None)  # type: ignore[arg-type]
    call.apply(B2bEvent.AGENT_RINGING, 0.1)
    call.apply(B2bEvent.AGENT_ANSWERED, 0.2)
    call.apply(B2bEvent.CUSTOMER_BYE, 0.3)
    assert call.end_reason is EndReason.CUSTOMER_BYE and call.answered
    with pytest.raises(B2bStateError, match="no transition from ended on agent BYE"):
        call.apply(B2bEvent.AGENT_BYE, 0.4)


@pytest.mark.parametrize("event", [B2bEvent.MEDIA_TIMEOUT, B2bEvent.CUSTOMER_BYE])
def test_events_that_need_an_answered_call_are_refused_while_routing(event: B2bEvent) -> None:
    assert (B2bState.ROUTING, event) not in TRANSITIONS


def test_announced_ssrc_is_read_from_the_sdp() -> None:
    body = b"v=0\r\nm=audio 4000 RTP/AVP 0\r\na=ssrc:305419896 cname:pstn\r\n"
    assert announced_ssrc(body) == 305419896
    assert announced_ssrc(b"v=0\r\na=ssrc:nope\r\n") is None
