"""RTP packets and the receive meter, sans-I/O: bytes and explicit times in, reports out."""

from __future__ import annotations

import struct

import pytest

from emulator.rtp.meter import PCMU_SILENCE, ReceiveMeter, RtpSender
from emulator.rtp.packet import BadRtpPacket, RtpPacket


def test_packet_round_trips_with_marker_and_csrcs() -> None:
    packet = RtpPacket(0, 65535, 2**32 - 1, 0xDEADBEEF, b"abc", marker=True, csrcs=(1, 2))
    wire = packet.to_bytes()
    assert wire[0] == 0x82  # V=2, CC=2
    assert wire[1] == 0x80  # M=1, PT=0
    assert len(wire) == 12 + 8 + 3
    assert RtpPacket.parse(wire) == packet


def test_header_fields_are_where_rfc_3550_puts_them() -> None:
    wire = RtpPacket(8, 0x1234, 0x01020304, 0x0A0B0C0D, b"").to_bytes()
    assert wire == bytes.fromhex("8008123401020304 0a0b0c0d".replace(" ", ""))


@pytest.mark.parametrize("version", [0, 1, 3])
def test_packet_with_a_version_other_than_2_is_rejected(version: int) -> None:
    wire = bytearray(RtpPacket(0, 1, 1, 1, b"x").to_bytes())
    wire[0] = (version << 6) | (wire[0] & 0x3F)
    with pytest.raises(BadRtpPacket, match=f"version {version}"):
        RtpPacket.parse(bytes(wire))


@pytest.mark.parametrize(
    "wire",
    [
        b"\x80\x00",
        b"\x8f" + bytes(11),  # CSRC count 15 but no CSRCs
        b"\xa0" + bytes(11) + b"\x00",  # padding flag with zero padding length
        b"\x90" + bytes(11),  # extension flag without extension header
    ],
)
def test_truncated_or_inconsistent_packets_are_rejected(wire: bytes) -> None:
    with pytest.raises(BadRtpPacket):
        RtpPacket.parse(wire)


def test_padding_and_extension_are_skipped() -> None:
    header = bytes([0x80 | 0x20 | 0x10, 0]) + struct.pack("!HII", 1, 2, 3)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"EXT!"
    wire = header + extension + b"data" + b"\x00\x00\x03"
    assert RtpPacket.parse(wire).payload == b"data"


def test_sender_produces_20ms_pcmu_packets_with_wrapping_sequence() -> None:
    sender = RtpSender(ssrc=7, sequence=65534)
    packets = [sender.next_packet() for _ in range(3)]
    assert [p.sequence for p in packets] == [65534, 65535, 0]
    assert packets[1].timestamp - packets[0].timestamp == 160
    assert packets[0].marker and not packets[1].marker
    assert packets[0].payload == PCMU_SILENCE and len(PCMU_SILENCE) == 160
    assert sender.packets_sent == 3


def feed(meter: ReceiveMeter, sequences: list[int], start: float = 0.0, ssrc: int = 1) -> float:
    now = start
    for sequence in sequences:
        now += 0.02
        meter.on_packet(RtpPacket(0, sequence % 65536, 0, ssrc), now)
    return now


def test_meter_counts_loss_from_sequence_holes() -> None:
    meter = ReceiveMeter()
    meter.start(0.0)
    end = feed(meter, [10, 11, 13, 14, 17])
    report = meter.report(end, packets_sent=5)
    assert report.packets_received == 5
    assert report.packets_lost == 3
    assert report.loss_ratio == pytest.approx(3 / 8)


def test_meter_handles_sequence_wrap_reordering_and_duplicates() -> None:
    meter = ReceiveMeter()
    meter.start(0.0)
    end = feed(meter, [65533, 65535, 65534, 0, 0, 1])
    report = meter.report(end, packets_sent=6)
    assert report.packets_received == 5
    assert report.packets_lost == 0


def test_meter_restarts_on_a_large_sequence_jump_and_on_a_new_ssrc() -> None:
    meter = ReceiveMeter()
    meter.start(0.0)
    now = feed(meter, [1, 2, 3])
    now = feed(meter, [30000, 30001], start=now)
    now = feed(meter, [500, 502], start=now, ssrc=2)
    report = meter.report(now, packets_sent=1)
    assert report.packets_received == 7
    assert report.packets_lost == 1


def test_longest_gap_is_measured_between_arrivals() -> None:
    meter = ReceiveMeter()
    meter.start(0.0)
    meter.on_packet(RtpPacket(0, 1, 0, 1), 0.02)
    assert meter.on_packet(RtpPacket(0, 2, 0, 1), 0.04) == pytest.approx(0.02)
    assert meter.on_packet(RtpPacket(0, 3, 0, 1), 0.74) == pytest.approx(0.70)
    meter.on_packet(RtpPacket(0, 4, 0, 1), 0.76)
    report = meter.report(0.77, packets_sent=10)
    assert report.longest_gap_ms == pytest.approx(700.0)
    assert report.talking


def test_a_gap_over_one_second_means_not_talking() -> None:
    meter = ReceiveMeter()
    meter.start(0.0)
    meter.on_packet(RtpPacket(0, 1, 0, 1), 0.02)
    meter.on_packet(RtpPacket(0, 2, 0, 1), 1.25)
    report = meter.report(1.26, packets_sent=60)
    assert report.longest_gap_ms == pytest.approx(1230.0)
    assert not report.talking


def test_silence_at_the_end_counts_as_a_gap_until_the_meter_stops() -> None:
    meter = ReceiveMeter()
    meter.start(0.0)
    feed(meter, [1, 2, 3])
    assert meter.silence(2.0) == pytest.approx(1.94)
    meter.stop(2.5)
    report = meter.report(10.0, packets_sent=100)
    assert report.longest_gap_ms == pytest.approx(2440.0)
    assert report.duration_ms == pytest.approx(2500.0)
    assert not report.talking


def test_talking_needs_media_both_ways() -> None:
    meter = ReceiveMeter()
    meter.start(0.0)
    end = feed(meter, list(range(10)))
    assert meter.report(end, packets_sent=10).talking
    assert not meter.report(end, packets_sent=0).talking
    silent = ReceiveMeter()
    silent.start(0.0)
    assert not silent.report(0.1, packets_sent=5).talking


def test_bad_packets_are_counted() -> None:
    meter = ReceiveMeter()
    meter.on_bad_packet()
    meter.on_bad_packet()
    assert meter.report(0.0, packets_sent=0).bad_packets == 2
