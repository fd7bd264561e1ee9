"""One SIP Cluster node's logic: routing between desktops, owners and call nodes (DESIGN §2.2).

"Call events flow call node → owner → desktop node → GWS; requests flow the other way over the
TC-layer." A node plays three roles at once: desktop node for the T-Lib clients connected to it
(``desktop_node.DesktopNodeRole``), owner for the DNs it owns (``owner.OwnerRole``), and call
node for the calls it hosts (``call_node.CallNodeRole``). This class holds what the roles share:
the node's view of ownership ("each DN has exactly one owner node in the cluster view"; after a
partition the higher epoch wins, ``OwnerRecord.beats``) and the TC-layer to its peers, whose
messages it hands to the role they are for. It is sans-I/O: inputs are method calls, outputs go
through ``Effects``.

The roles share state through the attributes ``ClusterNode.__init__`` sets (each role class lists
the ones it reads at its top); the owner role is a separate object (``self.owner``) and reaches the
node only through the callables it is given (``reachable``, ``deliver_local``, ``on_move``,
``on_call_request``, ``on_make_call``). Hop by hop, with the node a hop runs on:

A request (``RequestHoldCall`` from GWS, on desktop node D, for a DN owned by O, a call on C):
  1. D ``DesktopNodeRole.client_request`` → ``_to_owner``: ``owner.request`` when D is O, else
     ``Effects.to_peer(O, DeskRequest)``; O's ``ClusterNode._desk_request`` → ``owner.request``.
  2. O ``OwnerRole.request`` → ``_request`` (the rules: ``rules.py``; EventError 245 etc. go
     back by ``reply``) → ``_call_request`` → ``on_call_request``, which is
     ``CallNodeRole._forward_call_request``: ``call_request`` when O is C, else
     ``to_peer(C, CallRequest)`` (kept in ``calls_in_flight`` until C answers, EventError 1701 if
     C is lost first).
  3. C ``CallNodeRole.call_request`` → ``party_action`` (the call's state table, ``states.py``).

The event that proves it (``EventHeld``), back the other way:
  4. C ``CallNodeRole._publish`` → ``_to_dn_owner``: ``owner.call_event`` when C is O, else
     ``to_peer(O, CallEvent)``; O's ``_peer_message`` → ``call_answered`` (the request is
     answered) and ``_to_dn_owner`` → ``owner.call_event``.
  5. O ``OwnerRole.call_event`` (the DN's calls; then ``evaluate_move``: ownership moves only with
     no call and no ACW) → ``fanout`` → ``_send`` per desktop node: ``deliver_local`` when it is O,
     else ``to_peer(D, DeskEvent)``; D's ``DesktopNodeRole._desk_event`` → ``deliver_local``.
  6. D ``deliver_local`` → ``Effects.to_client`` for each T-Lib client registered on the DN, the
     requester's copy carrying its ReferenceID; ``service.py`` writes it to GWS.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.sipcluster.call_node import CallNodeRole, PartyHook, no_hook, restored_event
from emulator.sipcluster.calls import Call, ConnIdFactory
from emulator.sipcluster.config import NodeConfig
from emulator.sipcluster.desktop_node import DesktopNodeRole
from emulator.sipcluster.effects import Effects
from emulator.sipcluster.owner import OwnerRole
from emulator.sipcluster.rules import OwnedDn
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
    TcMessage,
)
from emulator.tlib.enums import DNStatus, PhoneType
from emulator.tlib.errors import ErrorCode, ProtocolError
from emulator.tlib.messages import (
    Event,
    EventName,
    Request,
    decode,
    encode,
    error_event,
)


class ClusterNode(DesktopNodeRole, CallNodeRole):
    def __init__(self, config: NodeConfig, effects: Effects, log: JsonLog) -> None:
        self.config = config
        self.name = config.name
        self.effects = effects
        self.log = log
        self.view: dict[str, OwnerRecord] = {}
        self.peers_up: set[str] = set()
        self.peer_dcs: dict[str, str] = {peer.name: peer.dc for peer in config.peers}
        self.calls: dict[str, Call] = {}
        self.calls_in_flight = {}
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
        self._owner_back(peer)
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
        self.call_node_lost(peer)
        self.owner.node_lost(peer)
        self._owner_lost(peer)

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
            self._desk_event(message)
        elif isinstance(message, ClientGone):
            self._desktop_gone(message.node, message.client, message.dns, message.reason)
        elif isinstance(message, CallRequest):
            self.call_request(message)
        elif isinstance(message, CallEvent):
            event = decode(dict(message.event))
            if isinstance(event, Event):
                self.call_answered(peer, message.requester, str(event.get("ConnID")))
                self._to_dn_owner(message.dn, event, message.party, message.requester)
        elif isinstance(message, PhoneRegistration):
            self._note_phone(message)
            if self.owner_of(message.dn) == self.name:
                self.phone_registration_at_owner(message.dn, message.node, message.registered)

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
