"""A client connection's connection to one upstream, shared by the proxy's two lanes.

:class:`UpstreamSide` is the upstream socket's protocol: its bytes feed its stream (the general
path) or, while a fast-lane request awaits its answer, the waiting client's lane.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol


class AwaitingClient(Protocol):
    """A fast-lane client connection waiting for an upstream's answer."""

    def on_response_data(self) -> None:
        """The upstream's buffer grew."""

    def on_upstream_gone(self) -> None:
        """The upstream closed or reset the connection."""


def hand_back(buffer: bytearray, reader: asyncio.StreamReader) -> None:
    """Leaving the fast lane: the stream gets the bytes the lane had not consumed."""
    if buffer:
        reader.feed_data(bytes(buffer))
        buffer.clear()


class UpstreamSide(asyncio.StreamReaderProtocol):
    """An upstream connection; ``client`` is set while a fast-lane request awaits its answer."""

    def __init__(self, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(reader, loop=loop)
        self.reader = reader
        self.client: AwaitingClient | None = None
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:
            super().data_received(data)
            return
        self.buffer += data
        client.on_response_data()

    def eof_received(self) -> bool:
        if self.client is not None:
            self.client.on_upstream_gone()
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client is not None:
            self.client.on_upstream_gone()
        super().connection_lost(exc)

    def to_stream(self) -> None:
        """Leave the fast lane; the stream gets what the lane had not consumed."""
        self.client = None
        hand_back(self.buffer, self.reader)


@dataclass(eq=False)
class UpstreamConn:
    """A client connection's kept-alive connection to one upstream, used by either lane."""

    name: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    side: UpstreamSide

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()
