"""A peer's bad input is answered with a precise EventError and never hurts anyone else.

Raw sockets speak hand-made frames (4-byte big-endian length + JSON, DESIGN §2.1) to a node's
T-Lib port while a well-behaved desktop on the same node (agent1 Ready on 7001) must keep its
state and keep being answered. The control HTTP endpoint and the TC port get the same treatment.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sipcluster.config import NodeConfig
from emulator.sipcluster.service import NodeService
from emulator.tlib.errors import ErrorCode
from emulator.tlib.messages import EventName, RequestAgentReady, RequestAnswerCall
from tests.sipcluster.conftest import FAST_TIMERS, Cluster, Desk
from tests.sipcluster.test_cluster_rules import login, owner_desk, query
from tests.support import LOOPBACK

ClusterFactory = Callable[..., Awaitable[Cluster]]

# Raw clients here send no heartbeats: give them a long ADDP allowance so a slow machine does not
# turn a bad-input test into a liveness test.
PATIENT_TIMERS = dataclasses.replace(FAST_TIMERS, addp_interval=2.0, addp_timeout=8.0)
HEADER = struct.Struct(">I")


class RawPeer:
    """A hand-made framed connection: whatever bytes we like out, frames (or EOF) in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, endpoint: str) -> RawPeer:
        host, port = endpoint.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    def send_body(self, body: bytes) -> None:
        self.writer.write(HEADER.pack(len(body)) + body)

    def send(self, obj: Any) -> None:
        self.send_body(json.dumps(obj).encode())

    async def receive(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next frame other than a heartbeat, or None once the node closed the connection."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    header = await self.reader.readexactly(HEADER.size)
                    (length,) = HEADER.unpack(header)
                    frame = json.loads(await self.reader.readexactly(length))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return None
                assert isinstance(frame, dict)
                if frame.get("message") != "Heartbeat":
                    return frame

    async def request(self, obj: Any) -> dict[str, Any]:
        self.send(obj)
        answer = await self.receive()
        assert answer is not None, "the node closed the connection"
        return answer

    async def closed_by_node(self, timeout: float = 5.0) -> bool:
        return await self.receive(timeout) is None

    def close(self) -> None:
        self.writer.transport.abort()


@dataclass
class Bench:
    cluster: Cluster
    bystander: Desk  # agent1 on 7001, Ready, on the same node as the raw peers
    tlib: str
    peers: list[RawPeer] = field(default_factory=list)

    async def raw(self) -> RawPeer:
        peer = await RawPeer.connect(self.tlib)
        self.peers.append(peer)
        return peer

    async def bystander_unaffected(self) -> None:
        """The other desktop kept its agent state and is still answered; the node still takes
        new desktops."""
        info = await query(self.bystander, "7001")
        assert (info.get("AgentID"), info.get("AgentState")) == ("agent1", "Ready")
        again = await self.bystander.send(RequestAgentReady, "7001")
        assert again.name is EventName.EVENT_AGENT_READY
        newcomer = await self.raw()
        registered = await newcomer.request(
            {"message": "RequestRegisterAddress", "ReferenceID": 1, "ThisDN": "7003"}
        )
        assert registered["message"] == "EventRegistered"


@pytest.fixture
async def bench(cluster_factory: ClusterFactory) -> AsyncIterator[Bench]:
    cluster = await cluster_factory(("sip1",), timers=PATIENT_TIMERS)
    bystander = await owner_desk(cluster, "sip1", "7001")
    await login(bystander, "7001", "agent1")
    await bystander.send(RequestAgentReady, "7001")
    made = Bench(cluster, bystander, cluster.nodes["sip1"].endpoints["tlib"])
    yield made
    for peer in made.peers:
        peer.close()


def assert_error(event: dict[str, Any], code: ErrorCode, *named: str) -> None:
    assert event["message"] == "EventError", event
    assert event["ErrorCode"] == code, event
    for text in named:
        assert text in event["ErrorMessage"], event


# -- framing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", [HEADER.pack(0), HEADER.pack(0xFFFFFFFF)], ids=["zero", "over-1MiB"]
)
async def test_bad_length_prefix_is_answered_then_the_connection_is_closed(
    bench: Bench, prefix: bytes
) -> None:
    raw = await bench.raw()
    raw.send_bytes(prefix + b"{}")
    error = await raw.receive()
    assert error is not None
    assert_error(
        error, ErrorCode.MALFORMED_FRAME, "bad frame length", str(HEADER.unpack(prefix)[0])
    )
    assert await raw.closed_by_node()
    await bench.bystander_unaffected()


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'"a string"'],
    ids=["not-json", "not-utf8", "array", "string"],
)
async def test_frame_that_is_not_a_json_object_is_answered_and_the_connection_kept(
    bench: Bench, body: bytes
) -> None:
    raw = await bench.raw()
    raw.send_body(body)
    error = await raw.receive()
    assert error is not None
    assert_error(error, ErrorCode.MALFORMED_FRAME)
    assert "JSON" in error["ErrorMessage"]
    registered = await raw.request(
        {"message": "RequestRegisterAddress", "ReferenceID": 2, "ThisDN": "7002"}
    )
    assert (registered["message"], registered["ReferenceID"]) == ("EventRegistered", 2)
    await bench.bystander_unaffected()


