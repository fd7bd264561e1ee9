"""Building requests and responses: identifiers, the UAS response rule, error answers.

Implements RFC 3261 §8.2.6 (a response copies Via, From, To, Call-ID and CSeq from the request
and adds a To tag), §8.1.1.7 (branch IDs start with the magic cookie ``z9hG4bK``), §19.3 (tags
and Call-IDs are random) and §8.2.1 (405 carries Allow).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from emulator.sip.errors import MethodNotAllowed, SipProtocolError
from emulator.sip.headers import Headers, NameAddr
from emulator.sip.message import Request, Response, reason_phrase

BRANCH_COOKIE = "z9hG4bK"
_COPIED = ("Via", "From", "To", "Call-ID", "CSeq")


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(5)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to ``request`` per §8.2.6: a To tag (``to_tag`` or a fresh one) is added when
    the To has none; a dialog passes its own tag so 180 and 200 carry the same one."""
    tag = to_tag if to_tag is not None else new_tag()
    return _response_from(request.headers.items, status, reason, tag, headers, body, content_type)


def make_error_response(error: SipProtocolError) -> Response:
    """Answer a peer's bad request with what could be read of it (best effort for a 400)."""
    extra: list[tuple[str, str]] = []
    if isinstance(error, MethodNotAllowed) and error.allowed:
        extra.append(("Allow", ", ".join(sorted(error.allowed))))
    return _response_from(
        error.headers, error.status_code, None, new_tag(), extra, b"", None, warning=error.reason
    )


def _response_from(
    source: Sequence[tuple[str, str]],
    status: int,
    reason: str | None,
    to_tag: str | None,
    extra: Iterable[tuple[str, str]],
    body: bytes,
    content_type: str | None,
    *,
    warning: str | None = None,
) -> Response:
    copied = [(name, value) for name, value in Headers.of(source) if name in _COPIED]
    if to_tag is not None and status != 100:
        copied = [
            (name, _with_tag(value, to_tag) if name == "To" else value) for name, value in copied
        ]
    headers = Headers(tuple(copied))
    for name, value in extra:
        headers = headers.add(name, value)
    if warning is not None and status >= 400:
        # RFC 3261 §20.43: a 399 warning carries the human-readable reason of our rejection.
        headers = headers.add("Warning", f'399 drlab "{warning}"')
    if content_type is not None:
        headers = headers.add("Content-Type", content_type)
    headers = headers.add("Content-Length", str(len(body)))
    phrase = reason if reason is not None else reason_phrase(status)
    if warning is not None and reason is None and status == 400:
        phrase = warning
    return Response(status, phrase, headers, body)


def _with_tag(value: str, tag: str) -> str:
    try:
        to = NameAddr.parse(value)
    except SipProtocolError:
        return value
    if to.tag:
        return value
    # Append rather than re-render: the peer's To text (display name, spacing) stays as it was.
    return f"{value};tag={tag}"


def make_request(
    method: str,
    uri: str,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    max_forwards: int = 70,
) -> Request:
    """A request with the mandatory headers of §8.1.1 in the conventional order."""
    pairs: list[tuple[str, str]] = [
        ("Via", via),
        ("Max-Forwards", str(max_forwards)),
        ("From", from_),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None:
        pairs.append(("Contact", contact))
    pairs.extend(headers)
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    pairs.append(("Content-Length", str(len(body))))
    return Request(method, uri, Headers.of(pairs), body)


def make_cancel(invite: Request) -> Request:
    """§9.1: CANCEL copies the INVITE's Request-URI, top Via (same branch), Route, Call-ID,
    From, To and CSeq number, with method CANCEL."""
    pairs: list[tuple[str, str]] = [("Via", invite.headers.get("Via") or "")]
    pairs += [("Route", route) for route in invite.headers.get_all("Route")]
    pairs += [
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("From") or ""),
        ("To", invite.headers.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} CANCEL"),
        ("Content-Length", "0"),
    ]
    return Request("CANCEL", invite.uri, Headers.of(pairs), b"")
