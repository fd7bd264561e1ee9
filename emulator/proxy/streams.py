"""Byte movers of the proxy: a body copied exactly as framed, and the post-101 two-way pump.

Bodies pass through unchanged (chunked stays chunked, RFC 9112 §7.1); every read is bounded by
the proxy's read timeout so a silent upstream cannot hold a client forever.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from emulator.proxy.http1 import BodyKind, Framing, parse_chunk_size

_CHUNK = 65536


class Closable(Protocol):
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None: ...


async def copy_exact(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, size: int, timeout: float | None
) -> None:
    while size > 0:
        async with asyncio.timeout(timeout):
            chunk = await src.read(min(size, _CHUNK))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", size)
        dst.write(chunk)
        size -= len(chunk)
        await dst.drain()


async def copy_body(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, framing: Framing, timeout: float | None
) -> None:
    """Copy one message body exactly as framed (chunked bodies pass through unchanged)."""
    if framing.kind is BodyKind.LENGTH:
        await copy_exact(src, dst, framing.length, timeout)
    elif framing.kind is BodyKind.CHUNKED:
        while True:
            async with asyncio.timeout(timeout):
                line = await src.readuntil(b"\r\n")
            size = parse_chunk_size(line)
            dst.write(line)
            if size == 0:
                while True:  # trailer section, ended by an empty line
                    async with asyncio.timeout(timeout):
                        trailer = await src.readuntil(b"\r\n")
                    dst.write(trailer)
                    if trailer == b"\r\n":
                        break
                await dst.drain()
                return
            await copy_exact(src, dst, size + 2, timeout)
    elif framing.kind is BodyKind.UNTIL_CLOSE:
        while True:
            async with asyncio.timeout(timeout):
                chunk = await src.read(_CHUNK)
            if not chunk:
                break
            dst.write(chunk)
            await dst.drain()
    await dst.drain()


class _Splice(asyncio.Protocol):
    """One direction of an upgraded connection, installed on the transport it reads from.

    Bytes go to ``peer`` inside the callback that received them: no task, no stream buffer, no
    wake-up of a pump between reading a frame and writing it on (the WebSocket hot path). When
    this side's own send buffer fills, the peer is paused, so a slow reader slows its writer.
    """

    def __init__(self, peer: asyncio.Transport, done: asyncio.Future[None]) -> None:
        self.peer = peer
        self.done = done

    def data_received(self, data: bytes) -> None:
        self.peer.write(data)

    def eof_received(self) -> bool:
        self._finish()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def pause_writing(self) -> None:
        self.peer.pause_reading()

    def resume_writing(self) -> None:
        if not self.peer.is_closing():
            self.peer.resume_reading()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


def read_ahead(reader: asyncio.StreamReader) -> bytearray:
    """The bytes the stream has read ahead that nobody consumed yet.

    asyncio has no public, synchronous way to see them, and the proxy needs one where it takes
    a connection off its stream (a WebSocket splice, the fast lane). ``StreamReader._buffer`` has
    held them since Python 3.4; reading it without a default makes a CPython that renames it fail
    loudly (tests/proxy) instead of dropping bytes.
    """
    buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
    return buffer


def _buffered(reader: asyncio.StreamReader) -> bytes:
    """What the stream had read ahead, taken out of it (bytes that followed the 101)."""
    buffer = read_ahead(reader)
    data = bytes(buffer)
    buffer.clear()
    return data


async def pump_both_ways(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, conn: Closable
) -> None:
    """After 101: bytes flow both ways until either side closes; then both are closed.

    The streams step aside: each transport gets a :class:`_Splice` protocol writing straight
    into the other transport, after handing on whatever the stream had already buffered.
    """
    client = client_writer.transport
    upstream = conn.writer.transport
    if not isinstance(client, asyncio.Transport) or not isinstance(upstream, asyncio.Transport):
        raise TypeError("pump_both_ways needs socket transports")  # always true for TCP streams
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    try:
        for reader, source, sink in (
            (client_reader, client, upstream),
            (conn.reader, upstream, client),
        ):
            if pending := _buffered(reader):
                sink.write(pending)
            if reader.at_eof() or source.is_closing():
                return
            source.set_protocol(_Splice(sink, done))
            source.resume_reading()
        await done
    finally:
        conn.close()
        client_writer.close()
