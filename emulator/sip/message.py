"""SIP requests and responses as frozen dataclasses, and their serialisation.

Implements RFC 3261 §7 (message format: start line, headers, CRLF, body) for output.  Parsing
lives in ``emulator.sip.parser``.  Serialisation always writes a Content-Length that matches the
body, which a stream transport needs for framing (§18.3) and which a datagram tolerates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from emulator.sip.headers import CSeq, Headers, NameAddr, Via

SIP_VERSION = "SIP/2.0"

# RFC 3261 §21 reason phrases for the codes the lab uses.
REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    603: "Decline",
}

# Methods SIP knows (RFC 3261 and the usual extensions).  A method outside this set is answered
# 501; a method inside it that an element does not accept is answered 405 (§8.2.1).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)

MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


def reason_phrase(status: int) -> str:
    return REASONS.get(status, "Unknown")


class _Message:
    """Header accessors shared by requests and responses (a mixin, not a dataclass)."""

    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self.headers.get("CSeq") or "")

    @property
    def vias(self) -> tuple[Via, ...]:
        return tuple(Via.parse(value) for value in self.headers.get_all("Via"))

    @property
    def top_via(self) -> Via:
        return Via.parse(self.headers.get("Via") or "")

    @property
    def branch(self) -> str:
        return self.top_via.branch or ""

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("To") or "")

    @property
    def from_tag(self) -> str | None:
        return self.from_.tag

    @property
    def to_tag(self) -> str | None:
        return self.to.tag

    def _head_and_body(self, start_line: str) -> bytes:
        headers = self.headers.replace("Content-Length", str(len(self.body)))
        lines = [start_line, *(f"{name}: {value}" for name, value in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(frozen=True)
class Request(_Message):
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def to_bytes(self) -> bytes:
        return self._head_and_body(f"{self.method} {self.uri} {SIP_VERSION}")

    def with_headers(self, headers: Headers) -> Request:
        return replace(self, headers=headers)


@dataclass(frozen=True)
class Response(_Message):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def to_bytes(self) -> bytes:
        return self._head_and_body(f"{SIP_VERSION} {self.status} {self.reason}")

    def with_headers(self, headers: Headers) -> Response:
        return replace(self, headers=headers)

    @property
    def is_provisional(self) -> bool:
        return 100 <= self.status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


Message = Request | Response
