"""The asyncio front end of a SIP Cluster node: T-Lib server, TC-layer mesh, timers, control API.

Everything protocol-related is decided by ``node.ClusterNode``; this module moves bytes, owns the
tasks and timers, and shuts down in order (stop accepting, close connections, cancel the rest).
TC-layer: one TCP connection per pair of nodes, dialled by the node whose name sorts first (so a
relay link such as ``sip1-sip3`` carries exactly that pair), each side's ``Hello`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any, Self

from aiohttp import web

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sipcluster.config import NodeConfig, Peer
from emulator.sipcluster.node import ClusterNode
from emulator.sipcluster.sip_side import SipSide
from emulator.sipcluster.states import PartyInput
from emulator.sipcluster.tc_messages import Hello, TcMessage, decode_tc, encode_tc
from emulator.tlib.connection import FramedStream, StreamClosed, TLibStream
from emulator.tlib.errors import ErrorCode, ProtocolError, RequestRejected
from emulator.tlib.messages import Event, Request, error_event

TcStream = FramedStream[TcMessage]
SHUTDOWN_GRACE = 2.0


class NodeService:
    def __init__(self, config: NodeConfig, log: JsonLog | None = None) -> None:
        self.config = config
        self.log = log or JsonLog(config.name, config.dc)
        self.node = ClusterNode(config, self, self.log)
        self._clients: dict[int, TLibStream] = {}
        self._client_ids = itertools.count(1)
        self._peers: dict[str, TcStream] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialers: set[asyncio.Task[None]] = set()
        self._handshakes: set[TcStream] = set()
        self._stopping = False
        self._servers: list[asyncio.Server] = []
        self._runner: web.AppRunner | None = None
        self.endpoints: dict[str, str] = {}
        # The SIP registrar/B2BUA and media port, when configured (``sip_side``).
        self.sip: SipSide | None = None

    # -- Effects --------------------------------------------------------------------------

    def to_client(self, client: int, event: Event) -> None:
        stream = self._clients.get(client)
        if stream is not None:
            stream.send(event)

    def relay_to_client(
        self, client: int, event: Mapping[str, Any], reference_id: int | None
    ) -> None:
        stream = self._clients.get(client)
        if stream is not None:
            wire = {**event, "ReferenceID": reference_id}
            if reference_id is None:
                del wire["ReferenceID"]
            stream.send_object(wire)

    def to_peer(self, peer: str, message: TcMessage) -> bool:
        stream = self._peers.get(peer)
        if stream is None or stream.closed or peer not in self.node.peers_up:
            return False
        stream.send(message)
        return True

    def start_timer(self, key: str, delay: float) -> None:
        self.cancel_timer(key)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def cancel_timer(self, key: str) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def timer_running(self, key: str) -> bool:
        return key in self._timers

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.node.on_timer(key)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        timers = self.config.timers
        tlib = await loop.create_server(
            lambda: TLibStream(
                addp_interval=timers.addp_interval,
                addp_timeout=timers.addp_timeout,
                on_connected=self._client_connected,
            ),
            *self.config.tlib,
        )
        tc = await loop.create_server(
            lambda: self._tc_stream(on_connected=self._peer_connected), *self.config.tc
        )
        self._servers = [tlib, tc]
        self._runner = web.AppRunner(self._control_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, *self.config.control)
        await site.start()
        control_port = self._runner.addresses[0][1]
        self.endpoints = {
            "tlib": _bound(tlib, self.config.tlib),
            "tc": _bound(tc, self.config.tc),
            "control": str(Endpoint(self.config.control.host, control_port)),
        }
        if self.config.sip is not None:
            self.sip = SipSide(self.node, self.config.sip, self.log)
            await self.sip.start()
            self.endpoints.update(self.sip.endpoints)
        for peer in self.config.peers:
            if self.config.name < peer.name:
                self._spawn(self._dial_peer(peer), dialer=True)
        self.log.event("ready", endpoints=self.endpoints)

    async def stop(self) -> None:
        """Stop accepting, close every connection, give handlers a grace period, cancel the rest."""
        self._stopping = True
        for server in self._servers:
            server.close()
        if self.sip is not None:
            await self.sip.stop()  # calls end with a BYE while the TC-layer still carries events
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._dialers):
            task.cancel()
        streams: list[FramedStream[Any]] = [
            *self._clients.values(),
            *self._peers.values(),
            *self._handshakes,
        ]
        for stream in streams:
            stream.close("node shutting down")
        waits = [*self._tasks, *(asyncio.ensure_future(s.wait_closed()) for s in streams)]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for stream in streams:
            stream.close("node shutting down", abort=True)
        if self._runner is not None:
            await self._runner.cleanup()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any, *, dialer: bool = False) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if dialer:
            self._dialers.add(task)
            task.add_done_callback(self._dialers.discard)

    # -- desktops -------------------------------------------------------------------------

    def _client_connected(self, stream: TLibStream) -> None:
        """A desktop connected: its requests are handled as they are read (no task per client)."""
        if self._stopping:
            stream.close("node shutting down", abort=True)
            return
        client = next(self._client_ids)
        self._clients[client] = stream
        self.log.event("tlib.client_connected", client=client, peer=stream.peer)
        stream.deliver_to(lambda items: self._client_items(client, stream, items))
        stream.on_close(lambda: self._client_closed(client, stream))

    def _client_items(self, client: int, stream: TLibStream, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, ProtocolError):
                self.node.client_error(client, item)
                stream.send(stream.core.error_reply(item))
            elif isinstance(item, Request):
                self.node.client_request(client, item)
            else:
                name = getattr(item, "name", "?")
                stream.send(
                    error_event(
                        ErrorCode.UNKNOWN_REQUEST,
                        f"'{name}' is an event: desktops send requests only",
                    )
                )
        if stream.core.should_close:
            stream.close("too many bad frames from the client")

    def _client_closed(self, client: int, stream: TLibStream) -> None:
        if self._clients.pop(client, None) is not None:
            self.node.client_gone(client, stream.close_reason)

    # -- TC-layer -------------------------------------------------------------------------

    def _tc_stream(self, on_connected: Callable[[TcStream], None] | None = None) -> TcStream:
        timers = self.config.timers
        return FramedStream(
            decoder=decode_tc,
            encoder=encode_tc,
            addp_interval=timers.tc_interval,
            addp_timeout=timers.tc_timeout,
            on_connected=on_connected,
        )

    async def _dial_peer(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.05
        while True:
            try:
                _, stream = await loop.create_connection(self._tc_stream, *peer.address)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            try:
                stream.send(self.node.hello())
                greeting = await self._first_hello(stream)
                if greeting is not None and greeting[0].node == peer.name:
                    backoff = 0.05
                    await self._run_peer(stream, *greeting)
                    continue
                stream.close("no valid TcHello from the peer")
            finally:
                stream.close(stream.close_reason or "closed")
                await stream.wait_closed()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _peer_connected(self, stream: TcStream) -> None:
        if self._stopping:
            stream.close("node shutting down", abort=True)
            return
        self._spawn(self._accept_peer(stream))

    async def _accept_peer(self, stream: TcStream) -> None:
        try:
            greeting = await self._first_hello(stream)
            if greeting is None:
                stream.close("no valid TcHello from the peer")
                return
            stream.send(self.node.hello())
            await self._run_peer(stream, *greeting)
        finally:
            stream.close(stream.close_reason or "closed")
            await stream.wait_closed()

    async def _first_hello(self, stream: TcStream) -> tuple[Hello, list[Any]] | None:
        """Wait for the peer's TcHello; return it with whatever arrived right behind it.

        The wait is bounded by the TC liveness deadline: a Hello swallowed by a black-holed
        link must not keep the pair apart longer than a dead peer would be detected.
        """
        timers = self.config.timers
        self._handshakes.add(stream)
        try:
            async with asyncio.timeout(timers.tc_interval + timers.tc_timeout):
                while True:
                    items = await stream.receive()
                    if items:
                        first, rest = items[0], items[1:]
                        return (first, rest) if isinstance(first, Hello) else None
        except (TimeoutError, StreamClosed):
            return None
        finally:
            self._handshakes.discard(stream)

    async def _run_peer(self, stream: TcStream, hello: Hello, pending: list[Any]) -> None:
        name = hello.node
        old = self._peers.get(name)
        if old is not None:
            old.close("replaced by a new TC connection")
            self.node.peer_down(name, "replaced by a new TC connection")
        self._peers[name] = stream
        self.node.peer_up(hello)
        try:
            self._peer_items(name, pending)
            # From here on the peer's messages are handled as they are read.
            stream.deliver_to(lambda items: self._peer_items(name, items))
            await stream.wait_ended()
        finally:
            stream.close(stream.close_reason or "closed")
            if self._peers.get(name) is stream:
                del self._peers[name]
                self.node.peer_down(name, stream.close_reason)

    def _peer_items(self, name: str, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, ProtocolError):
                self.log.warning("tc.bad_frame", peer=name, error=item.message)
            else:
                self.node.peer_message(name, item)

    # -- control endpoint -----------------------------------------------------------------

    def _control_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/state", self._state)
        app.router.add_post("/calls", self._create_call)
        app.router.add_post("/calls/{conn_id}/{action}", self._call_action)
        app.router.add_post("/phones/{dn}/{action}", self._phone)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": self.config.name})

    async def _state(self, request: web.Request) -> web.Response:
        state = self.node.state()
        if self.sip is not None:
            state["sip"] = self.sip.state()
        return web.json_response(state)

    async def _create_call(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        to, caller = body.get("to"), body.get("from", "+15550000000")
        if not isinstance(to, str) or not isinstance(caller, str):
            raise _bad_request("body needs 'to' (a DN) and optionally 'from' (a number), strings")
        try:
            conn_id = self.node.inbound_call(caller, to)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return web.json_response({"ConnID": conn_id, "CallNode": self.config.name}, status=201)

    async def _call_action(self, request: web.Request) -> web.Response:
        """A party's own phone acts on a call: the far end (customer or PSTN agent phone) answers
        or hangs up; a DN's phone set (``party``) holds or retrieves, as its buttons would."""
        conn_id, action = request.match_info["conn_id"], request.match_info["action"]
        inputs = {
            "answer": PartyInput.ANSWER,
            "release": PartyInput.RELEASE,
            "hold": PartyInput.HOLD,
            "retrieve": PartyInput.RETRIEVE,
        }
        if action not in inputs:
            raise _not_found(f"unknown call action {action!r}: {', '.join(inputs)}")
        body = await _json_body(request) if request.can_read_body else {}
        call = self.node.calls.get(conn_id)
        if call is None:
            raise _not_found(f"no call {conn_id} on {self.config.name}")
        party = body.get("party") or next(
            (p.address for p in call.parties if not p.is_dn), call.parties[0].address
        )
        party_input = inputs[action]
        found = call.party(str(party))
        if action == "answer" and found is not None and not found.is_dn:
            party_input = PartyInput.FAR_END_ANSWER
        try:
            self.node.party_action(conn_id, str(party), party_input)
        except RequestRejected as exc:
            return web.json_response({"error": exc.message}, status=409)
        return web.json_response({"ConnID": conn_id, "party": party, "action": action})

    async def _phone(self, request: web.Request) -> web.Response:
        """Internal API for the SIP side: a softphone (un)registered at this node."""
        dn, action = request.match_info["dn"], request.match_info["action"]
        if action not in ("register", "unregister"):
            raise _not_found("phone action must be register or unregister")
        if dn not in self.config.dns:
            raise _bad_request(f"unknown DN {dn}")
        self.node.phone_registered(dn, action == "register")
        return web.json_response({"DN": dn, "action": action, "node": self.config.name})


def _bound(server: asyncio.Server, wanted: Endpoint) -> str:
    port = server.sockets[0].getsockname()[1]
    return str(Endpoint(wanted.host, port))


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": message}), content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _bad_request("body is not JSON") from None
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object")
    return body