async def test_deeply_nested_json_is_answered_with_an_error(bench: Bench) -> None:
    raw = await bench.raw()
    raw.send_body(b"[" * 100_000)
    error = await raw.receive()
    assert error is not None, "the node dropped the connection without an EventError"
    assert_error(error, ErrorCode.MALFORMED_FRAME)
    await bench.bystander_unaffected()


async def test_huge_integer_is_answered_with_an_error(bench: Bench) -> None:
    raw = await bench.raw()
    raw.send_body(
        b'{"message": "RequestQueryAddress", "ThisDN": "7001", "ReferenceID": 1%s}' % (b"0" * 5000)
    )
    error = await raw.receive()
    assert error is not None, "the node dropped the connection without an EventError"
    assert_error(error, ErrorCode.MALFORMED_FRAME)
    await bench.bystander_unaffected()


# -- messages -------------------------------------------------------------------------------


async def test_unknown_message_is_answered_with_error_57_naming_it(bench: Bench) -> None:
    raw = await bench.raw()
    error = await raw.request({"message": "RequestTeleport", "ReferenceID": 7, "ThisDN": "7001"})
    assert_error(error, ErrorCode.UNKNOWN_REQUEST, "RequestTeleport")
    assert error["ErrorCode"] == 57
    assert error["ReferenceID"] == 7
    await bench.bystander_unaffected()


