"""``LinksClient``, the typed client the lab CLI uses, against the real service."""

from __future__ import annotations

import asyncio

import pytest

from emulator.links.client import LinksClient
from emulator.links.errors import BadRequest, Conflict, NotFound, Unavailable
from emulator.links.model import LinkState, Protocol
from emulator.links.toxics import Latency, ToxicType
from tests.links.conftest import Events, Upstream, read_all, roundtrip


async def test_client_drives_a_link_through_cut_heal_and_toxics(
    client: LinksClient, upstream: Upstream, events: Events
) -> None:
    created = await client.create("gws1-sip1", upstream.endpoint)
    assert (created.state, created.protocol, created.toxics) == (LinkState.UP, Protocol.TCP, ())
    host, port = created.listen.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    await roundtrip(reader, writer, b"hi")

    (conn,) = await client.connections("gws1-sip1")
    assert (conn.bytes_upstream, conn.bytes_downstream, conn.connected) == (2, 2, True)

    toxic = await client.add_toxic("gws1-sip1", "latency", {"latency": 20}, toxic_name="lag")
    assert (toxic.name, toxic.type, toxic.attributes) == ("lag", ToxicType.LATENCY, Latency(20))
    updated = await client.update_toxic("gws1-sip1", "lag", attributes={"jitter": 5})
    assert updated.attributes == Latency(20, 5)
    assert [t.name for t in await client.toxics("gws1-sip1")] == ["lag"]
    await client.remove_toxic("gws1-sip1", "lag")

    cut = await client.cut("gws1-sip1", mode="blackhole", ttl=60)
    assert cut.state is LinkState.BLACKHOLE and cut.heal_in is not None
    assert (await client.heal("gws1-sip1")).state is LinkState.UP
    await client.cut("gws1-sip1")
    assert await read_all(reader) == b""
    assert (await client.health()) == {"gws1-sip1": LinkState.CUT}
    await client.heal_all()
    assert (await client.get("gws1-sip1")).state is LinkState.UP

    faults = [r["event"] for r in events.all() if r["level"] == "info"]
    assert faults == [
        "link.create",
        "toxic.add",
        "toxic.update",
        "toxic.remove",
        "link.cut",
        "link.heal",
        "link.cut",
        "link.heal",
    ]
    writer.close()


async def test_client_raises_the_relays_errors_with_its_messages(
    client: LinksClient, upstream: Upstream
) -> None:
    with pytest.raises(NotFound, match="proxy not found"):
        await client.cut("nope")
    await client.create("a", upstream.endpoint)
    with pytest.raises(Conflict, match="proxy already exists"):
        await client.create("a", upstream.endpoint)
    with pytest.raises(BadRequest, match="must be >= 0"):
        await client.add_toxic("a", "latency", {"latency": -1})
    await client.populate([{"name": "b", "upstream": str(upstream.endpoint)}])
    assert sorted(await client.list()) == ["a", "b"]
    cut = await client.cut_many(["a", "b"], mode="blackhole", ttl=100)
    assert [(p.name, p.state) for p in cut] == [
        ("a", LinkState.BLACKHOLE),
        ("b", LinkState.BLACKHOLE),
    ]
    assert [p.state for p in await client.heal_many(["a"])] == [LinkState.UP]
    with pytest.raises(NotFound, match="proxy not found: zz"):
        await client.cut_many(["a", "zz"])
    await client.set_enabled("b", False)
    await client.reset()
    assert {p.state for p in (await client.list()).values()} == {LinkState.UP}
    await client.delete("b")
    assert sorted(await client.list()) == ["a"]
    assert (await client.version()).startswith("2.12.0")


async def test_client_reports_an_unreachable_relay() -> None:
    async with LinksClient("127.0.0.1:9", timeout=2.0) as client:
        with pytest.raises(Unavailable, match=r"links API http://127\.0\.0\.1:9"):
            await client.list()
