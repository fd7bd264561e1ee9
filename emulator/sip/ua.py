"""A small asyncio SIP user agent: the transaction core driven by the loop clock over a transport.

Implements the transaction-user glue of RFC 3261: client requests retransmitted and timed out
per §17.1 (``request`` awaits the final response), server transactions absorbing retransmitted
requests (§17.2), CANCEL matched to its INVITE (§9.2: 200 to the CANCEL, the TU sends 487),
the ACK of a 2xx delivered to the TU and ending our 2xx retransmissions (§13.3.1.4), a re-sent
2xx re-ACKed (§13.2.2.4), and methods answered 501/405 (§8.2.1).

Time is ``loop.time()``; one owned task fires transaction timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sip.builder import make_error_response, make_response, new_branch, new_tag
from emulator.sip.errors import SipProtocolError, TransactionTimeout, TransportError
from emulator.sip.message import Message, Request, Response
from emulator.sip.parser import validate_method
from emulator.sip.transaction import (
    AckReceived,
    ClientTransaction,
    Event,
    Output,
    ResponseReceived,
    ServerTransaction,
    State,
    TimedOut,
    TimerConfig,
    Transmit,
    client_key,
    server_key,
)
from emulator.sip.transport import SipTransport, UdpTransport

_Transaction = ClientTransaction | ServerTransaction


@dataclass
class IncomingRequest:
    """A request handed to the application, with the means to answer it."""

    request: Request
    source: Endpoint
    ua: UserAgent
    transaction: ServerTransaction | None = None
    # For a CANCEL: the INVITE it cancels (the application answers that one 487).
    cancels: IncomingRequest | None = None
    # Our To tag for every response to this request (a dialog's 180 and 200 must share it);
    # a request that already carries a To tag (in-dialog) keeps that one.
    to_tag: str = field(default_factory=new_tag)

    @property
    def answered(self) -> bool:
        txn = self.transaction
        return txn is not None and txn.last_response is not None and txn.last_response.status >= 200

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Response:
        response = make_response(
            self.request,
            status,
            reason,
            to_tag=self.to_tag,
            headers=headers,
            body=body,
            content_type=content_type,
        )
        self.send_response(response)
        return response

    def send_response(self, response: Response) -> None:
        if self.transaction is None:
            raise RuntimeError(f"{self.request.method} is not answered (no transaction)")
        self.ua.respond(self.transaction, response, self.source)


RequestHandler = Callable[[IncomingRequest], None]


class UserAgent:
    """Runs client and server transactions for one transport; answers requests via callbacks."""

    def __init__(
        self,
        transport: SipTransport,
        *,
        timers: TimerConfig | None = None,
        allowed_methods: Iterable[str] = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"),
        on_request: RequestHandler | None = None,
        on_ack_timeout: RequestHandler | None = None,
        log: JsonLog | None = None,
    ) -> None:
        self.transport = transport
        self.timers = (timers or TimerConfig()).for_transport(reliable=transport.reliable)
        self.allowed_methods = frozenset(allowed_methods)
        self.on_request = on_request
        self.on_ack_timeout = on_ack_timeout
        self._log = log
        self._clients: dict[tuple[str, str], _ClientEntry] = {}
        self._servers: dict[tuple[str, str, str], _ServerEntry] = {}
        # INVITE server transactions by (Call-ID, CSeq): the ACK of a 2xx has a new branch.
        self._invites: dict[tuple[str, int], _ServerEntry] = {}
        # ACKs we sent for 2xx, kept 64*T1 to re-ACK a re-sent 2xx: key -> (ack, dest, until).
        self._acks: OrderedDict[tuple[str, int], tuple[Request, Endpoint, float]] = OrderedDict()
        self._heap: list[tuple[float, int, _Transaction]] = []
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        self._timer_task: asyncio.Task[None] | None = None
        self._send_tasks: set[asyncio.Task[None]] = set()
        self.requests_rejected = 0
        transport.handler = self._on_message

    async def __aenter__(self) -> UserAgent:
        self._timer_task = asyncio.create_task(self._timer_loop())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tasks = [*self._send_tasks]
        if self._timer_task is not None:
            tasks.append(self._timer_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for entry in self._clients.values():
            if not entry.future.done():
                entry.future.set_exception(TransportError("user agent closed"))
                entry.future.exception()
        self._clients.clear()
        self._servers.clear()
        self._invites.clear()

    # ---- sending ---------------------------------------------------------------------------

    def via(self, branch: str | None = None) -> str:
        bound = self.transport.bound
        return (
            f"SIP/2.0/{self.transport.name} {bound.host}:{bound.port}"
            f";branch={branch or new_branch()};rport"
        )

    def contact(self, user: str) -> str:
        bound = self.transport.bound
        suffix = ";transport=tcp" if self.transport.reliable else ""
        return f"<sip:{user}@{bound.host}:{bound.port}{suffix}>"

    async def request(
        self,
        request: Request,
        dest: Endpoint,
        *,
        on_provisional: Callable[[Response], None] | None = None,
    ) -> Response:
        """Send ``request`` in a client transaction; return the final response.

        Raises ``TransactionTimeout`` (timer B/F) or ``TransportError``.
        """
        loop = asyncio.get_running_loop()
        txn = ClientTransaction(request, self.timers, loop.time())
        entry = _ClientEntry(txn, dest, loop.create_future(), on_provisional)
        self._clients[txn.key] = entry
        # The transaction stays registered until it terminates, to absorb retransmissions.
        self._run_outputs(txn, txn.start(), dest)
        return await entry.future

    def send_ack(self, ack: Request, dest: Endpoint) -> None:
        """Send the ACK for a 2xx and remember it, to answer a re-sent 2xx (§13.2.2.4)."""
        now = asyncio.get_running_loop().time()
        while self._acks and next(iter(self._acks.values()))[2] < now:
            self._acks.popitem(last=False)
        self._acks[(ack.call_id, ack.cseq.number)] = (ack, dest, now + self.timers.timeout)
        self._send(ack, dest)

    def send_stateless(self, message: Message, dest: Endpoint) -> None:
        self._send(message, dest)

    def respond(self, txn: ServerTransaction, response: Response, dest: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        self._run_outputs(txn, txn.respond(response, loop.time()), dest)

    # ---- receiving -------------------------------------------------------------------------

    def _on_message(self, message: Message, source: Endpoint, transport: SipTransport) -> None:
        try:
            if isinstance(message, Response):
                self._on_response(message)
            else:
                self._on_request(message, source)
        except SipProtocolError as error:
            if isinstance(message, Request) and message.method != "ACK":
                self.requests_rejected += 1
                self._send(make_error_response(error), source)

    def _on_response(self, response: Response) -> None:
        entry = self._clients.get(client_key(response))
        if entry is None:
            self._resend_ack(response)
            return
        now = asyncio.get_running_loop().time()
        self._run_outputs(entry.txn, entry.txn.receive(response, now), entry.dest)

    def _on_request(self, request: Request, source: Endpoint) -> None:
        now = asyncio.get_running_loop().time()
        if request.method == "ACK":
            self._on_ack(request, source, now)
            return
        key = server_key(request)
        existing = self._servers.get(key)
        if existing is not None:
            self._run_outputs(existing.txn, existing.txn.receive(request, now), source)
            return
        validate_method(request, self.allowed_methods)
        txn = ServerTransaction(request, self.timers, now)
        incoming = IncomingRequest(request, source, self, txn)
        entry = _ServerEntry(txn, incoming)
        self._servers[key] = entry
        if request.method == "INVITE":
            self._invites[(request.call_id, request.cseq.number)] = entry
        if request.method == "CANCEL":
            self._on_cancel(incoming)
            return
        self._deliver(incoming)

    def _on_ack(self, ack: Request, source: Endpoint, now: float) -> None:
        entry = self._servers.get(server_key(ack))
        if entry is None:
            # The ACK of a 2xx has its own branch: find the INVITE by Call-ID and CSeq.
            entry = self._invites.get((ack.call_id, ack.cseq.number))
            if entry is not None and entry.txn.state is not State.ACCEPTED:
                entry = None
        if entry is None:
            self._deliver(IncomingRequest(ack, source, self))
            return
        self._run_outputs(entry.txn, entry.txn.receive(ack, now), source)

    def _on_cancel(self, cancel: IncomingRequest) -> None:
        via = cancel.request.top_via
        invite_key = (via.branch or "", f"{via.host}:{via.port or 5060}", "INVITE")
        invite = self._servers.get(invite_key)
        if invite is None:
            cancel.respond(481)
            return
        cancel.respond(200)
        if invite.txn.state is State.PROCEEDING:
            cancel.cancels = invite.incoming
            self._deliver(cancel)

    def _deliver(self, incoming: IncomingRequest) -> None:
        if self.on_request is None:
            if incoming.transaction is not None:
                incoming.respond(503)
            return
        try:
            self.on_request(incoming)
        except Exception as error:
            # The application failed on this request: answer 500, keep serving others.
            if self._log is not None:
                self._log.error(
                    "sip.handler_failed", method=incoming.request.method, error=repr(error)
                )
            if incoming.transaction is not None and incoming.transaction.last_response is None:
                incoming.respond(500)

    # ---- transaction outputs and timers ----------------------------------------------------

    def _run_outputs(self, txn: _Transaction, outputs: list[Output], dest: Endpoint) -> None:
        for output in outputs:
            if isinstance(output, Transmit):
                self._send(output.message, dest, txn)
            elif isinstance(output, ResponseReceived):
                self._client_result(txn, output.response)
            elif isinstance(output, AckReceived):
                self._deliver(IncomingRequest(output.ack, dest, self))
            elif isinstance(output, TimedOut):
                self._timed_out(txn, output)
        self._schedule(txn)

    def _client_result(self, txn: _Transaction, response: Response) -> None:
        entry = self._clients.get(client_key(txn.request))
        if entry is None:
            return
        if response.is_provisional:
            if entry.on_provisional is not None:
                entry.on_provisional(response)
        elif not entry.future.done():
            entry.future.set_result(response)
        else:
            self._resend_ack(response)

    def _resend_ack(self, response: Response) -> None:
        sent = self._acks.get((response.call_id, response.cseq.number))
        if response.is_success and sent is not None:
            self._send(sent[0], sent[1])

    def _timed_out(self, txn: _Transaction, output: TimedOut) -> None:
        if isinstance(txn, ClientTransaction):
            entry = self._clients.get(txn.key)
            if entry is not None and not entry.future.done():
                error: Exception = (
                    TransportError(f"{txn.request.method} could not be sent")
                    if output.timer is Event.TRANSPORT_ERROR
                    else TransactionTimeout(f"{txn.request.method}: {output.timer.value} fired")
                )
                entry.future.set_exception(error)
            return
        server = self._servers.get(txn.key)
        if server is not None and output.timer is Event.TIMER_L and self.on_ack_timeout:
            self.on_ack_timeout(server.incoming)

    def _schedule(self, txn: _Transaction) -> None:
        if txn.terminated:
            self._forget(txn)
            return
        deadline = txn.next_deadline()
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._counter), txn))
            self._wakeup.set()

    def _forget(self, txn: _Transaction) -> None:
        if isinstance(txn, ClientTransaction):
            client = self._clients.get(txn.key)
            if client is not None and client.txn is txn:
                del self._clients[txn.key]
            return
        server = self._servers.get(txn.key)
        if server is not None and server.txn is txn:
            del self._servers[txn.key]
        dialog_key = (txn.request.call_id, txn.request.cseq.number)
        invite = self._invites.get(dialog_key)
        if invite is not None and invite.txn is txn:
            del self._invites[dialog_key]

    async def _timer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            now = loop.time()
            while self._heap and self._heap[0][0] <= now:
                _, _, txn = heapq.heappop(self._heap)
                if txn.terminated:
                    continue
                dest = self._dest_of(txn)
                if dest is not None:
                    self._run_outputs(txn, txn.on_time(now), dest)
            delay = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()

    def _dest_of(self, txn: _Transaction) -> Endpoint | None:
        if isinstance(txn, ClientTransaction):
            client = self._clients.get(txn.key)
            return client.dest if client is not None else None
        server = self._servers.get(txn.key)
        return server.incoming.source if server is not None else None

    def _send(self, message: Message, dest: Endpoint, txn: _Transaction | None = None) -> None:
        if isinstance(self.transport, UdpTransport):
            # A datagram goes out at once; no task per retransmission.
            try:
                self.transport.send_now(message, dest)
            except (TransportError, OSError):
                if txn is not None:
                    self._run_outputs(txn, txn.transport_error(), dest)
            return
        task = asyncio.create_task(self._send_async(message, dest, txn))
        self._send_tasks.add(task)
        task.add_done_callback(self._send_tasks.discard)

    async def _send_async(self, message: Message, dest: Endpoint, txn: _Transaction | None) -> None:
        try:
            await self.transport.send(message, dest)
        except (TransportError, OSError):
            if txn is not None and not txn.terminated:
                self._run_outputs(txn, txn.transport_error(), dest)


@dataclass
class _ClientEntry:
    txn: ClientTransaction
    dest: Endpoint
    future: asyncio.Future[Response]
    on_provisional: Callable[[Response], None] | None


@dataclass
class _ServerEntry:
    txn: ServerTransaction
    incoming: IncomingRequest
