"""TCP links on real loopback sockets: relaying, reset cuts, blackholes, heals, TTLs."""

from __future__ import annotations

import asyncio

import pytest

from emulator.links.errors import NotFound
from emulator.links.model import CutMode, LinkState
from emulator.links.relay import Relay
from tests.links.conftest import Events, Upstream, add_link, connect, read_all, roundtrip
from tests.support import eventually


async def test_bytes_flow_both_ways_through_a_link(relay: Relay, upstream: Upstream) -> None:
    link = await add_link(relay, upstream.endpoint)
    reader, writer = await connect(link)
    assert await roundtrip(reader, writer, b"hello") == b"hello"
    payload = bytes(range(256)) * 4096  # 1 MiB, several chunks
    assert await roundtrip(reader, writer, payload) == payload
    writer.close()


async def test_half_close_passes_through_and_the_answer_still_arrives(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    reader, writer = await connect(link)
    writer.write(b"last words")
    writer.write_eof()
    assert await read_all(reader) == b"last words"
    writer.close()


async def test_reset_cut_resets_open_connections_and_refuses_new_ones(
    relay: Relay, upstream: Upstream, events: Events
) -> None:
    link = await add_link(relay, upstream.endpoint)
    reader, writer = await connect(link)
    await roundtrip(reader, writer, b"ping")

    await relay.cut(link.name, CutMode.RESET, ttl=None)

    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(5):
            await reader.read(10)
    await eventually(lambda: all(upstream.closed), timeout=8)
    with pytest.raises(ConnectionRefusedError):
        await connect(link)
    assert events.named("link.cut")[-1] | {"ts": 0} == {
        "ts": 0,
        "service": "links",
        "dc": "",
        "level": "info",
        "event": "link.cut",
        "link": "a-b",
        "mode": "reset",
        "state": "cut",
    }
    writer.close()


async def test_heal_after_a_reset_cut_accepts_new_connections_on_the_same_port(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    port = link.spec.listen.port
    await relay.cut(link.name, CutMode.RESET, ttl=None)
    await relay.heal(link.name)
    assert link.spec.listen.port == port
    reader, writer = await connect(link)
    assert await roundtrip(reader, writer, b"back") == b"back"
    writer.close()


async def test_blackhole_delivers_nothing_but_keeps_connections_open(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    reader, writer = await connect(link)
    await roundtrip(reader, writer, b"ping")

    await relay.cut(link.name, CutMode.BLACKHOLE, ttl=None)
    writer.write(b"into the void")
    await writer.drain()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await reader.read(100)
    assert bytes(upstream.received[0]) == b"ping"
    assert not writer.is_closing() and not upstream.closed[0]
    assert [conn.connected for conn in link.connections()] == [True]

    # A client that connects meanwhile is held too: upstream sees nothing of it.
    late_reader, late_writer = await connect(link)
    late_writer.write(b"late")
    await late_writer.drain()
    await asyncio.sleep(0.1)  # give a (wrongly) flowing relay time to connect upstream
    assert len(upstream.received) == 1

    await relay.heal(link.name)
    # Held bytes resume in order, as TCP would retransmit them after the outage.
    async with asyncio.timeout(5):
        assert await reader.readexactly(13) == b"into the void"
        assert await late_reader.readexactly(4) == b"late"
    reader2, writer2 = await connect(link)
    assert await roundtrip(reader2, writer2, b"new") == b"new"
    for w in (writer, late_writer, writer2):
        w.close()


async def test_a_client_that_gives_up_during_a_blackhole_never_reaches_upstream(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.cut(link.name, CutMode.BLACKHOLE, ttl=None)
    _, writer = await connect(link)
    writer.write(b"stale login")
    await writer.drain()
    writer.close()  # heartbeat timed out: the client gives up before the path heals
    await writer.wait_closed()
    await relay.heal(link.name)
    fresh_reader, fresh_writer = await connect(link)
    assert await roundtrip(fresh_reader, fresh_writer, b"fresh login") == b"fresh login"
    assert [bytes(data) for data in upstream.received] == [b"fresh login"]
    fresh_writer.close()


async def test_blackhole_then_reset_cut_resets_the_held_connections(
    relay: Relay, upstream: Upstream
) -> None:
    link = await add_link(relay, upstream.endpoint)
    reader, writer = await connect(link)
    await roundtrip(reader, writer, b"ping")
    await relay.cut(link.name, CutMode.BLACKHOLE, ttl=None)
    await relay.cut(link.name, CutMode.RESET, ttl=None)
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(5):
            await reader.read(10)
    assert link.state is LinkState.CUT
    writer.close()


async def test_cutting_one_connection_leaves_the_others(relay: Relay, upstream: Upstream) -> None:
    link = await add_link(relay, upstream.endpoint)
    first = await connect(link)
    second = await connect(link)
    await roundtrip(*first, b"one")
    await roundtrip(*second, b"two")
    conns = sorted(link.connections(), key=lambda conn: conn.id)
    assert [(conn.bytes_upstream, conn.bytes_downstream) for conn in conns] == [(3, 3), (3, 3)]
    assert conns[0].client == "{}:{}".format(*first[1].get_extra_info("sockname")[:2])

    await relay.cut_connection(link.name, conns[0].id)

    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(5):
            await first[0].read(10)
    assert await roundtrip(*second, b"still here") == b"still here"
    with pytest.raises(NotFound):
        await relay.cut_connection(link.name, 999)
    first[1].close()
    second[1].close()


async def test_a_cut_with_ttl_heals_by_itself(
    relay: Relay, upstream: Upstream, events: Events
) -> None:
    link = await add_link(relay, upstream.endpoint)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await relay.cut(link.name, CutMode.RESET, ttl=3.0)  # x time scale 0.1 = 0.3 s
    heal_in = relay.heal_in(link.name)
    assert heal_in is not None and 0 < heal_in <= 0.3
    await eventually(lambda: link.state is LinkState.UP, timeout=8)
    assert loop.time() - started >= 0.29
    assert events.named("link.heal")[-1]["reason"] == "ttl"
    assert relay.heal_in(link.name) is None
    reader, writer = await connect(link)
    assert await roundtrip(reader, writer, b"healed") == b"healed"
    writer.close()


async def test_heal_cancels_a_pending_ttl(relay: Relay, upstream: Upstream) -> None:
    link = await add_link(relay, upstream.endpoint)
    await relay.cut(link.name, CutMode.BLACKHOLE, ttl=2.0)
    await relay.heal(link.name)
    await relay.cut(link.name, CutMode.BLACKHOLE, ttl=None)
    await asyncio.sleep(0.4)  # past the first TTL (0.2 s scaled): it must not heal this cut
    assert link.state is LinkState.BLACKHOLE


async def test_a_dead_upstream_resets_the_client(relay: Relay, upstream: Upstream) -> None:
    link = await add_link(relay, upstream.endpoint)
    await upstream.stop()
    reader, writer = await connect(link)
    assert await read_all(reader) == b""
    writer.close()


async def test_closing_the_relay_closes_every_connection(relay: Relay, upstream: Upstream) -> None:
    link = await add_link(relay, upstream.endpoint)
    reader, writer = await connect(link)
    await roundtrip(reader, writer, b"x")
    await relay.aclose()
    assert await read_all(reader) == b""
    with pytest.raises(ConnectionRefusedError):
        await connect(link)
    writer.close()
