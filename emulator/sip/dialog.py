"""Dialog state (RFC 3261 §12) and the requests sent inside a dialog (ACK for 2xx, BYE).

Implements §12.1.1 (UAS side: dialog from the INVITE and our 2xx), §12.1.2 (UAC side: dialog
from our INVITE and its 2xx), §12.2.1.1 (in-dialog requests: Request-URI is the remote target,
Route is the route set, CSeq increments) and §13.2.2.4 (the ACK for a 2xx has the INVITE's CSeq
number and a fresh branch).  A ``Dialog`` is a frozen value: sending a request returns the next
value with the incremented local CSeq.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from emulator.sip.errors import MalformedMessage
from emulator.sip.headers import Headers, NameAddr
from emulator.sip.message import Request, Response


@dataclass(frozen=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_party: str  # our From value in requests we send (with our tag)
    remote_party: str  # our To value in requests we send (with their tag)
    remote_target: str
    local_cseq: int
    remote_cseq: int
    route_set: tuple[str, ...] = ()

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(cls, invite: Request, response: Response) -> Dialog:
        """Our side answered ``invite`` with ``response`` (a 2xx, or 1xx for an early dialog)."""
        to = response.to
        if not to.tag:
            raise MalformedMessage("Our response has no To tag")
        return cls(
            call_id=invite.call_id,
            local_tag=to.tag,
            remote_tag=invite.from_tag or "",
            local_party=str(to),
            remote_party=invite.headers.get("From") or "",
            remote_target=_contact_uri(invite),
            local_cseq=0,
            remote_cseq=invite.cseq.number,
            route_set=invite.headers.get_all("Record-Route"),
        )

    @classmethod
    def as_uac(cls, invite: Request, response: Response) -> Dialog:
        """Our ``invite`` was answered with ``response`` (a 2xx)."""
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_tag or "",
            remote_tag=response.to_tag or "",
            local_party=invite.headers.get("From") or "",
            remote_party=response.headers.get("To") or "",
            remote_target=_contact_uri(response),
            local_cseq=invite.cseq.number,
            remote_cseq=0,
            route_set=tuple(reversed(response.headers.get_all("Record-Route"))),
        )

    def request(
        self,
        method: str,
        *,
        via: str,
        contact: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> tuple[Dialog, Request]:
        """A new in-dialog request (not ACK) and the dialog with its CSeq advanced."""
        dialog = replace(self, local_cseq=self.local_cseq + 1)
        return dialog, dialog._build(
            method, dialog.local_cseq, via, contact, headers, body, content_type
        )

    def ack(self, invite_cseq: int, *, via: str, body: bytes = b"") -> Request:
        """The ACK for a 2xx: same CSeq number as the INVITE, method ACK (§13.2.2.4)."""
        return self._build("ACK", invite_cseq, via, None, (), body, None)

    def accepts(self, request: Request) -> bool:
        """Does an incoming request belong to this dialog (§12.2.2)?"""
        return (
            request.call_id == self.call_id
            and (request.to_tag or "") == self.local_tag
            and (request.from_tag or "") == self.remote_tag
        )

    def _build(
        self,
        method: str,
        cseq: int,
        via: str,
        contact: str | None,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        content_type: str | None,
    ) -> Request:
        pairs: list[tuple[str, str]] = [("Via", via), ("Max-Forwards", "70")]
        pairs += [("Route", route) for route in self.route_set]
        pairs += [
            ("From", self.local_party),
            ("To", self.remote_party),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if contact is not None:
            pairs.append(("Contact", contact))
        pairs.extend(headers)
        if content_type is not None:
            pairs.append(("Content-Type", content_type))
        pairs.append(("Content-Length", str(len(body))))
        return Request(method, self.remote_target, Headers.of(pairs), body)


def _contact_uri(message: Request | Response) -> str:
    contact = message.headers.get("Contact")
    if contact is None:
        raise MalformedMessage("Missing Contact header", is_request=isinstance(message, Request))
    return NameAddr.parse(contact).uri
