"""HTTP/1.1 message heads and body framing for the proxy (RFC 9112), without I/O.

Owns what a reverse proxy must understand of HTTP and nothing more: parsing a request or
response head (start line + header fields, RFC 9112 §2-§5), deciding how the body that follows is
delimited (§6: ``Transfer-Encoding: chunked``, ``Content-Length``, or until close; no body for
HEAD, 1xx, 204 and 304), chunk-size lines (§7.1), hop-by-hop headers (RFC 9110 §7.6.1) and
``Connection: upgrade`` (RFC 9110 §7.8). Malformed input raises :class:`HttpError` carrying the
status to answer with; it is never passed on.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import cached_property

from emulator.proxy.errors import HttpError

# RFC 9110 §5.6.2 token
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/1\.[01]")
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(rb"[\x21-\x7e]+")
# A whole header section of well-formed fields, each ended by CRLF (no folding, no bare CR/LF).
_FIELD_BLOCK = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
    }
)

Headers = tuple[tuple[str, str], ...]


def _get_all(headers: Headers, name: str) -> list[str]:
    lowered = name.lower()
    return [value for key, value in headers if key.lower() == lowered]


def _split_tokens(values: list[str]) -> set[str]:
    return {
        token.strip().lower() for value in values for token in value.split(",") if token.strip()
    }


class _Fields:
    """Field look-ups of a head, by lower-cased name, indexed once per head (a proxy asks a
    head for the same few fields several times)."""

    version: str
    headers: Headers

    @cached_property
    def _index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for key, value in self.headers:
            index.setdefault(key.lower(), []).append(value)
        return index

    def get(self, name: str) -> str | None:
        values = self._index.get(name.lower())
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self._index.get(name.lower(), ()))

    @cached_property
    def connection_tokens(self) -> set[str]:
        return _split_tokens(self._index.get("connection", []))

    @property
    def keep_alive(self) -> bool:
        tokens = self.connection_tokens
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass(frozen=True)
class RequestHead(_Fields):
    method: str
    target: str
    version: str
    headers: Headers

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def is_upgrade(self) -> bool:
        return "upgrade" in self.connection_tokens and bool(self.get("Upgrade"))

    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for value in self.get_all("Cookie"):
            for pair in value.split(";"):
                name, sep, item = pair.strip().partition("=")
                if sep and name and name not in jar:
                    jar[name] = item.strip().strip('"')
        return jar


@dataclass(frozen=True)
class ResponseHead(_Fields):
    version: str
    status: int
    reason: str
    headers: Headers


def _split_head(data: bytes) -> tuple[bytes, list[bytes]]:
    if not data.endswith(b"\r\n\r\n"):
        raise HttpError(400, "message head is not terminated by an empty line")
    lines = data[:-4].split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise HttpError(400, "bare CR or LF in the message head")
    return lines[0], lines[1:]


def _parse_fields(lines: list[bytes]) -> Headers:
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete line folding in a header field")
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise HttpError(400, f"malformed header field {line[:40]!r}")
        value = value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(value):
            raise HttpError(400, f"control character in header field {name.decode()}")
        fields.append((name.decode("ascii"), value.decode("latin-1")))
    return tuple(fields)


def _well_formed(data: bytes) -> tuple[bytes, Headers] | None:
    """Start line and fields of a well-formed head in one regular-expression pass; None when
    the head has a fault, which the line-by-line checks then name."""
    start_end = data.find(b"\r\n")
    start = data[:start_end]
    block = data[start_end + 2 : -2]
    if (
        start_end < 0
        or not data.endswith(b"\r\n\r\n")
        or b"\n" in start
        or b"\r" in start
        or not _FIELD_BLOCK.fullmatch(block)
    ):
        return None
    fields = tuple(
        (name.decode("ascii"), value.strip(b" \t").decode("latin-1"))
        for name, _, value in (line.partition(b":") for line in block.split(b"\r\n")[:-1])
    )
    return start, fields


def parse_request_head(data: bytes) -> RequestHead:
    well_formed = _well_formed(data)
    if well_formed is None:
        start, lines = _split_head(data)
    else:
        start, fields = well_formed
    parts = start.split(b" ")
    if len(parts) != 3:
        raise HttpError(400, f"malformed request line {start[:60]!r}")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise HttpError(400, f"malformed method {method[:20]!r}")
    if not _TARGET.fullmatch(target):
        raise HttpError(400, "malformed request target")
    if not _VERSION.fullmatch(version):
        if version.startswith(b"HTTP/"):
            raise HttpError(505, f"HTTP version {version.decode('latin-1')} not supported")
        raise HttpError(400, "malformed HTTP version")
    if well_formed is None:
        fields = _parse_fields(lines)
    head = RequestHead(method.decode("ascii"), target.decode("ascii"), version.decode(), fields)
    if head.version == "HTTP/1.1" and head.get("Host") is None:
        raise HttpError(400, "HTTP/1.1 request without Host header")
    if len(head.get_all("Host")) > 1:
        raise HttpError(400, "more than one Host header")
    return head


def parse_response_head(data: bytes) -> ResponseHead:
    well_formed = _well_formed(data)
    if well_formed is None:
        start, lines = _split_head(data)
    else:
        start, fields = well_formed
    version, _, rest = start.partition(b" ")
    status_text, _, reason = rest.partition(b" ")
    if not _VERSION.fullmatch(version) or len(status_text) != 3 or not status_text.isdigit():
        raise HttpError(502, f"upstream sent a malformed status line {start[:60]!r}")
    if well_formed is None:
        try:
            fields = _parse_fields(lines)
        except HttpError as exc:
            raise HttpError(502, f"upstream sent {exc.reason}") from None
    return ResponseHead(version.decode(), int(status_text), reason.decode("latin-1"), fields)


# --- framing (RFC 9112 §6) -----------------------------------------------------------------


class BodyKind(enum.Enum):
    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"


@dataclass(frozen=True)
class Framing:
    kind: BodyKind
    length: int = 0


def _content_length(head: _Fields) -> int | None:
    values = {v.strip() for value in head.get_all("Content-Length") for v in value.split(",")}
    if not values:
        return None
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise HttpError(400, "invalid or conflicting Content-Length")
    return int(next(iter(values)))


def request_framing(head: RequestHead) -> Framing:
    encodings = [
        token.strip().lower()
        for value in head.get_all("Transfer-Encoding")
        for token in value.split(",")
    ]
    length = _content_length(head)
    if encodings:
        if length is not None:
            # RFC 9112 §6.1: a request smuggling vector; refuse rather than guess.
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if encodings[-1] != "chunked":
            raise HttpError(501, "unsupported Transfer-Encoding")
        return Framing(BodyKind.CHUNKED)
    if length:
        return Framing(BodyKind.LENGTH, length)
    return Framing(BodyKind.NONE)


def response_framing(head: ResponseHead, request_method: str) -> Framing:
    if request_method == "HEAD" or head.status < 200 or head.status in (204, 304):
        return Framing(BodyKind.NONE)
    encodings = [
        token.strip().lower()
        for value in head.get_all("Transfer-Encoding")
        for token in value.split(",")
    ]
    if encodings and encodings[-1] == "chunked":
        return Framing(BodyKind.CHUNKED)
    if encodings:
        return Framing(BodyKind.UNTIL_CLOSE)
    try:
        length = _content_length(head)
    except HttpError:
        raise HttpError(502, "upstream sent an invalid Content-Length") from None
    if length is not None:
        return Framing(BodyKind.LENGTH, length) if length else Framing(BodyKind.NONE)
    return Framing(BodyKind.UNTIL_CLOSE)


def parse_chunk_size(line: bytes) -> int:
    """The size announced by a chunk-size line (``1a;ext=1\\r\\n``)."""
    size_text = line.rstrip(b"\r\n").split(b";", 1)[0].strip()
    if not size_text or len(size_text) > 16:
        raise HttpError(400, "malformed chunk size")
    try:
        return int(size_text, 16)
    except ValueError:
        raise HttpError(400, "malformed chunk size") from None


# --- rewriting -----------------------------------------------------------------------------


def forwardable(headers: Headers, *, keep_upgrade: bool) -> Headers:
    """Drop hop-by-hop fields (and the ones ``Connection`` names) before forwarding."""
    named = _split_tokens(_get_all(headers, "Connection"))
    dropped = (_HOP_BY_HOP | named) - ({"connection", "upgrade"} if keep_upgrade else set())
    return tuple((key, value) for key, value in headers if key.lower() not in dropped)


def serialize_request(head: RequestHead) -> bytes:
    lines = [f"{head.method} {head.target} {head.version}"]
    lines.extend(f"{key}: {value}" for key, value in head.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def serialize_response(head: ResponseHead) -> bytes:
    lines = [f"{head.version} {head.status} {head.reason}".rstrip()]
    lines.extend(f"{key}: {value}" for key, value in head.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def simple_response(status: int, reason: str, body: str, *, close: bool = True) -> bytes:
    """A small text/plain response written by the proxy itself."""
    payload = body.encode()
    headers: list[tuple[str, str]] = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(payload))),
    ]
    if close:
        headers.append(("Connection", "close"))
    return serialize_response(ResponseHead("HTTP/1.1", status, reason, tuple(headers))) + payload
