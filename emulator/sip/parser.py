"""Bytes -> SIP messages, with the validation a peer's bad input gets answered by.

Implements RFC 3261 §7 (start line, header folding, CRLF CRLF, body), §8.1.1/§8.2 (mandatory
Via, From, To, Call-ID, CSeq, CSeq method matching the request's), §18.3 (framing: a datagram
is one message and Content-Length may shorten its body; on a stream Content-Length delimits
messages, so split and coalesced messages are both handled by ``StreamParser``) and §7.5
(CRLF keep-alives between messages are ignored).

Every failure is a ``SipProtocolError`` carrying the status to answer with; the parser never
raises anything else on peer input.
"""

from __future__ import annotations

import re

from emulator.sip.errors import (
    BadContentLength,
    MalformedMessage,
    MethodNotAllowed,
    MethodNotImplemented,
    MissingHeader,
    SipProtocolError,
)
from emulator.sip.headers import MULTI_VALUE, CSeq, Headers, NameAddr, Via, split_commas
from emulator.sip.message import (
    KNOWN_METHODS,
    MANDATORY_HEADERS,
    SIP_VERSION,
    Message,
    Request,
    Response,
)

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_REQUEST_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*:\S+$")

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024


def parse_datagram(data: bytes) -> Message:
    """Parse one UDP datagram as one SIP message (RFC 3261 §18.3)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    start_line, headers = _parse_head(head)
    length_text = headers.get("Content-Length")
    if length_text is not None:
        length = _content_length(length_text, start_line, headers)
        if length > len(body):
            raise BadContentLength(
                f"Content-Length {length} exceeds the {len(body)} body bytes received",
                is_request=_looks_like_request(start_line),
                headers=tuple(headers),
            )
        body = body[:length]
    return _build(start_line, headers, body)


def validate_method(request: Request, allowed: frozenset[str]) -> None:
    """Raise 501 for a method SIP does not know here, 405 for a known one not ``allowed``."""
    if request.method not in KNOWN_METHODS and request.method not in allowed:
        raise MethodNotImplemented(
            f"Method {request.method} not implemented",
            is_request=True,
            headers=tuple(request.headers),
        )
    if request.method not in allowed:
        raise MethodNotAllowed(
            f"Method {request.method} not allowed", allowed=allowed, headers=tuple(request.headers)
        )


class StreamParser:
    """Incremental parser for a TCP byte stream; ``feed`` returns messages and errors in order.

    An error whose ``fatal_for_stream`` is set means the framing is lost: the caller answers
    it and closes the connection (RFC 3261 §18.3).  After a fatal error the parser stops.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending_head: tuple[str, Headers, int] | None = None
        self.broken = False

    def feed(self, data: bytes) -> list[Message | SipProtocolError]:
        if self.broken:
            return []
        self._buffer += data
        results: list[Message | SipProtocolError] = []
        while True:
            try:
                item = self._next()
            except SipProtocolError as error:
                results.append(error)
                if error.fatal_for_stream:
                    self.broken = True
                    self._buffer.clear()
                    break
                continue
            if item is None:
                break
            results.append(item)
        return results

    def _next(self) -> Message | None:
        if self._pending_head is None:
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    raise MalformedMessage(
                        "Header section too long or not terminated", fatal_for_stream=True
                    )
                return None
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            start_line, headers = _parse_head(head)
            length = _content_length(
                headers.get("Content-Length") or "0", start_line, headers, stream=True
            )
            self._pending_head = (start_line, headers, length)
        start_line, headers, length = self._pending_head
        if len(self._buffer) < length:
            return None
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        self._pending_head = None
        return _build(start_line, headers, body)


def _looks_like_request(start_line: str) -> bool:
    return not start_line.startswith("SIP/")


def _parse_head(head: bytes) -> tuple[str, Headers]:
    """Split the head into a start line and headers; only checks syntax of header lines."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("Message head is not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise MalformedMessage("Empty message")
    start_line = lines[0].strip()
    pairs: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            if not pairs:
                raise MalformedMessage("Continuation line before any header")
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name.strip()):
            raise MalformedMessage(
                f"Malformed header line {line[:40]!r}",
                is_request=_looks_like_request(start_line),
                headers=pairs,
            )
        pairs.append((name, value))
    expanded: list[tuple[str, str]] = []
    for name, value in Headers.of(pairs):
        if name.lower() in MULTI_VALUE and value.strip() != "*":
            expanded.extend((name, part) for part in split_commas(value))
        else:
            expanded.append((name, value))
    return start_line, Headers(tuple(expanded))


def _content_length(text: str, start_line: str, headers: Headers, *, stream: bool = False) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) > MAX_BODY_BYTES:
        raise BadContentLength(
            f"Bad Content-Length {text[:20]!r}",
            is_request=_looks_like_request(start_line),
            headers=tuple(headers),
            fatal_for_stream=stream,
        )
    return int(text)


def _build(start_line: str, headers: Headers, body: bytes) -> Message:
    is_request = _looks_like_request(start_line)
    parts = start_line.split(" ", 2)
    if is_request:
        if (
            len(parts) != 3
            or parts[2] != SIP_VERSION
            or not _TOKEN.match(parts[0])
            or not _REQUEST_URI.match(parts[1])
        ):
            raise MalformedMessage(
                f"Malformed start line {start_line[:60]!r}",
                is_request=_answerable(headers),
                headers=tuple(headers),
            )
        _check_mandatory(headers, is_request=True)
        request = Request(parts[0], parts[1], headers, body)
        if request.cseq.method != request.method:
            raise MalformedMessage(
                "CSeq method does not match the request method",
                is_request=True,
                headers=tuple(headers),
            )
        return request
    if (
        len(parts) < 2
        or parts[0] != SIP_VERSION
        or not (parts[1].isdigit() and len(parts[1]) == 3 and 100 <= int(parts[1]) <= 699)
    ):
        raise MalformedMessage(f"Malformed status line {start_line[:60]!r}", is_request=False)
    _check_mandatory(headers, is_request=False)
    return Response(int(parts[1]), parts[2] if len(parts) == 3 else "", headers, body)


def _answerable(headers: Headers) -> bool | None:
    """A broken start line is still a request we answer if it carries SIP's own headers."""
    return True if "Via" in headers and "CSeq" in headers else None


def _check_mandatory(headers: Headers, *, is_request: bool) -> None:
    for name in MANDATORY_HEADERS:
        value = headers.get(name)
        if value is None or not value.strip():
            raise MissingHeader(name, is_request=is_request, headers=tuple(headers))
    try:
        for via in headers.get_all("Via"):
            Via.parse(via)
        CSeq.parse(headers.get("CSeq") or "")
        NameAddr.parse(headers.get("From") or "")
        NameAddr.parse(headers.get("To") or "")
    except SipProtocolError as error:
        raise MalformedMessage(
            error.reason, is_request=is_request, headers=tuple(headers)
        ) from None
