"""The asyncio front end of T-Lib over real loopback sockets: ADDP liveness, request/answer
correlation by ReferenceID, and what a pending request sees when the node goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from emulator.tlib.connection import StreamClosed, TLibClient, TLibStream
from emulator.tlib.errors import ErrorCode, ProtocolError
from emulator.tlib.framing import HEADER, FrameDecoder
from emulator.tlib.messages import (
    Event,
    EventName,
    Request,
    RequestAgentReady,
    RequestQueryAddress,
)

HOST = "127.0.0.1"
WAIT = 10.0  # generous: two shared cores
# Fast ADDP for the tests that are about liveness; the others use a relaxed one so a loaded
# machine cannot turn them into liveness tests by accident.
FAST_INTERVAL, FAST_TIMEOUT = 0.1, 0.2
RELAXED_INTERVAL, RELAXED_TIMEOUT = 5.0, 5.0

Connected = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Session = Callable[[TLibStream], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(on_connect: Connected) -> AsyncIterator[int]:
    """A loopback server on port 0 that owns its connection tasks; yields the bound port."""
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        await on_connect(reader, writer)

    server = await asyncio.start_server(tracked, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*tasks)
            await server.wait_closed()


@contextlib.asynccontextmanager
async def serve_tlib(
    session: Session, *, addp_interval: float, addp_timeout: float
) -> AsyncIterator[int]:
    """A loopback T-Lib server on port 0 running ``session`` on each server-side ``TLibStream``;
    it always closes and awaits that stream, and owns the session tasks. Yields the port."""
    tasks: set[asyncio.Task[None]] = set()
    streams: list[TLibStream] = []

    async def run(stream: TLibStream) -> None:
        try:
            await session(stream)
        except StreamClosed:
            pass
        finally:
            stream.close("server session over")
            await stream.wait_closed()

    def connected(stream: TLibStream) -> None:
        streams.append(stream)
        tasks.add(asyncio.create_task(run(stream)))

    server = await asyncio.get_running_loop().create_server(
        lambda: TLibStream(
            addp_interval=addp_interval, addp_timeout=addp_timeout, on_connected=connected
        ),
        HOST,
        0,
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for stream in streams:
            stream.close("server closing", abort=True)
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*tasks)
            await server.wait_closed()


def answer(request: Request) -> Event:
    return Event(
        EventName.EVENT_ADDRESS_INFO,
        this_dn=request.this_dn,
        reference_id=request.reference_id,
        attributes={"Request": request.NAME},
    )


async def answer_each_request(stream: TLibStream) -> None:
    """A minimal node: answer requests, answer bad input with EventError, drop a garbage peer."""
    while True:
        for item in await stream.receive():
            if isinstance(item, ProtocolError):
                stream.send(stream.core.error_reply(item))
            elif isinstance(item, Request):
                stream.send(answer(item))
        await stream.drain()
        if stream.core.should_close:
            return


async def answer_pairs_in_reverse(stream: TLibStream) -> None:
    waiting: list[Request] = []
    while True:
        waiting += [item for item in await stream.receive() if isinstance(item, Request)]
        if len(waiting) >= 2:
            for request in reversed(waiting):
                stream.send(answer(request))
            waiting.clear()
            await stream.drain()


async def hang_up_after_first_request(stream: TLibStream) -> None:
    while not any(isinstance(item, Request) for item in await stream.receive()):
        pass


async def hang_up_at_once(stream: TLibStream) -> None:
    return


def serve_relaxed(session: Session) -> contextlib.AbstractAsyncContextManager[int]:
    return serve_tlib(session, addp_interval=RELAXED_INTERVAL, addp_timeout=RELAXED_TIMEOUT)


@contextlib.asynccontextmanager
async def client_of(session: Session) -> AsyncIterator[TLibClient]:
    """A ``TLibClient`` connected to a loopback server running ``session`` per connection."""
    async with (
        serve_relaxed(session) as port,
        await TLibClient.connect(
            HOST, port, addp_interval=RELAXED_INTERVAL, addp_timeout=RELAXED_TIMEOUT
        ) as client,
    ):
        yield client


async def read_frame(reader: asyncio.StreamReader) -> object:
    (length,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return json.loads(await reader.readexactly(length))


def raw_frame(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return len(body).to_bytes(4, "big") + body


async def test_stream_closes_when_the_peer_never_sends_anything() -> None:
    received = bytearray()
    peer_done = asyncio.Event()

    async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)
        writer.close()
        peer_done.set()

    async with serve(silent_peer) as port:
        started = asyncio.get_running_loop().time()
        stream = await TLibStream.connect(
            HOST, port, addp_interval=FAST_INTERVAL, addp_timeout=FAST_TIMEOUT
        )
        try:
            async with asyncio.timeout(WAIT):
                await stream.wait_closed()
                await peer_done.wait()
        finally:
            stream.close("test over", abort=True)
        elapsed = asyncio.get_running_loop().time() - started

    assert stream.close_reason == "peer silent: ADDP timeout"
    assert elapsed >= FAST_INTERVAL + FAST_TIMEOUT - 0.01
    # While it waited, the stream kept the link alive from its side with heartbeats.
    sent = list(FrameDecoder().feed(bytes(received)))
    assert sent
    assert all(frame == {"message": "Heartbeat"} for frame in sent)


async def test_heartbeats_keep_an_idle_connection_open_past_the_timeout() -> None:
    interval, timeout = 0.1, 0.4
    outlived = asyncio.Event()
    server_streams: list[TLibStream] = []

    async def idle(stream: TLibStream) -> None:
        server_streams.append(stream)
        started = asyncio.get_running_loop().time()
        while True:
            assert await stream.receive() == []  # heartbeats only
            if asyncio.get_running_loop().time() - started > 2 * (interval + timeout):
                outlived.set()

    async with serve_tlib(idle, addp_interval=interval, addp_timeout=timeout) as port:
        client = await TLibClient.connect(HOST, port, addp_interval=interval, addp_timeout=timeout)
        async with client:
            async with asyncio.timeout(WAIT):
                await outlived.wait()
            assert not client.stream.closed, client.stream.close_reason
            assert not server_streams[0].closed, server_streams[0].close_reason


async def test_request_gets_the_event_echoing_its_reference_id() -> None:
    async with client_of(answer_each_request) as client:
        reference_id = client.next_reference_id()
        request = RequestQueryAddress(reference_id=reference_id, this_dn="5001")

        event = await client.request(request, timeout=WAIT)

        assert event.name is EventName.EVENT_ADDRESS_INFO
        assert event.reference_id == reference_id
        assert event.this_dn == "5001"
        assert event.get("Request") == "RequestQueryAddress"
        assert client.events.get_nowait() == event


async def test_concurrent_requests_each_get_their_own_answer_whatever_the_order() -> None:
    async with client_of(answer_pairs_in_reverse) as client:
        first = RequestQueryAddress(reference_id=client.next_reference_id(), this_dn="5001")
        second = RequestAgentReady(reference_id=client.next_reference_id(), this_dn="5002")

        async with asyncio.timeout(WAIT):
            first_event, second_event = await asyncio.gather(
                client.request(first), client.request(second)
            )

        assert (first_event.reference_id, first_event.this_dn) == (first.reference_id, "5001")
        assert (second_event.reference_id, second_event.this_dn) == (
            second.reference_id,
            "5002",
        )
        arrival = [client.events.get_nowait(), client.events.get_nowait()]
        assert arrival == [second_event, first_event]


async def test_pending_request_fails_with_stream_closed_when_the_server_closes() -> None:
    async with client_of(hang_up_after_first_request) as client:
        request = RequestQueryAddress(reference_id=client.next_reference_id(), this_dn="5001")

        with pytest.raises(StreamClosed, match="connection closed by peer"):
            await client.request(request, timeout=WAIT)

        assert client.stream.closed


async def test_raw_socket_client_gets_event_error_for_an_unknown_request() -> None:
    async with serve_relaxed(answer_each_request) as port:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(raw_frame({"message": "RequestTeleport", "ReferenceID": 77}))
            writer.write(raw_frame({"message": "RequestQueryAddress", "ReferenceID": 78}))
            writer.write(
                raw_frame({"message": "RequestQueryAddress", "ReferenceID": 79, "ThisDN": "5001"})
            )
            async with asyncio.timeout(WAIT):
                replies = [await read_frame(reader) for _ in range(3)]
        finally:
            writer.close()
            await writer.wait_closed()

    unknown, missing_dn, good = replies
    assert unknown == {
        "message": "EventError",
        "ReferenceID": 77,
        "ErrorCode": int(ErrorCode.UNKNOWN_REQUEST),
        "ErrorMessage": "unknown message 'RequestTeleport'",
    }
    assert isinstance(missing_dn, dict)
    assert missing_dn["ReferenceID"] == 78
    assert missing_dn["ErrorCode"] == int(ErrorCode.INVALID_ATTRIBUTE)
    assert "'ThisDN'" in missing_dn["ErrorMessage"]
    assert good == {
        "message": "EventAddressInfo",
        "ThisDN": "5001",
        "ReferenceID": 79,
        "Request": "RequestQueryAddress",
    }


async def test_raw_socket_client_sending_a_bad_length_gets_event_error_then_eof() -> None:
    async with serve_relaxed(answer_each_request) as port:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(HEADER.pack(0))
            async with asyncio.timeout(WAIT):
                reply = await read_frame(reader)
                rest = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()

    assert isinstance(reply, dict)
    assert reply["message"] == "EventError"
    assert reply["ErrorCode"] == int(ErrorCode.MALFORMED_FRAME)
    assert rest == b""


async def test_request_after_the_server_has_gone_fails_at_once_with_stream_closed() -> None:
    async with client_of(hang_up_at_once) as client:
        async with asyncio.timeout(WAIT):
            await client.stream.wait_closed()
        request = RequestQueryAddress(reference_id=client.next_reference_id(), this_dn="5001")

        with pytest.raises(StreamClosed):
            await client.request(request, timeout=0.5)


async def test_stream_to_a_stopped_peer_finishes_closing_on_addp_timeout() -> None:
    release = asyncio.Event()

    async def stopped_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()  # like a SIGSTOPped process: accepts, then neither reads nor writes
        writer.close()

    async with serve(stopped_peer) as port:
        stream = await TLibStream.connect(
            HOST, port, addp_interval=FAST_INTERVAL, addp_timeout=FAST_TIMEOUT
        )
        try:
            # More than the kernel socket buffers of both ends hold, so some stays queued.
            stream.send(Event(EventName.EVENT_ADDRESS_INFO, attributes={"pad": "x" * (32 << 20)}))
            async with asyncio.timeout(3.0):
                await stream.wait_closed()
            assert stream.close_reason == "peer silent: ADDP timeout"
        finally:
            stream.close("test over", abort=True)
            release.set()