async def test_event_sent_by_a_desktop_is_answered_as_an_unknown_request(bench: Bench) -> None:
    raw = await bench.raw()
    error = await raw.request({"message": "EventAgentReady", "ReferenceID": 8, "ThisDN": "7001"})
    assert_error(error, ErrorCode.UNKNOWN_REQUEST, "EventAgentReady")
    await bench.bystander_unaffected()


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        ({"message": "RequestQueryAddress", "ReferenceID": 9}, "ThisDN"),
        ({"ReferenceID": 9, "ThisDN": "7001"}, "message"),
        ({"message": "RequestQueryAddress", "ThisDN": "7001"}, "ReferenceID"),
        ({"message": "RequestAgentLogin", "ReferenceID": 9, "ThisDN": "7001"}, "AgentID"),
        ({"message": "RequestAnswerCall", "ReferenceID": 9, "ThisDN": "7001"}, "ConnID"),
    ],
    ids=["ThisDN", "message", "ReferenceID", "AgentID", "ConnID"],
)
async def test_missing_attribute_is_answered_with_error_40_naming_it(
    bench: Bench, frame: dict[str, Any], named: str
) -> None:
    raw = await bench.raw()
    error = await raw.request(frame)
    assert_error(error, ErrorCode.INVALID_ATTRIBUTE, named)
    assert error["ErrorCode"] == 40
    if "ReferenceID" in frame and "message" in frame:
        assert error["ReferenceID"] == frame["ReferenceID"]
    await bench.bystander_unaffected()


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        ({"message": "RequestQueryAddress", "ReferenceID": 1, "ThisDN": 7001}, "ThisDN"),
        ({"message": "RequestQueryAddress", "ReferenceID": "1", "ThisDN": "7001"}, "ReferenceID"),
        ({"message": "RequestQueryAddress", "ReferenceID": True, "ThisDN": "7001"}, "ReferenceID"),
        ({"message": 5, "ReferenceID": 1, "ThisDN": "7001"}, "message"),
        (
            {"message": "RequestAgentLogin", "ReferenceID": 1, "ThisDN": "7001", "AgentID": 1},
            "AgentID",
        ),
        (
            {"message": "RequestAgentLogin", "ReferenceID": 1, "ThisDN": "7001", "AgentID": ""},
            "AgentID",
        ),
        (
            {
                "message": "RequestAgentReady",
                "ReferenceID": 1,
                "ThisDN": "7001",
                "AgentWorkMode": "Sleepy",
            },
            "AgentWorkMode",
        ),
        (
            {"message": "RequestHoldCall", "ReferenceID": 1, "ThisDN": "7001", "ConnID": None},
            "ConnID",
        ),
    ],
    ids=[
        "ThisDN-int",
        "ReferenceID-str",
        "ReferenceID-bool",
        "message-int",
        "AgentID-int",
        "AgentID-empty",
        "AgentWorkMode-value",
        "ConnID-null",
    ],
)
async def test_wrongly_typed_attribute_is_answered_with_error_40_naming_it(
    bench: Bench, frame: dict[str, Any], named: str
) -> None:
    raw = await bench.raw()
    await raw.request({"message": "RequestRegisterAddress", "ReferenceID": 0, "ThisDN": "7001"})
    error = await raw.request(frame)
    assert_error(error, ErrorCode.INVALID_ATTRIBUTE, named)
    await bench.bystander_unaffected()


@pytest.mark.parametrize("dn", ["9999999", "abc", "6999"])
async def test_request_for_an_unknown_dn_is_answered_with_error_56(bench: Bench, dn: str) -> None:
    raw = await bench.raw()
    error = await raw.request({"message": "RequestRegisterAddress", "ReferenceID": 3, "ThisDN": dn})
    assert_error(error, ErrorCode.NO_SUCH_DN, dn)
    assert (error["ErrorCode"], error["ReferenceID"], error["ThisDN"]) == (56, 3, dn)
    await bench.bystander_unaffected()


async def test_request_before_registering_the_dn_is_answered_with_error_96(bench: Bench) -> None:
    raw = await bench.raw()
    # Not even on a DN another desktop registered: registration is per connection.
    for dn in ("7001", "7002"):
        error = await raw.request(
            {"message": "RequestAgentLogin", "ReferenceID": 4, "ThisDN": dn, "AgentID": "x"}
        )
        assert_error(error, ErrorCode.DN_NOT_REGISTERED, dn, "RequestRegisterAddress")
        assert error["ErrorCode"] == 96
    await bench.bystander_unaffected()


async def test_call_request_for_an_unknown_call_is_answered_with_error(bench: Bench) -> None:
    answer = await bench.bystander.send(RequestAnswerCall, "7001", conn_id="ffff000000000042")
    assert answer.name is EventName.EVENT_ERROR
    assert answer.get("ErrorCode") == ErrorCode.INVALID_CONN_ID
    assert "ffff000000000042" in answer.get("ErrorMessage")
    await bench.bystander_unaffected()


async def test_peer_that_keeps_sending_garbage_is_disconnected(bench: Bench) -> None:
    raw = await bench.raw()
    errors = 0
    for _ in range(50):
        raw.send_body(b"garbage")
        if await raw.receive() is None:
            break
        errors += 1
    else:
        pytest.fail("a peer sending only garbage was never disconnected")
    assert 1 <= errors <= 10
    await bench.bystander_unaffected()


async def test_good_frames_between_bad_ones_keep_the_connection(bench: Bench) -> None:
    raw = await bench.raw()
    for reference in range(1, 13):
        raw.send_body(b"garbage")
        error = await raw.receive()
        assert error is not None
        assert_error(error, ErrorCode.MALFORMED_FRAME)
        answer = await raw.request(
            {"message": "RequestRegisterAddress", "ReferenceID": reference, "ThisDN": "7002"}
        )
        assert answer["ReferenceID"] == reference
    await bench.bystander_unaffected()


