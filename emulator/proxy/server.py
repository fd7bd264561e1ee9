"""The sticky HTTP/1.1 reverse proxy of one data centre (NGINX-like), on asyncio streams.

Per client connection it reads request heads (keep-alive), answers its own status page, picks an
upstream with :class:`UpstreamPool` (stickiness cookie, failover, round-robin), forwards the
request with ``X-Forwarded-*`` fields (:mod:`emulator.proxy.forwarding`) and reads the answer's
head (:mod:`emulator.proxy.exchange`), streams the response back (``Content-Length``, chunked or
until close — long-polls are simply long responses) and, after a ``101 Switching Protocols``,
pumps bytes both ways so WebSockets pass through untouched. A connect failure marks the upstream
down and the request goes to another healthy node of the DC; with none left the client gets a
short ``502``. Bad requests get ``400``/``431``/``501``/``505`` and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.proxy.config import ProxyConfig
from emulator.proxy.errors import HttpError, UpstreamFailure
from emulator.proxy.exchange import exchange, read_response_head
from emulator.proxy.fastlane import COALESCED_BODY, ClientSide, Close, Respond
from emulator.proxy.forwarding import bad_gateway_response, client_head, upstream_request
from emulator.proxy.health import HealthChecker
from emulator.proxy.http1 import (
    BodyKind,
    RequestHead,
    ResponseHead,
    parse_request_head,
    parse_response_head,
    request_framing,
    response_framing,
    serialize_response,
    simple_response,
)
from emulator.proxy.streams import copy_body, pump_both_ways
from emulator.proxy.upstream_conn import UpstreamConn
from emulator.proxy.upstreams import Choice, Transition, UpstreamPool, UpstreamState


class StickyProxy:
    """``async with StickyProxy(config, log) as proxy``: ``proxy.endpoint`` is the bound address."""

    def __init__(self, config: ProxyConfig, log: JsonLog) -> None:
        self.config = config
        self.log = log
        self.pool = UpstreamPool(
            config.upstreams,
            rise=config.rise,
            fall=config.fall,
            keep_dead_pins="sticky-repin" in config.broken,
        )
        self.checker = HealthChecker(
            self.pool,
            path=config.health_path,
            interval=config.health_interval,
            timeout=config.health_timeout,
            on_transition=self._on_transition,
        )
        self.repins = 0
        self._server: asyncio.Server | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False
        self.endpoint = config.listen

    async def __aenter__(self) -> StickyProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self.checker.run_round()  # know who is up before taking traffic
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientSide(self, asyncio.StreamReader(self.config.max_head, loop), loop),
            self.config.listen.host,
            self.config.listen.port,
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.endpoint = Endpoint(host, port)
        self._health_task = asyncio.create_task(self.checker.run(), name="proxy-health")

    async def stop(self) -> None:
        """Stop accepting, stop checking, close client connections, give the handlers
        ``shutdown_grace`` to finish (an idle or upgraded connection ends at once, a request
        waiting for its upstream does not), then cancel the rest."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            _, pending = await asyncio.wait(self._handlers, timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def status(self) -> dict[str, object]:
        return {
            "service": self.config.name,
            "dc": self.config.dc,
            "listen": str(self.endpoint),
            "cookie": self.config.cookie_name,
            "upstreams": self.pool.snapshot(),
            "repins": self.repins,
            "client_connections": len(self._handlers),
        }

    def _on_transition(self, transition: Transition) -> None:
        event = "upstream.up" if transition.new is UpstreamState.UP else "upstream.down"
        log = self.log.event if transition.new is UpstreamState.UP else self.log.warning
        log(event, upstream=transition.upstream, reason=transition.reason)

    # --- client connections ------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._closing

    def serve(self, side: ClientSide) -> None:
        """A client connected: its task serves whatever the fast lane hands over."""
        task = asyncio.create_task(self._serve_client(side), name="proxy-client")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _serve_client(self, side: ClientSide) -> None:
        reader, writer = side.reader, side.writer
        assert writer is not None  # set in connection_made, before this task exists
        self._writers.add(writer)
        client_ip = side.client_ip
        upstreams = side.upstreams
        try:
            while not self._closing:
                job = await side.next_job()
                if isinstance(job, Close):
                    break
                if isinstance(job, Respond):
                    keep = await self._finish(job, reader, writer, upstreams)
                    if not keep:
                        break
                if not await self._serve_from_stream(side, reader, writer, client_ip, upstreams):
                    break
        except (
            ConnectionError,
            OSError,
            TimeoutError,
            HttpError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as exc:
            # Mid-message (the response head is already out): all that is left is to close.
            self.log.event("proxy.connection_aborted", client=client_ip, reason=repr(exc))
        finally:
            for conn in upstreams.values():
                conn.close()
            writer.close()
            self._writers.discard(writer)

    async def _serve_from_stream(
        self,
        side: ClientSide,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client_ip: str,
        upstreams: dict[str, UpstreamConn],
    ) -> bool:
        """Serve requests from the stream until the fast lane can take over again (True) or the
        connection is done (False)."""
        while not self._closing:
            if side.may_go_fast():
                side.go_fast()
                return True
            request = await self._read_request(reader, writer, client_ip)
            if request is None:
                return False
            if not await self._handle(request, reader, writer, client_ip, upstreams):
                return False
        return False

    async def _finish(
        self,
        job: Respond,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstreams: dict[str, UpstreamConn],
    ) -> bool:
        """Answer a request the fast lane forwarded and handed over with its response."""
        name = job.choice.upstream.name
        try:
            response = await read_response_head(self.config, job.conn, name, upstreams)
        except UpstreamFailure as exc:
            self.passive_failure(name, exc.reason, upstreams)
            return await self._bad_gateway(writer, name, exc.reason)
        return await self._respond(
            job.request, response, job.choice, job.conn, reader, writer, upstreams
        )

    async def _reject(
        self, writer: asyncio.StreamWriter, client_ip: str, status: int, reason: str
    ) -> None:
        titles = {
            400: "Bad Request",
            431: "Request Header Fields Too Large",
            501: "Not Implemented",
            505: "HTTP Version Not Supported",
        }
        self.log.warning("proxy.bad_request", client=client_ip, status=status, reason=reason)
        writer.write(simple_response(status, titles.get(status, "Error"), f"{status} {reason}\n"))
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_ip: str
    ) -> RequestHead | None:
        try:
            data = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                await self._reject(writer, client_ip, 400, "incomplete request head")
            return None
        except asyncio.LimitOverrunError:
            await self._reject(writer, client_ip, 431, "request head too large")
            return None
        data = data.lstrip(b"\r\n")  # RFC 9112 §2.2: ignore empty lines before a request line
        try:
            return parse_request_head(data)
        except HttpError as exc:
            await self._reject(writer, client_ip, exc.status, exc.reason)
            return None

    async def _handle(
        self,
        request: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client_ip: str,
        upstreams: dict[str, UpstreamConn],
    ) -> bool:
        if request.path == self.config.status_path and request.method == "GET":
            page = (json.dumps(self.status(), indent=2) + "\n").encode()
            head = ResponseHead(
                "HTTP/1.1",
                200,
                "OK",
                (("Content-Type", "application/json"), ("Content-Length", str(len(page)))),
            )
            writer.write(serialize_response(head) + page)
            await writer.drain()
            return request.keep_alive
        try:
            framing = request_framing(request)
        except HttpError as exc:
            await self._reject(writer, client_ip, exc.status, exc.reason)
            return False
        expects_continue = (request.get("Expect") or "").lower() == "100-continue"
        if expects_continue and framing.kind is not BodyKind.NONE:
            # Like NGINX: answer the expectation here, the body is read (or streamed) by us.
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body: bytes | None = b""
        if framing.kind is BodyKind.LENGTH and framing.length <= self.config.max_buffered_body:
            body = await reader.readexactly(framing.length)
        elif framing.kind is not BodyKind.NONE:
            body = None  # streamed: cannot be replayed on another upstream
        outgoing = upstream_request(request, client_ip)
        pinned = request.cookies().get(self.config.cookie_name)
        tried: set[str] = set()
        while True:
            choice = self.pool.choose(pinned, exclude=tried)
            if choice is None:
                return await self._no_upstream(writer)
            tried.add(choice.upstream.name)
            try:
                conn, response = await exchange(
                    self.config, choice, outgoing, body, framing, reader, upstreams
                )
            except UpstreamFailure as exc:
                self.passive_failure(choice.upstream.name, exc.reason, upstreams)
                # With ``--break-rule sticky-repin`` a pinned client stays with its node even
                # when that node cannot be reached, as a proxy without the rule would: no retry
                # elsewhere, which would repin it all the same.
                dead_pin = self.pool.keep_dead_pins and choice.upstream.name == pinned
                if exc.sent or dead_pin:
                    return await self._bad_gateway(writer, choice.upstream.name, exc.reason)
                continue  # never reached that upstream: another node of the DC may serve it
            break
        if choice.repinned_from is not None:
            self.repins += 1
            self.log.event(
                "sticky.repinned",
                client=client_ip,
                **{"from": choice.repinned_from},
                to=choice.upstream.name,
                reason=f"{choice.repinned_from} is {self.pool.state(choice.repinned_from).value}",
            )
        return await self._respond(request, response, choice, conn, reader, writer, upstreams)

    def passive_failure(self, name: str, reason: str, upstreams: dict[str, UpstreamConn]) -> None:
        conn = upstreams.pop(name, None)
        if conn is not None:
            conn.close()
        loop = asyncio.get_running_loop()
        transition = self.pool.passive_failure(name, reason, loop.time())
        if transition is not None:
            self._on_transition(transition)

    async def _no_upstream(self, writer: asyncio.StreamWriter) -> bool:
        reason = f"no healthy upstream in {self.config.dc} ({self.pool.describe_down()})"
        self.log.warning("proxy.no_upstream", reason=reason)
        writer.write(simple_response(502, "Bad Gateway", f"502 Bad Gateway: {reason}\n"))
        await writer.drain()
        return False

    async def _bad_gateway(self, writer: asyncio.StreamWriter, upstream: str, reason: str) -> bool:
        writer.write(bad_gateway_response(upstream, reason))
        await writer.drain()
        return False

    async def _respond(
        self,
        request: RequestHead,
        response: ResponseHead,
        choice: Choice,
        conn: UpstreamConn,
        client_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstreams: dict[str, UpstreamConn],
    ) -> bool:
        while 100 <= response.status < 200 and response.status != 101:
            writer.write(serialize_response(response))  # 100 Continue, 103 Early Hints
            async with asyncio.timeout(self.config.read_timeout):
                response = parse_response_head(await conn.reader.readuntil(b"\r\n\r\n"))
        upgrade = response.status == 101 and request.is_upgrade
        try:
            framing = response_framing(response, request.method)
        except HttpError as exc:
            self.passive_failure(choice.upstream.name, exc.reason, upstreams)
            return await self._bad_gateway(writer, choice.upstream.name, exc.reason)
        keep = request.keep_alive and framing.kind is not BodyKind.UNTIL_CLOSE and not self._closing
        head = client_head(response, choice, self.config.cookie_name, keep=keep, upgrade=upgrade)
        if upgrade:
            writer.write(head)
            await writer.drain()
            upstreams.pop(choice.upstream.name, None)
            await pump_both_ways(client_reader, writer, conn)
            return False
        if framing.kind is BodyKind.LENGTH and framing.length <= COALESCED_BODY:
            # Head and a small body in one write: one segment and one wake-up of the client
            # instead of two (every REST answer and long-poll reply is such a body).
            async with asyncio.timeout(self.config.read_timeout):
                body = await conn.reader.readexactly(framing.length)
            writer.write(head + body)
            await writer.drain()
        else:
            writer.write(head)
            await copy_body(conn.reader, writer, framing, self.config.read_timeout)
        if not response.keep_alive or framing.kind is BodyKind.UNTIL_CLOSE:
            conn.close()
            upstreams.pop(choice.upstream.name, None)
        return keep
