"""Each toxic has an effect you can observe on a real connection through a link."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from emulator.links.relay import Relay
from emulator.links.toxics import ToxicSpec, parse_toxic
from tests.links.conftest import Events, Upstream, add_link, connect, read_all, roundtrip


def toxic(type_: str, stream: str = "downstream", **attributes: int) -> ToxicSpec:
    return parse_toxic({"type": type_, "stream": stream, "attributes": attributes})


async def median_rtt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    loop = asyncio.get_running_loop()
    samples = []
    for _ in range(5):
        started = loop.time()
        await roundtrip(reader, writer, b"x")
        samples.append(loop.time() - started)
    return statistics.median(samples)


async def test_latency_adds_its_delay_to_a_round_trip_against_a_baseline(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    reader, writer = await connect(link)
    baseline = await median_rtt(reader, writer)
    await relay.add_toxic(link.name, toxic("latency", latency=100), ttl=None)
    delayed = await median_rtt(reader, writer)
    assert delayed - baseline >= 0.09
    assert delayed < baseline + 0.5  # wide margin for a loaded machine
    writer.close()


async def test_upstream_latency_and_downstream_latency_add_up(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.add_toxic(link.name, toxic("latency", "upstream", latency=60), ttl=None)
    await relay.add_toxic(link.name, toxic("latency", latency=60), ttl=None)
    reader, writer = await connect(link)
    assert await median_rtt(reader, writer) >= 0.115
    writer.close()


async def test_removing_a_toxic_applies_to_connections_already_open(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.add_toxic(link.name, toxic("latency", latency=300), ttl=None)
    reader, writer = await connect(link)
    assert await median_rtt(reader, writer) >= 0.29
    await relay.remove_toxic(link.name, "latency_downstream")
    assert await median_rtt(reader, writer) < 0.25
    writer.close()


async def test_a_toxic_with_ttl_removes_itself(
    relay: Relay, upstream: Upstream, events: Events
) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.add_toxic(link.name, toxic("latency", latency=50), ttl=2.0)
    assert link.toxics
    async with asyncio.timeout(5):
        while link.toxics:
            await asyncio.sleep(0.01)
    assert events.named("toxic.remove")[-1]["reason"] == "ttl"


async def test_bandwidth_limits_the_transfer_rate(relay: Relay, upstream: Upstream) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.add_toxic(link.name, toxic("bandwidth", rate=100), ttl=None)
    reader, writer = await connect(link)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await roundtrip(reader, writer, b"z" * 30_000)  # 30 KB at 100 KB/s: 0.3 s
    assert loop.time() - started >= 0.28
    writer.close()


async def test_slicer_delivers_the_data_in_small_slices(relay: Relay, upstream: Upstream) -> None:
    link = await add_link(relay, upstream.endpoint)
    slicer = toxic("slicer", average_size=100, size_variation=20, delay=20_000)  # 20 ms apart
    await relay.add_toxic(link.name, slicer, ttl=None)
    reader, writer = await connect(link)
    payload = bytes(range(250)) * 4  # one 1000-byte chunk: about 10 slices
    writer.write(payload)
    await writer.drain()
    loop = asyncio.get_running_loop()
    reads: list[tuple[float, bytes]] = []
    async with asyncio.timeout(5):
        while sum(len(data) for _, data in reads) < len(payload):
            data = await reader.read(65536)
            reads.append((loop.time(), data))
    assert b"".join(data for _, data in reads) == payload
    # A loaded reader may find several slices at once, but they arrived spread over time.
    assert len(reads) >= 3
    assert reads[-1][0] - reads[0][0] >= 0.1
    writer.close()


async def test_limit_data_closes_the_connection_after_that_many_bytes(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.add_toxic(link.name, toxic("limit_data", bytes=10), ttl=None)
    reader, writer = await connect(link)
    writer.write(b"0123456789abcdef")
    await writer.drain()
    assert await read_all(reader) == b"0123456789"
    writer.close()


async def test_timeout_drops_data_and_closes_after_the_timeout(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.add_toxic(link.name, toxic("timeout", "upstream", timeout=300), ttl=None)
    loop = asyncio.get_running_loop()
    reader, writer = await connect(link)
    started = loop.time()
    writer.write(b"never arrives")
    await writer.drain()
    assert await read_all(reader) == b""
    assert loop.time() - started >= 0.25
    assert upstream.total == 0
    writer.close()


async def test_timeout_zero_holds_until_removed_and_removal_closes(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.add_toxic(link.name, toxic("timeout", timeout=0), ttl=None)
    reader, writer = await connect(link)
    writer.write(b"dropped")
    await writer.drain()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await reader.read(100)
    await relay.remove_toxic(link.name, "timeout_downstream")
    assert await read_all(reader) == b""
    writer.close()


async def test_reset_peer_resets_the_connection_after_its_timeout(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.add_toxic(link.name, toxic("reset_peer", "upstream", timeout=200), ttl=None)
    loop = asyncio.get_running_loop()
    reader, writer = await connect(link)
    started = loop.time()
    writer.write(b"hello")
    await writer.drain()
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(5):
            await reader.read(100)
    assert loop.time() - started >= 0.18
    writer.close()


async def test_toxicity_zero_leaves_connections_untouched(relay: Relay, upstream: Upstream) -> None:
    link = await add_link(relay, upstream.endpoint)
    spec = parse_toxic({"type": "limit_data", "toxicity": 0.0, "attributes": {"bytes": 1}})
    await relay.add_toxic(link.name, spec, ttl=None)
    reader, writer = await connect(link)
    assert await roundtrip(reader, writer, b"all of it") == b"all of it"
    writer.close()
