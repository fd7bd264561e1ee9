"""SIP header fields: the case-insensitive header list and the values the core reads.

Implements RFC 3261 §7.3 (header field format: case-insensitive names, compact forms of §7.3.3,
comma-separated multi-value fields such as Via and Contact), §19.1 (SIP URIs, simplified: user,
host, port, parameters), §20.10 (name-addr with display name and tag), §20.16 (CSeq) and §20.42
(Via with branch, received and rport parameters).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from emulator.sip.errors import MalformedMessage

# RFC 3261 §7.3.3 and the IANA registry: compact form -> canonical name.
COMPACT_FORMS = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
}

_CANONICAL = {
    name.lower(): name
    for name in (
        "Accept",
        "Allow",
        "Authorization",
        "Call-ID",
        "Contact",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Expires",
        "From",
        "Max-Forwards",
        "Min-Expires",
        "Record-Route",
        "Require",
        "Route",
        "Server",
        "Subject",
        "Supported",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
        "Event",
        "Allow-Events",
        "Refer-To",
        "Referred-By",
        "Session-Expires",
        "Reason",
    )
}

# Fields whose comma-separated values are separate header values (RFC 3261 §7.3.1).
MULTI_VALUE = frozenset(
    {"via", "route", "record-route", "contact", "allow", "supported", "require", "unsupported"}
)


def canonical_name(name: str) -> str:
    """Expand compact forms and give known names their RFC spelling; others keep theirs."""
    lowered = name.strip().lower()
    if lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    return _CANONICAL.get(lowered, name.strip())


def split_commas(value: str) -> list[str]:
    """Split a multi-value field on commas outside quotes and ``<...>``."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = in_angle = False
    escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and in_quotes:
            escaped = True
        elif char == '"':
            in_quotes = not in_quotes
        elif char == "<" and not in_quotes:
            in_angle = True
        elif char == ">" and not in_quotes:
            in_angle = False
        elif char == "," and not in_quotes and not in_angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


@dataclass(frozen=True)
class Headers:
    """An ordered, immutable list of (canonical name, value); lookups ignore case."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls(tuple((canonical_name(name), value.strip()) for name, value in pairs))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get(self, name: str) -> str | None:
        """The first value of ``name`` (compact or full form, any case), or None."""
        wanted = canonical_name(name).lower()
        for key, value in self.items:
            if key.lower() == wanted:
                return value
        return None

    def get_all(self, name: str) -> tuple[str, ...]:
        wanted = canonical_name(name).lower()
        return tuple(value for key, value in self.items if key.lower() == wanted)

    def without(self, name: str) -> Headers:
        wanted = canonical_name(name).lower()
        return Headers(tuple(item for item in self.items if item[0].lower() != wanted))

    def replace(self, name: str, *values: str) -> Headers:
        """Drop every ``name`` and put ``values`` where the first one was (or at the end)."""
        wanted = canonical_name(name).lower()
        new_items = tuple((canonical_name(name), value) for value in values)
        result: list[tuple[str, str]] = []
        placed = False
        for item in self.items:
            if item[0].lower() == wanted:
                if not placed:
                    result.extend(new_items)
                    placed = True
                continue
            result.append(item)
        if not placed:
            result.extend(new_items)
        return Headers(tuple(result))

    def add(self, name: str, value: str, *, first: bool = False) -> Headers:
        item = (canonical_name(name), value)
        return Headers((item, *self.items) if first else (*self.items, item))


def parse_params(text: str) -> dict[str, str]:
    """``;a=1;lr;b="x"`` -> {"a": "1", "lr": "", "b": "x"} (names lowercased)."""
    params: dict[str, str] = {}
    for chunk in text.split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        name, _, value = chunk.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return params


def format_params(params: dict[str, str]) -> str:
    return "".join(f";{name}={value}" if value else f";{name}" for name, value in params.items())


@dataclass(frozen=True)
class SipUri:
    """A ``sip:`` URI (RFC 3261 §19.1), without headers and password."""

    host: str
    user: str = ""
    port: int | None = None
    params: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    @classmethod
    def parse(cls, text: str) -> SipUri:
        scheme, sep, rest = text.strip().partition(":")
        if not sep or scheme.lower() not in ("sip", "sips") or not rest:
            raise MalformedMessage(f"Bad SIP URI {text!r}")
        rest, _, _headers = rest.partition("?")
        hostport, _, param_text = rest.partition(";")
        user, at, host_part = hostport.rpartition("@")
        if not at:
            user, host_part = "", hostport
        user = user.partition(":")[0]
        host, port = _split_hostport(host_part, text)
        params = tuple(parse_params(param_text).items())
        return cls(host=host, user=user, port=port, params=params, scheme=scheme.lower())

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name.lower())

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{self.host}{port}{format_params(dict(self.params))}"


def _split_hostport(text: str, whole: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.endswith("]") or ":" not in text:
        host, port_text = text, ""
    else:
        host, _, port_text = text.rpartition(":")
    if not host:
        raise MalformedMessage(f"Missing host in {whole!r}")
    if not port_text:
        return host, None
    try:
        port = int(port_text)
    except ValueError:
        raise MalformedMessage(f"Bad port in {whole!r}") from None
    if not 0 < port < 65536:
        raise MalformedMessage(f"Port out of range in {whole!r}")
    return host, port


@dataclass(frozen=True)
class NameAddr:
    """``"Display" <sip:user@host>;tag=x`` (RFC 3261 §20.10, §20.20, §20.39)."""

    uri: str
    display: str = ""
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if "<" in text:
            display, _, rest = text.partition("<")
            uri, closed, param_text = rest.partition(">")
            if not closed:
                raise MalformedMessage(f"Unclosed '<' in {text!r}")
            display = display.strip().strip('"')
        else:
            # addr-spec form: parameters after the URI belong to the header, not the URI.
            uri, _, param_text = text.partition(";")
            display = ""
        if not uri.strip():
            raise MalformedMessage(f"Missing URI in {text!r}")
        return cls(uri=uri.strip(), display=display, params=tuple(parse_params(param_text).items()))

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name.lower())

    def with_param(self, name: str, value: str) -> NameAddr:
        params = dict(self.params)
        params[name.lower()] = value
        return NameAddr(self.uri, self.display, tuple(params.items()))

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        return f"{display}<{self.uri}>{format_params(dict(self.params))}"


@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=z9hG4bK...`` (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        protocol, _, rest = text.strip().partition(" ")
        pieces = [piece.strip() for piece in protocol.split("/")]
        if len(pieces) != 3 or pieces[0].upper() != "SIP" or pieces[1] != "2.0" or not pieces[2]:
            raise MalformedMessage(f"Bad Via {text!r}")
        sent_by, _, param_text = rest.strip().partition(";")
        host, port = _split_hostport(sent_by.strip(), text)
        return cls(pieces[2].upper(), host, port, tuple(parse_params(param_text).items()))

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name.lower())

    def with_param(self, name: str, value: str) -> Via:
        params = dict(self.params)
        params[name.lower()] = value
        return Via(self.transport, self.host, self.port, tuple(params.items()))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(dict(self.params))}"


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        number_text, _, method = text.strip().partition(" ")
        method = method.strip()
        if not number_text.isdigit() or not method or " " in method:
            raise MalformedMessage(f"Bad CSeq {text!r}")
        number = int(number_text)
        if number >= 2**31:
            raise MalformedMessage(f"CSeq number out of range in {text!r}")
        return cls(number, method)

    def __str__(self) -> str:
        return f"{self.number} {self.method}"
