"""Byte movers of the proxy: a body copied exactly as framed, and the post-101 two-way pump.

Bodies pass through unchanged (chunked stays chunked, RFC 9112 §7.1); every read is bounded by
the proxy's read timeout so a silent upstream cannot hold a client forever.
"""

from __future__ import annotations

import asyncio
import contextlib
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


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await src.read(_CHUNK):
            dst.write(chunk)
            await dst.drain()


async def pump_both_ways(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, conn: Closable
) -> None:
    """After 101: bytes flow both ways until either side closes; then both are closed."""
    tasks = {
        asyncio.create_task(_pump(client_reader, conn.writer), name="proxy-pump-up"),
        asyncio.create_task(_pump(conn.reader, client_writer), name="proxy-pump-down"),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.close()
        client_writer.close()
