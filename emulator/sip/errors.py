"""The one exception tree of the SIP core (``emulator.sip``).

``SipError`` is the root.  A *remote* protocol error (``SipProtocolError`` and its children) is a
peer's bad input: it carries the status code and reason phrase to answer with (RFC 3261 §8.2,
§21.4) and, when the bad message was a request, whatever headers could be read so the I/O layer
can still build that answer.  A *local* error (``SipUsageError``) is our own misuse of the core,
e.g. an unlisted transaction transition.
"""

from __future__ import annotations

from collections.abc import Sequence


class SipError(Exception):
    """Root of every error raised by ``emulator.sip``."""


class SipUsageError(SipError):
    """Local misuse of the core (a bug in the caller, never a peer's fault)."""


class TransactionStateError(SipUsageError):
    """An event arrived in a transaction state whose transition table does not list it."""

    def __init__(self, kind: str, state: str, event: str) -> None:
        super().__init__(f"{kind} transaction: no transition from state {state} on {event}")
        self.kind = kind
        self.state = state
        self.event = event


class SipProtocolError(SipError):
    """A peer sent something we must answer with ``status_code`` (or drop when unanswerable)."""

    status_code = 400

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        is_request: bool | None = None,
        headers: Sequence[tuple[str, str]] = (),
        fatal_for_stream: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if status_code is not None:
            self.status_code = status_code
        # True: the start line was a request line, so an answer is expected; False: a response
        # (never answered, RFC 3261 §18.1.2); None: not recognisable as SIP at all.
        self.is_request = is_request
        # The headers that could be read, so a 400 can still copy Via/From/To/Call-ID/CSeq.
        self.headers = tuple(headers)
        # On a stream transport the framing is lost (bad Content-Length): close after answering.
        self.fatal_for_stream = fatal_for_stream


class MalformedMessage(SipProtocolError):
    """Unparseable start line, header line or body framing: 400 Bad Request."""


class MissingHeader(SipProtocolError):
    """A mandatory header (Via, From, To, Call-ID, CSeq) is absent: 400 naming it."""

    def __init__(
        self, header: str, *, is_request: bool | None, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(f"Missing {header} header", is_request=is_request, headers=headers)
        self.header = header


class BadContentLength(SipProtocolError):
    """Content-Length is not a number, negative, or disagrees with the datagram's body."""


class MethodNotImplemented(SipProtocolError):
    """The method is not one SIP knows here: 501 Not Implemented (RFC 3261 §8.2.1)."""

    status_code = 501


class MethodNotAllowed(SipProtocolError):
    """A known method this element does not accept: 405 with an Allow header (§8.2.1)."""

    status_code = 405

    def __init__(
        self, reason: str, *, allowed: frozenset[str], headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(reason, is_request=True, headers=headers)
        self.allowed = allowed


class SdpError(SipProtocolError):
    """An SDP body we cannot use: 488 Not Acceptable Here (RFC 3261 §13.3.1.3)."""

    status_code = 488


class TransactionTimeout(SipError):
    """A client transaction ended without a final response (Timer B or Timer F fired)."""


class TransportError(SipError):
    """The transport could not deliver a request (connection refused, reset, closed)."""
