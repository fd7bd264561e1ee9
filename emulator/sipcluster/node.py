"""One SIP Cluster node's logic: routing between desktops, owners and call nodes (DESIGN §2.2).

"Call events flow call node → owner → desktop node → GWS; requests flow the other way over the
TC-layer." A node plays three roles at once: desktop node for the T-Lib clients connected to it
(here), owner for the DNs it owns (``owner.OwnerRole``), and call node for the calls it hosts
(``call_node.CallNodeRole``). This class is sans-I/O: inputs are method calls, outputs go
through ``Effects``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.sipcluster import rules
from emulator.sipcluster.call_node import CallNodeRole, PartyHook, no_hook, restored_event
from emulator.sipcluster.calls import Call, ConnIdFactory
from emulator.sipcluster.config import NodeConfig
from emulator.sipcluster.effects import Effects
from emulator.sipcluster.owner import OwnerRole
from emulator.sipcluster.rules import Desktop, OwnedDn
from emulator.sipcluster.states import ServiceInput, service_next
from emulator.sipcluster.tc_messages import (
    CallEvent,
    CallRequest,
    ClientGone,
    DeskEvent,
    DeskRequest,
    Hello,
    OwnerRecord,
    Ownership,
    PartyInfo,
    PhoneRegistration,
    Requester,
    TcMessage,
)
from emulator.tlib.enums import DNStatus, PhoneType
from emulator.tlib.errors import ErrorCode, ProtocolError, RequestRejected
from emulator.tlib.messages import (
    Event,
    EventName,
    Request,
    RequestRegisterAddress,
    RequestUnregisterAddress,
    decode,
    encode,
    error_event,
    event_name,
)


class ClusterNode(CallNodeRole):
    def __init__(self, config: NodeConfig, effects: Effects, log: JsonLog) -> None:
        self.config = config
        self.name = config.name
        self.effects = effects
        self.log = log
        self.view: dict[str, OwnerRecord] = {}
        self.peers_up: set[str] = set()
        self.peer_dcs: dict[str, str] = {peer.name: peer.dc for peer in config.peers}
        self.calls: dict[str, Call] = {}
        self.local_regs: dict[str, set[int]] = defaultdict(set)
        self.client_dns: dict[int, set[str]] = defaultdict(set)
        self.dn_service: dict[str, DNStatus] = {}
        self.agent_seen: dict[str, str] = {}  # DN -> agent logged in, as events showed it
        self.new_conn_id = ConnIdFactory(config.name)
        # Where each softphone DN last registered, as the whole cluster learns it.
        self.phones: dict[str, PhoneRegistration] = {}
        # Hooks of the SIP side (``sip_side``); no-ops on a node without SIP. ``before`` may
        # refuse an action by raising ``RequestRejected``; ``after`` sees every applied action.
        self.before_party_action: PartyHook = no_hook
        self.after_party_action: PartyHook = no_hook
        self.on_phone_registration: Callable[[PhoneRegistration], None] = no_hook
        self.owner = OwnerRole(config, effects, log, self.reachable, self.deliver_local)
        self.owner.on_move = self._hand_over
        self.owner.on_call_request = self._forward_call_request
        self.owner.on_make_call = self.make_call

    def reachable(self, node: str) -> bool:
        return node == self.name or node in self.peers_up

    def owner_of(self, dn: str) -> str | None:
        record = self.view.get(dn)
        return record.owner if record else None

    # -- desktop side ---------------------------------------------------------------------

    def client_request(self, client: int, request: Request) -> None:
        dn = request.this_dn
        self.log.event(
            "tlib.request",
            message=request.NAME,
            DN=dn,
            client=client,
            ReferenceID=request.reference_id,
            AgentID=getattr(request, "agent_id", None),
            ConnID=getattr(request, "conn_id", None),
        )
        requester = Requester(self.name, client, request.reference_id)
        try:
            if dn not in self.config.dns:
                raise RequestRejected(ErrorCode.NO_SUCH_DN, f"{request.NAME}: unknown DN {dn}")
            if isinstance(request, RequestRegisterAddress):
                self._register(client, request, requester)
                return
            if dn not in self.client_dns[client]:
                raise RequestRejected(
                    ErrorCode.DN_NOT_REGISTERED,
                    f"{request.NAME}: DN {dn} is not registered by this client "
                    f"(send RequestRegisterAddress first)",
                )
            if isinstance(request, RequestUnregisterAddress):
                self._drop_local(client, dn)
            self._to_owner(dn, requester, request)
        except RequestRejected as exc:
            self.effects.to_client(
                client,
                error_event(exc.code, exc.message, this_dn=dn, reference_id=request.reference_id),
            )

    def client_error(self, client: int, error: ProtocolError) -> None:
        self.log.warning("tlib.bad_input", client=client, error=error.message)

    def _register(self, client: int, request: Request, requester: Requester) -> None:
        dn = request.this_dn
        self.local_regs[dn].add(client)
        self.client_dns[client].add(dn)
        record = self.view.get(dn)
        phone = record.phone if record else PhoneType.PSTN
        owner_reachable = record is not None and self.reachable(record.owner)
        if rules.ownership_follows_registration(phone, owner_reachable):
            self.claim(dn, PhoneType.PSTN)
        elif record is not None and not owner_reachable:
            self.dn_service[dn] = DNStatus.OUT_OF_SERVICE
            attrs = {
                "AgentState": "LoggedOut",
                "DNStatus": str(DNStatus.OUT_OF_SERVICE),
                "Owner": record.owner,
                "OwnerEpoch": record.epoch,
                "PhoneType": str(record.phone),
                "Calls": [],
            }
            self.effects.to_client(
                client, Event(EventName.EVENT_REGISTERED, dn, request.reference_id, attrs)
            )
            self.effects.to_client(client, self._out_of_service_event(dn, record.owner))
            return
        self.dn_service[dn] = DNStatus.IN_SERVICE
        self._to_owner(dn, requester, request)

    def _drop_local(self, client: int, dn: str) -> None:
        self.local_regs[dn].discard(client)
        self.client_dns[client].discard(dn)
        if not self.local_regs[dn]:
            del self.local_regs[dn]
            self.dn_service.pop(dn, None)

    def _to_owner(
        self, dn: str, requester: Requester, request: Request, *, resync: bool = False
    ) -> None:
        owner = self.owner_of(dn)
        if owner == self.name:
            self.owner.request(dn, requester, request, resync)
        elif owner is not None and self.effects.to_peer(
            owner, DeskRequest(dn, requester, encode(request), resync)
        ):
            return
        elif not resync:
            raise RequestRejected(
                ErrorCode.OWNER_UNREACHABLE,
                f"{request.NAME}: DN {dn} is out of service here: its owner {owner} "
                f"is unreachable over the TC-layer",
            )

    def client_gone(self, client: int, reason: str) -> None:
        """The desktop's T-Lib connection is closed (or declared dead by ADDP)."""
        by_owner: dict[str, list[str]] = defaultdict(list)
        for dn in sorted(self.client_dns.pop(client, set())):
            self.local_regs[dn].discard(client)
            if not self.local_regs[dn]:
                del self.local_regs[dn]
                self.dn_service.pop(dn, None)
            owner = self.owner_of(dn)
            if owner is not None:
                by_owner[owner].append(dn)
        self.log.event("tlib.client_gone", client=client, reason=reason)
        for owner, dns in by_owner.items():
            if owner == self.name:
                self._desktop_gone(self.name, client, dns, reason)
            else:
                self.effects.to_peer(owner, ClientGone(self.name, client, tuple(dns), reason))

    def _desktop_gone(
        self, node: str, client: int, dns: list[str] | tuple[str, ...], reason: str
    ) -> None:
        for dn in dns:
            owned = self.owner.owned.get(dn)
            if owned is not None:
                self.owner.desktop_gone(owned, Desktop(node, client), reason)

    def deliver_local(
        self, dn: str, event: Event, requester: Requester | None, only_requester: bool
    ) -> None:
        """Hand an event from the owner to this node's desktops registered on the DN."""
        self._note(dn, event)
        reference = requester.reference_id if requester else None
        if only_requester and requester is not None:
            if event.name is EventName.EVENT_DN_BACK_IN_SERVICE:
                if self.dn_service.get(dn) is not DNStatus.OUT_OF_SERVICE:
                    return
                self.dn_service[dn] = DNStatus.IN_SERVICE
                for client in sorted(self.local_regs.get(dn, ())):
                    self.effects.to_client(client, event)
                return
            self.effects.to_client(requester.client, event.with_reference(reference))
            return
        for client in sorted(self.local_regs.get(dn, ())):
            mine = (
                requester is not None and requester.node == self.name and requester.client == client
            )
            self.effects.to_client(client, event.with_reference(reference if mine else None))

    def _note(self, dn: str, event: Event) -> None:
        self._note_agent(dn, event.name, event.get("AgentID"))

    def _note_agent(self, dn: str, name: EventName, agent: Any) -> None:
        if name in (EventName.EVENT_AGENT_LOGOUT,) or (
            name in (EventName.EVENT_REGISTERED, EventName.EVENT_DN_BACK_IN_SERVICE) and not agent
        ):
            self.agent_seen.pop(dn, None)
        elif isinstance(agent, str) and agent:
            self.agent_seen[dn] = agent

    def _out_of_service_event(self, dn: str, owner: str) -> Event:
        return Event(
            EventName.EVENT_DN_OUT_OF_SERVICE,
            dn,
            attributes={"Reason": f"owner {owner} unreachable over the TC-layer"},
        )

    # -- ownership ------------------------------------------------------------------------

    def claim(self, dn: str, phone: PhoneType) -> None:
        previous = self.view.get(dn)
        record = OwnerRecord(dn, self.name, previous.epoch + 1 if previous else 1, phone)
        self.log.event(
            "ownership.claim",
            DN=dn,
            owner=self.name,
            epoch=record.epoch,
            previous=previous.owner if previous else None,
        )
        self.set_owner(record)
        self._broadcast(Ownership(record))

    def _hand_over(self, owned: OwnedDn, target: str) -> None:
        record = OwnerRecord(owned.dn, target, owned.epoch + 1, owned.phone)
        self.log.event(
            "ownership.move", DN=owned.dn, owner=target, epoch=record.epoch, previous=self.name
        )
        self.owner.relinquish(owned.dn, "OwnershipMove")
        self.set_owner(record)
        self._broadcast(Ownership(record))
        if owned.phone_node is not None:
            # The new owner learns where the phone is registered (after the Ownership record,
            # on the same ordered TC connection).
            self.effects.to_peer(target, PhoneRegistration(owned.dn, owned.phone_node, True))

    def set_owner(self, record: OwnerRecord) -> None:
        """Adopt ``record`` into this node's view and play the role it gives us."""
        previous = self.view.get(record.dn)
        self.view[record.dn] = record
        was_owner = record.dn in self.owner.owned
        if record.owner == self.name:
            if not was_owner:
                self.owner.adopt(record)
            else:
                owned = self.owner.owned[record.dn]
                owned.epoch, owned.phone = record.epoch, record.phone
        elif was_owner:
            self.owner.relinquish(record.dn, "OwnershipConflict")
        if previous is None or previous.owner != record.owner:
            # Desktops registered through this node follow the DN to its new owner — this
            # node included, when the DN moved here.
            self._resync(record.dn)
            self._announce_calls(record.dn)

    def adopt_record(self, record: OwnerRecord, sender: str) -> None:
        current = self.view.get(record.dn)
        if current == record:
            return
        if current is not None and not record.beats(current):
            self.effects.to_peer(sender, Ownership(current))
            return
        self.log.event("ownership.view", DN=record.dn, owner=record.owner, epoch=record.epoch)
        self.set_owner(record)

    def _resync(self, dn: str) -> None:
        """Re-register this node's desktops of ``dn`` with its (new or returned) owner."""
        record = self.view.get(dn)
        if record is None:
            return
        for client in sorted(self.local_regs.get(dn, ())):
            request = RequestRegisterAddress(reference_id=0, this_dn=dn)
            self._to_owner(dn, Requester(self.name, client, None), request, resync=True)

    def _broadcast(self, message: TcMessage) -> None:
        for peer in sorted(self.peers_up):
            self.effects.to_peer(peer, message)

    def phone_registered(self, dn: str, registered: bool, contact: str = "") -> None:
        """SIP hook: a softphone for ``dn`` (un)registered at this node.

        "Softphone detects the failure when attempting to refresh the registration and
        registers at SIP Server 3 @ DC2" — ownership of a softphone DN follows its REGISTER.
        Every reachable node hears of it (so a call node knows where to ring the phone); the
        DN's owner acts on it.
        """
        self.log.event("phone.registration", DN=dn, registered=registered, contact=contact or None)
        registration = PhoneRegistration(dn, self.name, registered, contact)
        self._note_phone(registration)
        record = self.view.get(dn)
        if record is None or not self.reachable(record.owner):
            if registered:
                self.claim(dn, PhoneType.SOFTPHONE)
                self.owner.owned[dn].phone_node = self.name
        elif record.owner == self.name:
            self.phone_registration_at_owner(dn, self.name, registered)
        self._broadcast(registration)

    def _note_phone(self, registration: PhoneRegistration) -> None:
        known = self.phones.get(registration.dn)
        if registration.registered:
            if not registration.contact and known is not None and known.node == registration.node:
                registration = known  # a hand-over repeats where the phone is, not its contact
            self.phones[registration.dn] = registration
        elif known is not None and known.node == registration.node:
            del self.phones[registration.dn]
        self.on_phone_registration(registration)

    def phone_registration_at_owner(self, dn: str, node: str, registered: bool) -> None:
        owned = self.owner.owned.get(dn)
        if owned is None:
            return
        if registered:
            owned.phone, owned.phone_node = PhoneType.SOFTPHONE, node
        elif owned.phone_node == node:
            owned.phone_node = None
        record = OwnerRecord(dn, self.name, owned.epoch, owned.phone)
        if self.view.get(dn) != record:
            self.view[dn] = record
            self._broadcast(Ownership(record))
        self.owner.evaluate_move(owned)

    # -- TC-layer -------------------------------------------------------------------------

    def hello(self) -> Hello:
        return Hello(self.name, self.config.dc, tuple(self.view.values()), self.hosted_parties())

    def peer_up(self, hello: Hello) -> None:
        peer = hello.node
        self.peers_up.add(peer)
        self.peer_dcs[peer] = hello.dc
        self.log.event("tc.peer_up", peer=peer, peer_dc=hello.dc)
        for record in hello.ownership:
            self.adopt_record(record, peer)
        self._reconcile_calls(peer, hello.parties)
        for dn in sorted(self.local_regs):
            if self.owner_of(dn) == peer:
                self._resync(dn)
        for owned in list(self.owner.owned.values()):
            self.owner.evaluate_move(owned)

    def _reconcile_calls(self, peer: str, parties: tuple[PartyInfo, ...]) -> None:
        """After a heal, the owner's call references follow what the call node really hosts:
        calls that ended meanwhile are released, calls cleared or missed come back."""
        live = {(party.conn_id, party.dn): party for party in parties}
        for owned in list(self.owner.owned.values()):
            for ref in list(owned.calls.values()):
                if ref.call_node == peer and (ref.conn_id, owned.dn) not in live:
                    event = Event(
                        EventName.EVENT_RELEASED,
                        owned.dn,
                        attributes={
                            "ConnID": ref.conn_id,
                            "OtherDN": ref.other_dn,
                            "CallState": "Released",
                            "CallType": str(ref.call_type),
                            "CallNode": ref.call_node,
                            "Reason": "CallEndedDuringPartition",
                        },
                    )
                    self.owner.call_event(owned.dn, event, None, None)
        for party in parties:
            if party.dn in self.owner.owned:
                # Hidden while its call node was unreachable, or cleared by the desktop:
                # either way the desktops hear of it again.
                event = restored_event(party)
                self.owner.call_event(party.dn, event, party, None, announce_known=True)

    def peer_down(self, peer: str, reason: str) -> None:
        if peer not in self.peers_up:
            return
        self.peers_up.discard(peer)
        self.log.warning("tc.peer_down", peer=peer, reason=reason)
        self.owner.node_lost(peer)
        for dn in sorted(self.local_regs):
            if self.owner_of(dn) != peer:
                continue
            state = self.dn_service.get(dn, DNStatus.IN_SERVICE)
            self.dn_service[dn] = service_next(state, ServiceInput.OWNER_LOST)
            agent = self.agent_seen.pop(dn, None)
            for client in sorted(self.local_regs[dn]):
                if agent is not None:
                    self.effects.to_client(
                        client,
                        Event(
                            EventName.EVENT_AGENT_LOGOUT,
                            dn,
                            attributes={"AgentID": agent, "Reason": "OwnerUnreachable"},
                        ),
                    )
                self.effects.to_client(client, self._out_of_service_event(dn, peer))

    def peer_message(self, peer: str, message: TcMessage) -> None:
        try:
            self._peer_message(peer, message)
        except (ProtocolError, ValueError, KeyError) as exc:
            self.log.warning("tc.bad_message", peer=peer, error=str(exc))

    def _peer_message(self, peer: str, message: TcMessage) -> None:
        if isinstance(message, Ownership):
            self.adopt_record(message.record, peer)
        elif isinstance(message, DeskRequest):
            self._desk_request(message)
        elif isinstance(message, DeskEvent):
            if self._relay_answer(message):
                return
            event = decode(dict(message.event))
            if isinstance(event, Event):
                self.deliver_local(message.dn, event, message.requester, message.only_requester)
        elif isinstance(message, ClientGone):
            self._desktop_gone(message.node, message.client, message.dns, message.reason)
        elif isinstance(message, CallRequest):
            self.call_request(message)
        elif isinstance(message, CallEvent):
            event = decode(dict(message.event))
            if isinstance(event, Event):
                self._to_dn_owner(message.dn, event, message.party, message.requester)
        elif isinstance(message, PhoneRegistration):
            self._note_phone(message)
            if self.owner_of(message.dn) == self.name:
                self.phone_registration_at_owner(message.dn, message.node, message.registered)

    def _relay_answer(self, message: DeskEvent) -> bool:
        """The owner's answer to one desktop of this node goes out as it came over the TC-layer
        (what ``deliver_local`` would do for it, without rebuilding and re-encoding the event)."""
        requester, wire = message.requester, message.event
        name = event_name(wire.get("message"))
        if (
            not message.only_requester
            or requester is None
            or requester.node != self.name
            or name is None
            or name is EventName.EVENT_DN_BACK_IN_SERVICE
        ):
            return False
        self._note_agent(message.dn, name, wire.get("AgentID"))
        self.effects.relay_to_client(requester.client, wire, requester.reference_id)
        return True

    def _desk_request(self, message: DeskRequest) -> None:
        wire = message.request
        request = decode(wire if isinstance(wire, dict) else dict(wire))  # decoding copies nothing
        if not isinstance(request, Request):
            return
        owner = self.owner_of(message.dn)
        requester = message.requester
        if owner == self.name:
            self.owner.request(message.dn, requester, request, message.resync)
        elif owner is not None and owner != requester.node and self.effects.to_peer(owner, message):
            return  # our view is newer than the sender's: pass it on to the real owner
        elif not message.resync:
            error = error_event(
                ErrorCode.OWNER_UNREACHABLE,
                f"{request.NAME}: {self.name} does not own DN {message.dn}",
                this_dn=message.dn,
            )
            self.effects.to_peer(
                requester.node, DeskEvent(message.dn, encode(error), requester, True)
            )

    # -- timers and state -----------------------------------------------------------------

    def on_timer(self, key: str) -> None:
        kind, _, dn = key.partition(":")
        if kind == "acw":
            self.owner.acw_over(dn)
        elif kind == "move":
            self.owner.move_delay_over(dn)

    def state(self) -> dict[str, Any]:
        """The node's view for its control endpoint and ``drlab status --json``."""
        return {
            "node": self.name,
            "dc": self.config.dc,
            "ownership": {
                dn: {"owner": r.owner, "epoch": r.epoch, "phone": str(r.phone)}
                for dn, r in sorted(self.view.items())
            },
            "owned": {
                dn: {
                    **self.owner.snapshot(o),
                    "MovePhase": str(o.move_phase),
                    "Desktops": [f"{d.node}/{d.client}" for d in o.desktops],
                    "PhoneNode": o.phone_node,
                }
                for dn, o in sorted(self.owner.owned.items())
            },
            "calls": [
                {
                    "ConnID": c.conn_id,
                    "CallType": str(c.call_type),
                    "parties": [{"address": p.address, "state": str(p.state)} for p in c.parties],
                }
                for c in self.calls.values()
            ],
            "desktops": {
                dn: {
                    "clients": sorted(clients),
                    "DNStatus": str(self.dn_service.get(dn, DNStatus.IN_SERVICE)),
                }
                for dn, clients in sorted(self.local_regs.items())
            },
            "peers": {
                peer.name: {"dc": peer.dc, "state": "up" if peer.name in self.peers_up else "down"}
                for peer in self.config.peers
            },
            "phones": {
                dn: {"node": reg.node, "contact": reg.contact or None}
                for dn, reg in sorted(self.phones.items())
            },
        }
