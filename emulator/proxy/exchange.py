"""One request's exchange with an upstream on the general path, up to the final response head.

The request is sent on the client connection's kept-alive connection to the chosen upstream, or
on a fresh one, and the response head is read back within the read timeout. Until that head
arrives nothing has gone to the client, so a failure is an :class:`UpstreamFailure` the proxy
can still act on: a request that never reached the upstream (connect refused or timed out) may
go to another node of the DC (DESIGN §2.3: "if the pinned GWS is down or unhealthy, drop the
stickiness and pin a healthy node of the same DC"); one that did is answered ``502``, never
replayed. The one exception is a kept-alive connection the upstream had closed under a buffered
request (:class:`ConnectionLost`): that request is sent once more, on a fresh connection.
"""

from __future__ import annotations

import asyncio

from emulator.proxy.config import ProxyConfig
from emulator.proxy.errors import ConnectionLost, HttpError, UpstreamFailure
from emulator.proxy.http1 import (
    Framing,
    RequestHead,
    ResponseHead,
    parse_response_head,
    serialize_request,
)
from emulator.proxy.streams import copy_body
from emulator.proxy.upstream_conn import UpstreamConn, UpstreamSide
from emulator.proxy.upstreams import Choice, Upstream


async def open_upstream(config: ProxyConfig, upstream: Upstream) -> UpstreamConn:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(config.max_head, loop)
    try:
        async with asyncio.timeout(config.connect_timeout):
            transport, side = await loop.create_connection(
                lambda: UpstreamSide(reader, loop),
                upstream.endpoint.host,
                upstream.endpoint.port,
            )
    except TimeoutError:
        raise UpstreamFailure("connect timed out", sent=False) from None
    except OSError as exc:
        raise UpstreamFailure(f"connect failed: {exc.strerror or exc}", sent=False) from None
    writer = asyncio.StreamWriter(transport, side, reader, loop)
    return UpstreamConn(upstream.name, reader, writer, side)


async def exchange(
    config: ProxyConfig,
    choice: Choice,
    outgoing: RequestHead,
    body: bytes | None,
    framing: Framing,
    client_reader: asyncio.StreamReader,
    upstreams: dict[str, UpstreamConn],
) -> tuple[UpstreamConn, ResponseHead]:
    """Send the request and read the final response head (forwarding 1xx is left to the
    caller); a kept-alive connection the upstream had closed is retried once, fresh."""
    name = choice.upstream.name
    for attempt in (1, 2):
        conn = upstreams.get(name)
        reused = conn is not None and conn.usable
        if conn is not None and not reused:
            conn.close()
        if conn is None or not reused:
            conn = await open_upstream(config, choice.upstream)
            upstreams[name] = conn
        try:
            conn.writer.write(serialize_request(outgoing) + (body or b""))
            if body is None:
                await copy_body(client_reader, conn.writer, framing, config.read_timeout)
            await conn.writer.drain()
        except (ConnectionError, OSError) as exc:
            conn.close()
            upstreams.pop(name, None)
            reason = f"connection lost before a response ({type(exc).__name__})"
            raise UpstreamFailure(reason, sent=True) from None
        try:
            return conn, await read_response_head(config, conn, name, upstreams)
        except ConnectionLost:
            if reused and attempt == 1 and body is not None:
                continue
            raise
    raise AssertionError("unreachable")


async def read_response_head(
    config: ProxyConfig, conn: UpstreamConn, name: str, upstreams: dict[str, UpstreamConn]
) -> ResponseHead:
    try:
        async with asyncio.timeout(config.read_timeout):
            head = await conn.reader.readuntil(b"\r\n\r\n")
    except TimeoutError:
        raise UpstreamFailure(
            f"no response within {config.read_timeout:.3g} s", sent=True
        ) from None
    except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
        conn.close()
        upstreams.pop(name, None)
        raise ConnectionLost(
            f"connection lost before a response ({type(exc).__name__})", sent=True
        ) from None
    except asyncio.LimitOverrunError:
        raise UpstreamFailure("response head too large", sent=True) from None
    try:
        return parse_response_head(head)
    except HttpError as exc:
        raise UpstreamFailure(exc.reason, sent=True) from None
