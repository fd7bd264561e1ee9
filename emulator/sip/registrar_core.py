"""The registrar's binding table without I/O: REGISTER in, response and binding changes out.

Implements RFC 3261 §10.3 (processing REGISTER: Contact ``*`` with Expires 0, expiry from the
Contact ``expires`` parameter or the Expires header, 423 with Min-Expires, Call-ID/CSeq ordering
of refreshes) and §10.2.4 (the 200 lists every current binding with its remaining expiry).

The address-of-record is keyed by the user part of the To URI (the DN, e.g. ``7002``), so the
same DN registered at any node of the cluster names the same agent.  Expiry values on the wire
are deployment seconds; the table scales them with the lab's ``TimeScale`` and counts time in
the I/O layer's clock (``now`` arguments).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from emulator.common.addresses import Endpoint
from emulator.common.timescale import TimeScale
from emulator.sip.builder import make_response
from emulator.sip.errors import MalformedMessage, SipProtocolError
from emulator.sip.headers import NameAddr, SipUri
from emulator.sip.message import Request, Response


@dataclass(frozen=True)
class Binding:
    aor: str
    contact: str
    expires: int  # granted, in deployment seconds
    expires_at: float  # in the I/O layer's clock, scaled
    call_id: str
    cseq: int
    registered_at: float
    refreshed_at: float
    refreshes: int = 0
    # Where the REGISTER came from: requests to this contact go back the same way (a relay link).
    source: Endpoint | None = None

    def remaining(self, now: float, scale: TimeScale) -> int:
        return max(0, math.ceil((self.expires_at - now) / scale.factor - 1e-9))


@dataclass(frozen=True)
class RegisterOutcome:
    response: Response
    aor: str
    added: tuple[Binding, ...] = ()  # new or refreshed bindings
    removed: tuple[Binding, ...] = ()
    # True when the AOR had no binding before this REGISTER (the DN arrived at this registrar).
    is_new: bool = False


def aor_of(uri_text: str) -> str:
    try:
        uri = SipUri.parse(uri_text)
    except SipProtocolError:
        return uri_text.strip().lower()
    return uri.user or f"{uri.host}"


class Registrar:
    """AOR -> bindings, with expiry; one instance per registrar node."""

    def __init__(
        self,
        *,
        scale: TimeScale | None = None,
        min_expires: int = 1,
        max_expires: int = 7200,
        default_expires: int = 3600,
    ) -> None:
        self.scale = scale or TimeScale()
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self._bindings: dict[str, dict[str, Binding]] = {}

    def lookup(self, aor: str, now: float) -> tuple[Binding, ...]:
        return tuple(
            binding for binding in self._bindings.get(aor, {}).values() if binding.expires_at > now
        )

    def all_bindings(self) -> tuple[Binding, ...]:
        return tuple(b for contacts in self._bindings.values() for b in contacts.values())

    def next_expiry(self) -> float | None:
        return min((binding.expires_at for binding in self.all_bindings()), default=None)

    def expire(self, now: float) -> list[Binding]:
        """Remove and return every binding whose expiry has passed."""
        expired: list[Binding] = []
        for aor in list(self._bindings):
            contacts = self._bindings[aor]
            for contact, binding in list(contacts.items()):
                if binding.expires_at <= now:
                    expired.append(contacts.pop(contact))
            if not contacts:
                del self._bindings[aor]
        return expired

    def remove(self, aor: str) -> tuple[Binding, ...]:
        """Drop an AOR (e.g. the cluster moved it elsewhere)."""
        return tuple(self._bindings.pop(aor, {}).values())

    def process(
        self, request: Request, now: float, *, source: Endpoint | None = None
    ) -> RegisterOutcome:
        """Apply a REGISTER; bad input yields a 4xx/5xx outcome, never an exception."""
        try:
            aor = aor_of(request.to.uri)
        except SipProtocolError as error:
            return RegisterOutcome(make_response(request, 400, error.reason), aor="")
        try:
            return self._apply(request, aor, now, source)
        except SipProtocolError as error:
            reason = error.reason if error.status_code == 400 else None
            return RegisterOutcome(make_response(request, error.status_code, reason), aor=aor)

    def _apply(
        self, request: Request, aor: str, now: float, source: Endpoint | None
    ) -> RegisterOutcome:
        header_expires = _expires_value(request.headers.get("Expires"))
        contacts = request.headers.get_all("Contact")
        existing = self._bindings.get(aor, {})
        was_new = not self.lookup(aor, now)
        if any(contact.strip() == "*" for contact in contacts):
            if len(contacts) != 1 or header_expires != 0:
                raise MalformedMessage("Contact * needs Expires: 0 and no other Contact")
            dropped = tuple(self._bindings.pop(aor, {}).values())
            return RegisterOutcome(self._ok(request, aor, now), aor=aor, removed=dropped)
        changes: list[tuple[str, int]] = []
        for contact_text in contacts:
            contact = NameAddr.parse(contact_text)
            expires = _expires_value(contact.param("expires"))
            if expires is None:
                expires = header_expires if header_expires is not None else self.default_expires
            if 0 < expires < self.min_expires:
                too_brief = make_response(
                    request, 423, headers=[("Min-Expires", str(self.min_expires))]
                )
                return RegisterOutcome(too_brief, aor=aor)
            changes.append((contact.uri, min(expires, self.max_expires)))
        for uri, _ in changes:
            old = existing.get(uri)
            if (
                old is not None
                and old.call_id == request.call_id
                and request.cseq.number <= old.cseq
            ):
                raise SipProtocolError("Out-of-order REGISTER", status_code=500)
        added: list[Binding] = []
        removed: list[Binding] = []
        for uri, expires in changes:
            old = existing.get(uri)
            if expires == 0:
                if old is not None:
                    removed.append(existing.pop(uri))
                continue
            binding = Binding(
                aor=aor,
                contact=uri,
                expires=expires,
                expires_at=now + self.scale(expires),
                call_id=request.call_id,
                cseq=request.cseq.number,
                registered_at=old.registered_at if old is not None else now,
                refreshed_at=now,
                source=source,
            )
            if old is not None:
                binding = replace(binding, refreshes=old.refreshes + 1)
            existing[uri] = binding
            added.append(binding)
        if existing:
            self._bindings[aor] = existing
        else:
            self._bindings.pop(aor, None)
        return RegisterOutcome(
            self._ok(request, aor, now),
            aor=aor,
            added=tuple(added),
            removed=tuple(removed),
            is_new=was_new and bool(added),
        )

    def _ok(self, request: Request, aor: str, now: float) -> Response:
        contacts = [
            ("Contact", f"<{b.contact}>;expires={b.remaining(now, self.scale)}")
            for b in self.lookup(aor, now)
        ]
        return make_response(request, 200, headers=contacts)


def _expires_value(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit():
        raise MalformedMessage(f"Bad Expires value {text[:20]!r}")
    return min(int(text), 2**32 - 1)
