"""TC-layer messages between SIP Cluster nodes, and their codec (sans-I/O).

The TC-layer reuses T-Lib framing and ADDP liveness (emulator/tlib) with its own vocabulary:
``Hello`` on (re)connection carries the sender's ownership view and the call parties it hosts, so
that the two sides reconcile after a partition; ``Ownership`` announces a change of DN owner;
``DeskRequest``/``DeskEvent`` carry desktop requests to the owner and events back to desktop
nodes; ``CallRequest``/``CallEvent`` do the same between owner and call node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from emulator.tlib.enums import CallState, CallType, PhoneType
from emulator.tlib.errors import ErrorCode, ProtocolError
from emulator.tlib.messages import Heartbeat


@dataclass(frozen=True)
class Requester:
    """The desktop (node + client connection) a request came from, and its ReferenceID."""

    node: str
    client: int
    reference_id: int | None = None


@dataclass(frozen=True)
class OwnerRecord:
    dn: str
    owner: str
    epoch: int
    phone: PhoneType = PhoneType.PSTN

    def beats(self, other: OwnerRecord) -> bool:
        """Reconciliation rule after a partition: the higher epoch wins; on equal epochs (two
        sides that claimed an unowned DN at once) the lower node name wins, so every node picks
        the same owner without another round trip."""
        return (self.epoch, other.owner) > (other.epoch, self.owner)


@dataclass(frozen=True)
class PartyInfo:
    """One DN party of a call, as its call node reports it."""

    conn_id: str
    dn: str
    state: CallState
    other_dn: str
    call_type: CallType
    call_node: str
    # The call's user data (replaced, never changed in place, so a PartyInfo can share it).
    user_data: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Hello:
    NAME: ClassVar[str] = "TcHello"
    node: str
    dc: str
    ownership: tuple[OwnerRecord, ...]
    parties: tuple[PartyInfo, ...]


@dataclass(frozen=True)
class Ownership:
    NAME: ClassVar[str] = "TcOwnership"
    record: OwnerRecord


@dataclass(frozen=True)
class DeskRequest:
    NAME: ClassVar[str] = "TcDeskRequest"
    dn: str
    requester: Requester
    request: Mapping[str, Any]  # the T-Lib request as on the wire
    resync: bool = False  # re-registration after a heal or an ownership move: no EventRegistered


@dataclass(frozen=True)
class DeskEvent:
    NAME: ClassVar[str] = "TcDeskEvent"
    dn: str
    event: Mapping[str, Any]
    requester: Requester | None = None
    only_requester: bool = False


@dataclass(frozen=True)
class ClientGone:
    NAME: ClassVar[str] = "TcClientGone"
    node: str
    client: int
    dns: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class CallRequest:
    NAME: ClassVar[str] = "TcCallRequest"
    conn_id: str
    dn: str
    action: str  # a PartyInput, or the name of a user-data request or of RequestSendDTMF
    requester: Requester
    user_data: Mapping[str, Any] | None = None  # RequestAttachUserData, RequestUpdateUserData
    key: str | None = None  # RequestDeletePair
    digits: str | None = None  # RequestSendDTMF


@dataclass(frozen=True)
class CallEvent:
    NAME: ClassVar[str] = "TcCallEvent"
    dn: str
    event: Mapping[str, Any]
    party: PartyInfo | None = None  # None once the party is released
    requester: Requester | None = None


@dataclass(frozen=True)
class PhoneRegistration:
    """A softphone (un)registered at ``node``; every node learns it, the DN's owner acts on it.

    ``contact`` is the phone's Contact URI from its REGISTER: where a call node that has no
    configured route to the phone sends its INVITE (``sip_side``)."""

    NAME: ClassVar[str] = "TcPhoneRegistration"
    dn: str
    node: str
    registered: bool
    contact: str = ""


TcMessage = (
    Hello
    | Ownership
    | DeskRequest
    | DeskEvent
    | ClientGone
    | CallRequest
    | CallEvent
    | PhoneRegistration
    | Heartbeat
)

_TYPES: Mapping[str, type[Any]] = {
    cls.NAME: cls
    for cls in (
        Hello,
        Ownership,
        DeskRequest,
        DeskEvent,
        ClientGone,
        CallRequest,
        CallEvent,
        PhoneRegistration,
        Heartbeat,
    )
}


def encode_tc(message: TcMessage) -> dict[str, Any]:
    """The JSON object of a TC message (a shallow walk: ``dataclasses.asdict`` deep-copies every
    value and was the largest cost of a request crossing the TC-layer)."""
    if isinstance(message, DeskEvent):  # the messages of every desktop request, spelled out
        return {
            "message": DeskEvent.NAME,
            "dn": message.dn,
            "event": message.event,
            "requester": _plain_requester(message.requester),
            "only_requester": message.only_requester,
        }
    if isinstance(message, DeskRequest):
        return {
            "message": DeskRequest.NAME,
            "dn": message.dn,
            "requester": _plain_requester(message.requester),
            "request": message.request,
            "resync": message.resync,
        }
    obj: dict[str, Any] = {"message": message.NAME}
    for spec in fields(message):
        obj[spec.name] = _plain(getattr(message, spec.name))
    return obj


def _plain_requester(requester: Requester | None) -> dict[str, Any] | None:
    if requester is None:
        return None
    return {
        "node": requester.node,
        "client": requester.client,
        "reference_id": requester.reference_id,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (Requester, PartyInfo, OwnerRecord)):
        return {spec.name: getattr(value, spec.name) for spec in fields(value)}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def decode_tc(obj: Any) -> TcMessage:
    """Build a TC message from its JSON object; a malformed one is a ``ProtocolError``."""
    if not isinstance(obj, dict) or obj.get("message") not in _TYPES:
        name = obj.get("message") if isinstance(obj, dict) else None
        raise ProtocolError(ErrorCode.UNKNOWN_REQUEST, f"unknown TC-layer message {name!r}")
    name = obj.pop("message")
    try:
        return _build(name, obj)
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError(ErrorCode.INVALID_ATTRIBUTE, f"malformed {name}: {exc}") from None


def _requester(value: Any) -> Requester | None:
    return None if value is None else Requester(**value)


def _party(value: Any) -> PartyInfo | None:
    if value is None:
        return None
    return PartyInfo(
        **{**value, "state": CallState(value["state"]), "call_type": CallType(value["call_type"])}
    )


def _record(value: Any) -> OwnerRecord:
    return OwnerRecord(**{**value, "phone": PhoneType(value["phone"])})


def _build(name: str, fields: dict[str, Any]) -> TcMessage:
    if name == Heartbeat.NAME:
        return Heartbeat()
    if name == Hello.NAME:
        parties = tuple(p for p in map(_party, fields["parties"]) if p is not None)
        ownership = tuple(map(_record, fields["ownership"]))
        return Hello(fields["node"], fields["dc"], ownership, parties)
    if name == Ownership.NAME:
        return Ownership(_record(fields["record"]))
    if name in (DeskRequest.NAME, DeskEvent.NAME, CallRequest.NAME, CallEvent.NAME):
        if "requester" in fields:
            fields["requester"] = _requester(fields["requester"])
        if "party" in fields:
            fields["party"] = _party(fields["party"])
        built: TcMessage = _TYPES[name](**fields)
        return built
    if name == ClientGone.NAME:
        return ClientGone(**{**fields, "dns": tuple(fields["dns"])})
    return PhoneRegistration(**fields)