# -- control endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/calls", b"{not json", "JSON"),
        ("/calls", b"[1, 2]", "object"),
        ("/calls", b"{}", "to"),
        ("/calls", b'{"to": 7002}', "to"),
        ("/calls", b'{"to": "9999999"}', "9999999"),
        ("/phones/9999999/register", b"", "9999999"),
    ],
    ids=["not-json", "not-object", "missing-to", "to-not-string", "unknown-dn", "phone-dn"],
)
async def test_control_api_bad_request_is_a_json_400(
    bench: Bench, path: str, body: bytes, named: str
) -> None:
    url = f"http://{bench.cluster.nodes['sip1'].endpoints['control']}{path}"
    async with aiohttp.ClientSession() as session, session.post(url, data=body) as response:
        assert response.status == 400
        assert response.content_type == "application/json"
        answer = await response.json()
    assert named in answer["error"]
    assert bench.cluster.state("sip1")["calls"] == []
    await bench.bystander_unaffected()


@pytest.mark.parametrize(
    "path",
    ["/calls/0000000000000bad/release", "/calls/0000000000000bad/explode"],
    ids=["unknown-call", "unknown-action"],
)
async def test_control_api_unknown_call_is_a_json_404(bench: Bench, path: str) -> None:
    url = f"http://{bench.cluster.nodes['sip1'].endpoints['control']}{path}"
    async with aiohttp.ClientSession() as session, session.post(url) as response:
        assert response.status == 404
        assert response.content_type == "application/json"
        answer = await response.json()
    assert "0000000000000bad" in answer["error"] or "explode" in answer["error"]


async def test_control_api_unknown_call_is_a_404_and_the_node_keeps_serving(bench: Bench) -> None:
    control = bench.cluster.nodes["sip1"].endpoints["control"]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://{control}/calls/0000000000000bad/release") as response:
            assert response.status == 404
            assert "0000000000000bad" in await response.text()
        async with session.get(f"http://{control}/health") as response:
            assert (await response.json())["status"] == "ok"
    await bench.bystander_unaffected()


# -- TC port ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [b"garbage", json.dumps({"message": "RequestQueryAddress"}).encode()],
    ids=["not-json", "not-a-hello"],
)
async def test_tc_peer_that_does_not_start_with_a_hello_is_dropped(
    bench: Bench, first: bytes
) -> None:
    raw = await RawPeer.connect(bench.cluster.nodes["sip1"].endpoints["tc"])
    bench.peers.append(raw)
    raw.send_body(first)
    while (frame := await raw.receive()) is not None:
        assert frame.get("message") != "TcHello", "a stranger must not get the node's view"
    assert bench.cluster.nodes["sip1"].node.peers_up == set()
    await bench.bystander_unaffected()


async def test_stopping_a_node_closes_a_tc_connection_still_waiting_for_its_hello() -> None:
    config = NodeConfig(
        name="sip1",
        dc="DC1",
        tlib=Endpoint(LOOPBACK, 0),
        tc=Endpoint(LOOPBACK, 0),
        control=Endpoint(LOOPBACK, 0),
        timers=PATIENT_TIMERS,
    )
    service = NodeService(config, JsonLog("sip1", "DC1", io.StringIO()))
    await service.start()
    raw = await RawPeer.connect(service.endpoints["tc"])
    try:
        # The node's first heartbeat proves it holds the connection, waiting for our Hello.
        header = await asyncio.wait_for(raw.reader.readexactly(HEADER.size), 5)
        await raw.reader.readexactly(HEADER.unpack(header)[0])
        await service.stop()
        data = await asyncio.wait_for(raw.reader.read(65536), 5)
        assert data == b"", f"a stopped node still talks on its TC connection: {data!r}"
    finally:
        # With the bug the orphaned stream lives on until its ADDP gives up on our silence.
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(5):
                while await raw.reader.read(65536):
                    pass
        raw.close()
